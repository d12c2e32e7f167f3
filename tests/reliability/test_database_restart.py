"""The MCI's PostgreSQL restarted in the middle of a night (a private cluster, restarted with
``pg_ctl restart -m fast``, which cuts every connection and rolls back every open transaction).

Between stages the pool's pre-ping reconnects and the night goes on; a stage whose transaction
was cut fails clearly, and the next run completes with the clean run's index, row for row."""
from __future__ import annotations

import re

import threading
import time

import pytest
from sqlalchemy import create_engine, text

from tests.reliability.conftest import NIGHT, night_args
from tests.reliability.index_check import assert_nothing_lost, assert_same_index, index_snapshot
from tests.reliability.private_postgres import PrivatePostgres, postgres_bin


@pytest.fixture
def private_pg():  # noqa: ANN201
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (.ci/run installs them)")
    server = PrivatePostgres(bin_dir)
    server.start()
    yield server
    server.stop()


def _stage_status(url: str, stage: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT status FROM runs WHERE run_id = :r AND stage = :s"),
                                {"r": NIGHT, "s": stage}).scalar()
    except Exception:  # noqa: BLE001 - not created yet, or the server is restarting
        return None
    finally:
        engine.dispose()


def test_restart_between_stages_is_survived_by_reconnecting(faulty, private_pg, clean_index) -> None:  # noqa: ANN001
    """Pooled connections die with the restart; pool_pre_ping replaces them on checkout."""
    from joinedup.mci.store import _engine_for
    from joinedup.night import run_night
    from joinedup.pipeline import sync_source

    url = private_pg.url
    import os

    os.environ["JOINEDUP_DB_URL"] = url  # restored by the faulty fixture's monkeypatch
    try:
        sync_source("housing", NIGHT)
        private_pg.restart()
        outcome = run_night(["housing", "hr", "revenues", "socialcare"], night=NIGHT, via_airflow=False)
        assert not outcome.failed_sources and not outcome.merge_failed, outcome.stages
        assert_same_index(index_snapshot(url), clean_index)
        assert_nothing_lost(url, faulty.var, faulty.records)
    finally:
        _engine_for(url).dispose()
        os.environ["JOINEDUP_DB_URL"] = faulty.db_url


def test_restart_during_the_merge_fails_it_clearly_and_the_next_run_completes(faulty, private_pg, clean_index,  # noqa: ANN001
                                                                               tmp_path) -> None:  # noqa: ANN001
    url = private_pg.url
    env = faulty.env()
    env["JOINEDUP_DB_URL"] = url
    # the merge stops after matching, before its commit, until the database has been restarted
    # (joinedup.faults: a poll for "running" raced the merge on a fast machine)
    paused = {**env, "JOINEDUP_FAULT_PAUSE": "merge-before-commit", "JOINEDUP_FAULT_PAUSE_DIR": str(tmp_path)}
    restarted = threading.Event()
    status_when_paused: list[str | None] = []

    def restart_when_the_merge_waits() -> None:
        deadline = time.monotonic() + 400
        try:
            while time.monotonic() < deadline:
                if (tmp_path / "merge-before-commit.paused").exists():
                    status_when_paused.append(_stage_status(url, "merge"))
                    private_pg.restart()
                    restarted.set()
                    return
                time.sleep(0.05)
        finally:
            (tmp_path / "merge-before-commit.go").touch()

    watcher = threading.Thread(target=restart_when_the_merge_waits, daemon=True)
    watcher.start()
    from tests.reliability.conftest import run_cli

    first = run_cli(night_args(), paused)
    watcher.join(timeout=60)
    assert restarted.is_set(), f"the merge never ran, so the restart never happened:\n{first.stderr[-2000:]}"
    assert status_when_paused == ["running"]  # the restart came while the merge stood uncommitted
    assert first.returncode == 1, f"a night whose merge lost its database must fail:\n{first.stdout[-1500:]}"
    # The merge fails on its cut connection; if the server is still coming back when the night
    # prints its summary, the summary fails too (joinedup/night.py), on a database error.
    assert "merge failed" in first.stderr or "merge: FAILED" in first.stdout, first.stderr[-3000:]
    # a database error, named: psycopg's OperationalError or its AdminShutdown subclass (the
    # server went down under a running statement), which SQLAlchemy links as error code e3q8
    assert re.search(r"OperationalError|AdminShutdown|sqlalche\.me/e/\d+/e3q8", first.stderr), first.stderr[-3000:]
    assert _stage_status(url, "merge") in ("running", "failed")  # never "ok"

    again = run_cli(night_args(), env)
    assert again.returncode == 0, f"the run after the restart failed:\n{again.stdout[-2000:]}\n{again.stderr[-2000:]}"
    assert _stage_status(url, "merge") == "ok"
    assert_same_index(index_snapshot(url), clean_index)
    assert_nothing_lost(url, faulty.var, faulty.records)


def test_a_lock_lost_in_a_restart_is_taken_again_or_the_run_stops_before_writing(private_pg) -> None:  # noqa: ANN001
    """A restart ends the lock's connection and the lock with it, while the run's own
    connections reconnect. Before it writes, the run confirms its lock: taken again when nobody
    took it meanwhile; LockLost, naming the run that did, when somebody did."""
    from joinedup.locks import LockLost, RunLocked, confirm_held, run_lock

    engine = create_engine(private_pg.url)

    def in_another_thread(run_id: str, hold: threading.Event | None = None,
                          holding: threading.Event | None = None) -> list[Exception]:
        errors: list[Exception] = []

        def other() -> None:
            try:
                with run_lock("source:hr", run_id, engine):
                    if holding is not None:
                        holding.set()
                    if hold is not None:
                        hold.wait(60)
            except RunLocked as exc:
                errors.append(exc)
        worker = threading.Thread(target=other)
        worker.start()
        if hold is None:
            worker.join(60)
        else:
            holding.wait(60)
        return errors

    try:
        with run_lock("source:hr", "night-A", engine):
            private_pg.restart()
            confirm_held("source:hr")  # nobody took it: taken again, on a new connection
            refused = in_another_thread("night-B")
            assert [type(e) for e in refused] == [RunLocked] and refused[0].holder_run == "night-A"
        assert in_another_thread("night-C") == []  # released at the end as before

        release, holding = threading.Event(), threading.Event()
        with run_lock("source:hr", "night-A", engine):
            private_pg.restart()
            assert in_another_thread("night-B", release, holding) == []  # took the lost lock meanwhile
            with pytest.raises(LockLost) as lost:
                confirm_held("source:hr")
            release.set()
        assert lost.value.holder_run == "night-B"
        assert "lock was lost with its database connection" in str(lost.value)
        assert "stopped before writing" in str(lost.value)
    finally:
        engine.dispose()


def test_confirming_outside_the_lock_is_an_error_and_on_sqlite_a_no_op(project) -> None:  # noqa: ANN001
    from joinedup.locks import confirm_held, run_lock

    engine = create_engine(f"sqlite:///{project / 'var' / 'lock-only.sqlite'}")
    with pytest.raises(RuntimeError, match="outside a run_lock"):
        confirm_held("source:hr")
    with run_lock("source:hr", "night-A", engine) as lock, run_lock("source:hr", "night-A", engine) as inner:
        assert inner is lock and lock.depth == 2
        confirm_held("source:hr")  # a flock is held while this process lives
    engine.dispose()
