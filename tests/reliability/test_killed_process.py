"""A night killed by SIGKILL at each stage boundary (the real CLI in a subprocess, killed by
joinedup.faults at a named point): the next run completes, the index equals a clean run's row
for row, and nothing received is lost.

One night is killed at every boundary in turn, in the order a night reaches them: each run
starts from what the previous kill left behind (the state a lone kill at the earlier boundary
leaves), recovers past it, and is killed at the next boundary. So every recovery is exercised,
and so is a night that dies again while it recovers, at the cost of one night instead of one
per boundary."""
from __future__ import annotations

import signal

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from tests.reliability.conftest import night_args
from tests.reliability.index_check import assert_nothing_lost, assert_same_index, index_snapshot

POINTS = ["mid-land", "after-land", "after-stage", "merge-before-commit"]  # joinedup.faults.POINTS' order


def _count(db_url: str, model, **where) -> int:  # noqa: ANN001
    engine = create_engine(db_url)
    try:
        with Session(engine) as session:
            query = select(func.count()).select_from(model)
            for column, value in where.items():
                query = query.where(getattr(model, column) == value)
            return session.scalar(query)
    finally:
        engine.dispose()


def test_every_fault_point_is_killed_here_in_the_order_a_night_reaches_them() -> None:
    from joinedup.faults import POINTS as DECLARED

    assert list(DECLARED) == POINTS, "a fault point was added or moved: kill it in the test below too"


def test_a_night_killed_at_each_stage_boundary_in_turn_recovers_to_the_clean_index(faulty, clean_index) -> None:  # noqa: ANN001
    from joinedup.mci.store import LandingBatch, Person, SourceRecord

    for point in POINTS:
        killed = faulty.cli(night_args(), fault=point)
        assert killed.returncode == -signal.SIGKILL, f"expected a SIGKILL at {point}, got {killed.returncode}:\n{killed.stderr[-2000:]}"
        assert f"SIGKILL at {point}" in killed.stderr
        # What the kill left behind is exactly what the boundary promises.
        if point == "mid-land":
            assert _count(faulty.db_url, LandingBatch) == 0  # nothing registered, cursor not moved
            assert list(faulty.var.glob("landing/*/*/progress.json")), "the landed first page must be kept"
        if point == "after-land":
            assert _count(faulty.db_url, LandingBatch, status="landed") == 1
            assert _count(faulty.db_url, SourceRecord) == 0
        if point == "after-stage":
            assert _count(faulty.db_url, SourceRecord) > 0
            assert _count(faulty.db_url, Person) == 0  # staged, never matched
        if point == "merge-before-commit":
            assert _count(faulty.db_url, SourceRecord, match_status="pending") == _count(faulty.db_url, SourceRecord) > 0
            assert _count(faulty.db_url, Person) == 0  # the merge's work was rolled back whole

    again = faulty.cli(night_args())
    assert again.returncode == 0, f"the run after the kills failed:\n{again.stdout[-2000:]}\n{again.stderr[-3000:]}"
    assert_same_index(index_snapshot(faulty.db_url), clean_index)
    found = assert_nothing_lost(faulty.db_url, faulty.var, faulty.records)
    assert found["staging"] > 0


def test_an_unknown_fault_point_is_an_error_not_a_silent_pass(faulty) -> None:  # noqa: ANN001
    done = faulty.cli(["sync", "hr", "--night", "night-1"], fault="after-lnd")
    assert done.returncode != 0
    assert "unknown fault point(s) after-lnd" in done.stderr + done.stdout
