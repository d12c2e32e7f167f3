"""The data-quality history read for the pages: the last N batches come from the newest runs
only (every check step rewrites the pages, so reading every night ever would slow each step),
and they are exactly the tail of the full history."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path


def _add_nights(session, source: str, batches_per_night: list[int]) -> None:  # noqa: ANN001
    from joinedup.mci.store import Run

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for night, n in enumerate(batches_per_night):
        batches = [{"batch": f"land-{night}-{b}", "status": "checked", "rows_in": 10 + b, "rows_failed": b,
                    "by_rule": {}, "completeness": {"family_name": 10}} for b in range(n)]
        session.add(Run(run_id=f"night-{night:03d}", stage=f"check:{source}", status="ok",
                        started_at=start + timedelta(days=night), figures={"rows_in": 1, "batches": batches}))
    # a check recorded before per-batch figures existed: one row from its totals
    session.add(Run(run_id="old", stage=f"check:{source}", status="ok", started_at=start - timedelta(days=1),
                    figures={"rows_in": 5, "rows_failed": 1, "by_rule": {"x": 1}}))
    session.commit()


def test_the_last_n_batches_are_the_tail_of_the_full_history(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import session_factory
    from joinedup.quality.history import batches_checked, source_history

    pattern = [1, 0, 3, 2, 0, 0, 1] * 12  # nights with no batch, and nights with several
    with session_factory()() as session:
        _add_nights(session, "housing", pattern)
        _add_nights(session, "hr", [1, 1])
        everything = source_history(session, "housing")
        assert len(everything) == sum(pattern) + 1 and everything[0].night == "old"
        for limit in (1, 5, 16, 17, 60, len(everything), len(everything) + 10):
            tail = source_history(session, "housing", limit=limit)
            assert [(r.night, r.batch) for r in tail] == [(r.night, r.batch) for r in everything[-limit:]], limit
        assert source_history(session, "housing", limit=1)[0].batch == "land-83-0"
        assert batches_checked(session, "housing") == len(everything)
        assert batches_checked(session, "hr") == 3 and batches_checked(session, "nobody") == 0


def test_the_quality_pages_show_the_last_batches_and_the_count_of_all(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import session_factory
    from joinedup.quality.pages import NIGHTS_SHOWN, write_quality_pages

    with session_factory()() as session:
        _add_nights(session, "housing", [2] * 40)
        index = write_quality_pages(session, ["housing"])
    page = (index.parent / "housing.html").read_text(encoding="utf-8")
    assert page.count("<code>land-") == NIGHTS_SHOWN and "land-39-1" in page and "land-9-1" not in page
    assert ">81<" in index.read_text(encoding="utf-8")  # 80 batches + the old totals row
