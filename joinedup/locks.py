"""One run at a time per source (and for the merge): a lock that works across processes and
across Airflow workers that share the MCI database.

    with run_lock("source:housing", run_id):   # land / stage of one source
        ...
    with run_lock("merge", run_id):            # match, cluster, golden records
        ...

Two syncs of one source at once would land the same pages twice, advance the cursor twice and
race on staging; the second one must stop with a clear error instead. ``RunLocked`` is an
ordinary (retriable) error, so under Airflow the second task is retried later, never skipped.

How the lock is held, so that a process killed by SIGKILL never leaves a stale lock behind:

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection of its
  own, opened for the lock and closed with it. The server releases it when that connection
  ends, whatever happened to the process. The holder is found in ``pg_locks`` joined to
  ``pg_stat_activity``, whose ``application_name`` carries the run id.
- SQLite (one machine by nature): ``flock`` on ``locks/<name>.lock`` beside the database
  file; the kernel releases it when the process dies. The file holds the run id, time and pid.

The lock is re-entrant within one thread (``sync_source`` holds it around ``land`` and
``stage``, which take it too), and exclusive between threads and processes.

A PostgreSQL lock can be lost under a run that goes on: the server restarts, the lock's
connection ends with the lock, and the run's own connections reconnect through the pool. So a
run calls ``confirm()`` on what ``run_lock`` yields before it writes its results: the lock is
checked on its connection and, if it went, taken again on a new one; if another run took it
in between, ``LockLost`` (a ``RunLocked``) stops this run before it writes. On SQLite the lock
dies only with the process, so ``confirm()`` has nothing to do.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import zlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, make_url

log = logging.getLogger(__name__)

# The first key of JoinedUp's advisory locks ("JU"), so they cannot collide with another
# application's single-key locks on the same database.
ADVISORY_CLASS = 0x4A55


class RunLocked(RuntimeError):
    """Another run holds the lock: retry later (Airflow does); never run both at once."""

    def __init__(self, name: str, holder_run: str | None, since: str | None, detail: str = "") -> None:
        self.name, self.holder_run, self.since = name, holder_run, since
        super().__init__(self._message(detail))

    def _message(self, detail: str) -> str:
        name = self.name
        what = f"source {name.split(':', 1)[1]} is already being synced" if name.startswith("source:") else f"{name} is already running"
        return (f"{what} by run {self.holder_run or '(unknown run)'} since {self.since or '(unknown time)'}{detail}; "
                "this run did nothing. Wait for that run to finish and try again (Airflow retries the task).")


class LockLost(RunLocked):
    """This run's lock went with its database connection and another run holds it now."""

    def _message(self, detail: str) -> str:
        return (f"{self.name}: this run's lock was lost with its database connection (a server restart?) and run "
                f"{self.holder_run or '(unknown run)'} has held it since {self.since or '(unknown time)'}{detail}; "
                "this run stopped before writing its results. Try again once that run has finished "
                "(Airflow retries the task).")


class HeldLock:
    """What ``run_lock`` yields: call ``confirm()`` before writing results (see the module doc)."""

    depth = 0

    def confirm(self) -> None:
        """Nothing to do: the lock is held for as long as this process lives (SQLite's flock)."""


_local = threading.local()


def _held() -> dict[str, HeldLock]:
    if not hasattr(_local, "held"):
        _local.held = {}
    return _local.held


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def run_lock(name: str, run_id: str, engine: Engine | None = None) -> Iterator[HeldLock]:
    """Hold the lock ``name`` (e.g. ``source:housing`` or ``merge``) for the block, or raise
    ``RunLocked`` at once, naming the run that holds it and since when."""
    held = _held()
    if name in held:
        lock = held[name]
        lock.depth += 1
        try:
            yield lock
        finally:
            lock.depth -= 1
        return
    if engine is None:
        from joinedup.mci.store import get_engine

        engine = get_engine()
    taker = _flock if engine.dialect.name == "sqlite" else _advisory
    with taker(name, run_id, engine) as lock:
        lock.depth = 1
        held[name] = lock
        try:
            yield lock
        finally:
            held.pop(name, None)


def confirm_held(name: str) -> None:
    """Before writing results: confirm the lock ``name`` this thread holds (``HeldLock.confirm``:
    on PostgreSQL taken again if a server restart ended it, or ``LockLost``)."""
    lock = _held().get(name)
    if lock is None:
        raise RuntimeError(f"confirm_held({name!r}) outside a run_lock({name!r}) block")
    lock.confirm()


# -- PostgreSQL: advisory lock on its own connection -------------------------------------
def _advisory_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


class _AdvisoryLock(HeldLock):
    """A session-level advisory lock on a connection of its own (see the module doc)."""

    def __init__(self, name: str, run_id: str, engine: Engine) -> None:
        self.name, self.run_id, self.engine = name, run_id, engine
        self.key = _advisory_key(name)
        self.conn: Connection | None = None

    def take(self) -> None:
        """Take the lock on a new connection, or raise ``RunLocked`` naming its holder."""
        self.conn = conn = self.engine.connect()
        conn.execute(text("SELECT set_config('application_name', :v, false)"), {"v": f"joinedup {self.run_id}"[:63]})
        got = conn.execute(text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": ADVISORY_CLASS, "k": self.key}).scalar()
        conn.commit()
        if not got:
            holder_run, since = _advisory_holder(conn, self.key)
            self.end()
            raise RunLocked(self.name, holder_run, since)

    def confirm(self) -> None:
        """Still held on its connection, or taken again on a new one, or ``LockLost``."""
        if self.conn is not None:
            try:
                held = self.conn.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' "
                    "AND granted AND classid = :c AND objid = :k AND objsubid = 2"),
                    {"c": ADVISORY_CLASS, "k": self.key}).scalar()
                self.conn.commit()
                if held:
                    return
            except Exception:  # noqa: BLE001 - the connection is gone (a restart): the lock went with it
                pass
        log.warning("run lock %s of run %s was lost with its connection; taking it again", self.name, self.run_id)
        self.end()
        try:
            self.take()
        except RunLocked as exc:
            raise LockLost(self.name, exc.holder_run, exc.since) from None

    def release(self) -> None:
        """Unlock explicitly: the server notices a closed connection only a moment later, so
        a run started straight after this one (the next night in the same process, an
        Airflow retry) could otherwise find the lock still held."""
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"), {"c": ADVISORY_CLASS, "k": self.key})
                self.conn.commit()
        self.end()

    def end(self) -> None:
        """Never hand a connection that held (or named) a lock back to the pool: end it, and
        the server drops the lock with the session even if the unlock could not be sent."""
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()


@contextlib.contextmanager
def _advisory(name: str, run_id: str, engine: Engine) -> Iterator[HeldLock]:
    lock = _AdvisoryLock(name, run_id, engine)
    try:
        lock.take()
    except BaseException:
        lock.end()
        raise
    try:
        yield lock
    finally:
        lock.release()


def _advisory_holder(conn: Connection, key: int) -> tuple[str | None, str | None]:
    row = conn.execute(text(
        "SELECT a.application_name, a.query_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :c AND l.objid = :k AND l.objsubid = 2 "
        # advisory locks are per database: another MCI on the same server holds its own
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
        {"c": ADVISORY_CLASS, "k": key}).first()
    if row is None:  # released between our attempt and this look-up
        return None, None
    app, since = row
    run = app[len("joinedup "):] if app and app.startswith("joinedup ") else None
    return run, since.isoformat(timespec="seconds") if since else None


# -- SQLite: flock on a file beside the database -----------------------------------------
def lock_dir(engine: Engine) -> Path:
    """Where the SQLite MCI's lock files live: ``locks/`` beside the database file."""
    database = make_url(str(engine.url)).database
    if not database or database == ":memory:":
        raise ValueError("run locks on SQLite need a database file (an in-memory database is one process only)")
    folder = Path(database).resolve().parent / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def _flock(name: str, run_id: str, engine: Engine) -> Iterator[HeldLock]:
    import fcntl

    path = lock_dir(engine) / (re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(path)
            raise RunLocked(name, holder.get("run_id"), holder.get("since"),
                            f" (pid {holder.get('pid', '?')} on {holder.get('host', '?')})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"run_id": run_id, "since": _now(), "pid": os.getpid(),
                                  "host": socket.gethostname()}).encode(), 0)
        try:
            yield HeldLock()
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):  # being rewritten by the holder right now
        return {}
