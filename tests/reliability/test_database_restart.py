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
