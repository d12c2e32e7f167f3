"""Fault injection for the reliability tests: kill this process, with SIGKILL, at a named
stage boundary of the pipeline, so a test can prove that the next run recovers.

Inert unless the environment variable ``JOINEDUP_FAULT`` names a point (several may be given,
comma-separated). For example::

    JOINEDUP_FAULT=after-land joinedup sync housing     # dies after landing, before staging

Why a named point rather than a test that polls for a file and then kills the process: the
kill lands at exactly the same place on every run (a poll races the work it watches, and a
2-core machine shared with other jobs makes that race lose often), and the points document
the boundaries the pipeline promises to survive. SIGKILL, not an exception: no ``finally``,
no ``atexit`` and no rollback handler runs, as when the OOM killer or a power cut strikes.

A name that is not a known point is an error at the first boundary reached, so a typo in a
test cannot make the fault silently not happen.

A test that must act *while* the process stands at a point (restart the database under a
merge that has run but not committed) pauses it there instead: ``JOINEDUP_FAULT_PAUSE`` names
the point(s) and ``JOINEDUP_FAULT_PAUSE_DIR`` a folder; at the point the process writes
``<point>.paused`` there and waits until the test creates ``<point>.go`` (at most
``PAUSE_LIMIT_SECONDS``, then it goes on and says so).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

FAULT_ENV = "JOINEDUP_FAULT"

# Where the pipeline calls fault_point(), in the order a night reaches them.
POINTS: dict[str, str] = {
    "mid-land": "after the first page of an extract is landed, before the rest is fetched",
    "after-land": "after the extract is landed and registered (cursor advanced), before check and stage",
    "after-stage": "after the batch is staged and committed, before the merge (matching)",
    "merge-before-commit": "after matching has run, before its results are committed",
}


PAUSE_ENV = "JOINEDUP_FAULT_PAUSE"
PAUSE_DIR_ENV = "JOINEDUP_FAULT_PAUSE_DIR"
PAUSE_LIMIT_SECONDS = 600.0


def requested(variable: str = FAULT_ENV) -> set[str]:
    """The fault points named in ``variable`` (JOINEDUP_FAULT, or JOINEDUP_FAULT_PAUSE; empty
    when unset)."""
    raw = os.environ.get(variable, "")
    names = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = sorted(names - set(POINTS))
    if unknown:
        raise ValueError(f"{variable} names unknown fault point(s) {', '.join(unknown)}; "
                         f"known: {', '.join(POINTS)}. Unset {variable} outside fault tests.")
    return names


def fault_point(name: str) -> None:
    """Pause here if JOINEDUP_FAULT_PAUSE names this point, then kill this process with
    SIGKILL if JOINEDUP_FAULT names it; otherwise nothing."""
    if name not in POINTS:
        raise ValueError(f"fault_point({name!r}) is not a declared point; add it to joinedup.faults.POINTS")
    if PAUSE_ENV in os.environ and name in requested(PAUSE_ENV):
        _pause(name)
    if FAULT_ENV not in os.environ or name not in requested():
        return
    log.warning("fault injection: SIGKILL at %s (pid %d)", name, os.getpid())
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _pause(name: str) -> None:
    """Say that this process stands at ``name`` and wait for the test's go (see the module doc)."""
    folder = os.environ.get(PAUSE_DIR_ENV)
    if not folder:
        raise ValueError(f"{PAUSE_ENV} is set but {PAUSE_DIR_ENV} (the folder to signal in) is not")
    paused, go = Path(folder) / f"{name}.paused", Path(folder) / f"{name}.go"
    paused.write_text(str(os.getpid()), encoding="utf-8")
    log.warning("fault injection: paused at %s (pid %d) until %s exists", name, os.getpid(), go)
    deadline = time.monotonic() + PAUSE_LIMIT_SECONDS
    while not go.exists():
        if time.monotonic() > deadline:
            log.warning("fault injection: no go for %s within %.0f s; going on", name, PAUSE_LIMIT_SECONDS)
            return
        time.sleep(0.05)
