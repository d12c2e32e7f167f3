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
"""
from __future__ import annotations

import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

FAULT_ENV = "JOINEDUP_FAULT"

# Where the pipeline calls fault_point(), in the order a night reaches them.
POINTS: dict[str, str] = {
    "mid-land": "after the first page of an extract is landed, before the rest is fetched",
    "after-land": "after the extract is landed and registered (cursor advanced), before check and stage",
    "after-stage": "after the batch is staged and committed, before the merge (matching)",
    "merge-before-commit": "after matching has run, before its results are committed",
}


def requested() -> set[str]:
    """The fault points named in JOINEDUP_FAULT (empty when unset)."""
    raw = os.environ.get(FAULT_ENV, "")
    names = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = sorted(names - set(POINTS))
    if unknown:
        raise ValueError(f"{FAULT_ENV} names unknown fault point(s) {', '.join(unknown)}; "
                         f"known: {', '.join(POINTS)}. Unset {FAULT_ENV} outside fault tests.")
    return names


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL if JOINEDUP_FAULT names this point; otherwise nothing."""
    if name not in POINTS:
        raise ValueError(f"fault_point({name!r}) is not a declared point; add it to joinedup.faults.POINTS")
    if FAULT_ENV not in os.environ or name not in requested():
        return
    log.warning("fault injection: SIGKILL at %s (pid %d)", name, os.getpid())
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.kill(os.getpid(), signal.SIGKILL)
