"""Data quality over time, per source: one row per checked batch, read back from the figures
each check stage stored in the ``runs`` table (counts only, no personal values).

The workbench and the static pages (:mod:`joinedup.quality.pages`) both read this.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from joinedup.mci.store import Run


@dataclass
class HistoryRow:
    night: str  # the run that checked the batch
    checked_at: datetime | None
    batch: str  # the run that landed the batch
    status: str  # checked (admitted) | refused
    rows_in: int
    rows_quarantined: int
    by_rule: dict[str, int] = field(default_factory=dict)
    completeness: dict[str, float] = field(default_factory=dict)  # field -> share of rows with a value
    reason: str | None = None
    data_docs: str | None = None  # the batch's GX Data Docs page, relative to var/reports

    @property
    def quarantine_rate(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0


def _row(run: Run, entry: dict[str, Any]) -> HistoryRow:
    rows_in = int(entry.get("rows_in") or 0)
    counts = entry.get("completeness") or {}
    return HistoryRow(
        night=run.run_id, checked_at=run.started_at, batch=str(entry.get("batch", run.run_id)),
        status=str(entry.get("status", "checked")), rows_in=rows_in,
        rows_quarantined=int(entry.get("rows_failed") or 0), by_rule=dict(entry.get("by_rule") or {}),
        completeness={f: (n / rows_in if rows_in else 0.0) for f, n in counts.items()},
        reason=entry.get("reason"), data_docs=entry.get("data_docs"),
    )


def _run_rows(run: Run) -> list[HistoryRow]:
    """The rows one check run adds: one per batch (or, for checks recorded before per-batch
    figures existed, one from the stage's totals)."""
    figures = run.figures or {}
    batches = figures.get("batches")
    if batches is None:
        if figures.get("rows_in"):
            return [_row(run, {"rows_in": figures.get("rows_in"), "rows_failed": figures.get("rows_failed"),
                               "by_rule": figures.get("by_rule")})]
        return []
    return [_row(run, entry) for entry in batches]


def source_history(session: Session, source: str, limit: int | None = None) -> list[HistoryRow]:
    """Every checked batch of ``source``, oldest first (the last ``limit`` if given).

    With ``limit``, only the newest runs are read (newest first, a page at a time, until
    ``limit`` rows are found): every check step rewrites the pages, and reading every night
    the source ever had would make each step slower than the last."""
    where = select(Run).where(Run.stage == f"check:{source}")
    if limit is None:
        rows: list[HistoryRow] = []
        for run in session.scalars(where.order_by(Run.started_at, Run.id)):
            rows.extend(_run_rows(run))
        return rows
    newest: list[HistoryRow] = []  # newest first
    page, offset = max(limit, 16), 0
    while len(newest) < limit:
        runs = list(session.scalars(where.order_by(Run.started_at.desc(), Run.id.desc()).offset(offset).limit(page)))
        for run in runs:
            newest.extend(reversed(_run_rows(run)))
        if len(runs) < page:
            break
        offset += page
    return list(reversed(newest[:limit]))


def batches_checked(session: Session, source: str) -> int:
    """How many batches of ``source`` were ever checked: each run's figures only (no ORM
    objects, no per-field shares), so the index stays cheap as the nights add up."""
    count = 0
    for figures in session.scalars(select(Run.figures).where(Run.stage == f"check:{source}")):
        figures = figures or {}
        batches = figures.get("batches")
        count += len(batches) if batches is not None else (1 if figures.get("rows_in") else 0)
    return count


def sources_with_history(session: Session) -> list[str]:
    stages = session.scalars(select(Run.stage).where(Run.stage.like("check:%")).distinct())
    return sorted({s.split(":", 1)[1] for s in stages})
