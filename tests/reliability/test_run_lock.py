"""Two syncs of one source (or two merges) at once must not both run: the second, a real second
process, stops at once with an error naming the run that holds the source and since when; the
lock dies with its holder (SIGKILL leaves no stale lock). On SQLite and on PostgreSQL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

JOINEDUP = Path(sys.executable).parent / "joinedup"


def _joinedup(*args: str, fault: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "JOINEDUP_FAULT"}
    if fault:
        env["JOINEDUP_FAULT"] = fault
    done = subprocess.run([str(JOINEDUP), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
    done.stderr = " ".join(done.stderr.split())  # one line to search, however a terminal wraps it
    return done


@pytest.fixture
def empty_drops(project: Path) -> None:
    (project / "var" / "drops" / "council").mkdir(parents=True, exist_ok=True)


def test_a_second_sync_of_a_busy_source_is_refused_with_the_holder(project: Path, mci_db: str, empty_drops: None) -> None:
    from joinedup.locks import run_lock
    from joinedup.mci.store import Run, session_factory
    from sqlalchemy import select

    with run_lock("source:hr", "night-A"):  # this test process is the first sync
        second = _joinedup("sync", "hr", "--night", "night-B")
    assert second.returncode == 1 and "Traceback" not in second.stderr  # one line for the operator
    assert "joinedup: source hr is already being synced by run night-A since 20" in second.stderr
    with session_factory()() as session:  # the refused run did nothing, not even a runs row
        assert session.scalars(select(Run).where(Run.run_id == "night-B")).all() == []
    third = _joinedup("sync", "hr", "--night", "night-C")  # released: the next sync runs
    assert third.returncode == 0, third.stderr[-2000:]


def test_a_second_merge_is_refused_while_one_runs(project: Path, mci_db: str) -> None:
    from joinedup.locks import run_lock

    with run_lock("merge", "night-A"):
        second = _joinedup("merge", "--night", "night-B")
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert "joinedup: merge is already running by run night-A since 20" in second.stderr


def test_the_lock_is_exclusive_between_threads_and_reentrant_within_one(project: Path, mci_db: str) -> None:
    import threading

    from joinedup.locks import RunLocked, run_lock

    errors: list[Exception] = []
    with run_lock("source:hr", "night-A"), run_lock("source:hr", "night-A"):  # re-entrant
        def other() -> None:
            try:
                with run_lock("source:hr", "night-B"):
                    pass
            except RunLocked as exc:
                errors.append(exc)
        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
    assert len(errors) == 1 and errors[0].holder_run == "night-A"
    with run_lock("source:hr", "night-B"):  # released by the outer block
        pass


def test_a_released_lock_is_free_at_once_for_the_next_run(project: Path, mci_db: str) -> None:
    """The next night in the same process (or an Airflow retry) starts straight after a run ends:
    the lock must be free by then, not when the server notices the closed connection."""
    from sqlalchemy import event, text

    from joinedup.locks import ADVISORY_CLASS, run_lock
    from joinedup.mci.store import get_engine

    engine = get_engine()
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    for night in range(25):
        with run_lock("source:revenues", f"night-{night}"):
            pass
        with run_lock("source:revenues", f"night-{night}-next"):  # raises RunLocked if still held
            pass
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                assert conn.execute(text(  # this test's database only: the other worker's tests hold their own
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :c AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"), {"c": ADVISORY_CLASS}).scalar() == 0
    if engine.dialect.name == "postgresql":  # unlocked in so many words, not left to the disconnect
        assert sum("pg_advisory_unlock" in statement for statement in sent) == 50


def test_a_holder_killed_by_sigkill_leaves_no_stale_lock(project: Path, mci_db: str, empty_drops: None) -> None:
    killed = _joinedup("sync", "hr", "--night", "night-A", fault="after-land")  # dies holding the lock
    assert killed.returncode == -signal.SIGKILL
    again = _joinedup("sync", "hr", "--night", "night-A")
    assert again.returncode == 0, again.stderr[-2000:]


def test_two_real_syncs_started_together_one_runs_one_is_refused(project: Path, mci_db: str, faulty_slow_revenues) -> None:  # noqa: ANN001
    """Both processes are real `joinedup sync revenues`; the source holds the first one's
    third request until the second has been answered, so the second starts while the first
    is landing however slowly either process starts."""
    import threading

    held = threading.Event()
    count = faulty_slow_revenues.count_request

    def count_request() -> int:  # the simulator's counter, called once per request it answers
        served = count()
        if served >= 3:
            held.wait(300)
        return served

    faulty_slow_revenues.count_request = count_request
    first = subprocess.Popen([str(JOINEDUP), "sync", "revenues", "--night", "night-A"], env=dict(os.environ),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while faulty_slow_revenues.requests_counted < 3:  # the first sync is fetching pages, held at the third
            assert first.poll() is None, f"the first sync ended early: {first.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "the first sync never reached the source"
            time.sleep(0.1)
        second = _joinedup("sync", "revenues", "--night", "night-B")
    finally:
        held.set()
        out, err = first.communicate(timeout=300)
    assert second.returncode != 0
    assert "source revenues is already being synced by run night-A since 20" in second.stderr
    assert first.returncode == 0, err[-2000:]
    assert '"rows_landed"' in out


@pytest.fixture
def faulty_slow_revenues(project: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """The revenues REST simulator, answering each request after 0.3 s, 40 records a page."""
    from joinedup.simulators.council import build_council
    from joinedup.simulators.revenues_rest import RevenuesRestOptions, RevenuesRestServer
    from joinedup.simulators.servers import FailurePlan

    path = project / "adapters" / "revenues.yaml"
    path.write_text(path.read_text().replace("page_size: 500", "page_size: 40"))
    records = build_council(200, 8, night=0).records["revenues"]
    server = RevenuesRestServer(records, options=RevenuesRestOptions(failures=FailurePlan(latency_seconds=0.3)))
    with server:
        uri = (f"rest://{server.options.client_id}:{server.options.client_secret}@127.0.0.1:{server.port}"
               "/api/v1?auth=oauth2&token_url=/oauth/token")
        monkeypatch.setenv("JOINEDUP_CONN_REVENUES_REST", uri)
        yield server


def test_a_lock_in_another_mci_on_the_same_server_is_neither_taken_nor_named(project: Path, mci_db: str) -> None:
    """Two councils' MCIs on one PostgreSQL server (or two SQLite files): each holds its own
    locks, and a refused run is told the holder in its own database."""
    import threading

    from sqlalchemy import create_engine, text

    from joinedup.locks import RunLocked, run_lock
    from joinedup.mci.store import get_engine
    from tests.conftest import _fresh_pg_database, pg_url

    postgres = mci_db.startswith("postgresql")
    if postgres:
        other_url = _fresh_pg_database(pg_url())
    else:
        (project / "other").mkdir()
        other_url = f"sqlite:///{project / 'other' / 'mci.sqlite'}"
    engines = {"night-A": get_engine(), "night-B": create_engine(other_url)}
    holding, release = threading.Barrier(3), threading.Event()

    def hold(run_id: str) -> None:
        with run_lock("source:hr", run_id, engines[run_id]):
            holding.wait()
            release.wait(60)

    holders = [threading.Thread(target=hold, args=(run_id,)) for run_id in engines]
    for holder in holders:
        holder.start()
    try:
        holding.wait(60)
        for run_id, engine in engines.items():
            with pytest.raises(RunLocked) as refused, run_lock("source:hr", "night-C", engine):
                pass
            assert refused.value.holder_run == run_id
    finally:
        release.set()
        for holder in holders:
            holder.join(60)
        engines["night-B"].dispose()
        if postgres:
            admin = create_engine(pg_url(), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{other_url.rsplit("/", 1)[1]}" WITH (FORCE)'))
            admin.dispose()
