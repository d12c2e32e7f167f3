"""Records a full extract no longer holds: flagged "gone from source", never deleted.

A full-extract source (``extract: full``: HR, social care) delivers every record it holds,
every night, so a record missing from its newest batch was deleted in the source system (HR
purges a leaver some weeks after they leave). The MCI keeps the record, its link to its
person and its history, and flags it: ``gone_run_id`` (the run of the extract that first
lacked it) and ``gone_at``, with a ``gone_from_source`` event in the person's history, so the
CRM and the stewards see that the system no longer holds it. A record delivered again is
cleared, with a ``back_in_source`` event. The golden records of the persons whose records were
flagged or cleared are worked out again (survivorship prefers held records, see
:mod:`joinedup.mci.golden`). "Delivered" counts every row the batch held: staged,
unchanged, or quarantined by the quality gate (a record that failed a rule tonight is still
held by its source).

Two guards, because flagging on a wrong picture would tell every caller that records vanished:

- Only the source's newest landed batch is a picture of what the source holds now. Staging an
  older one (a replay of last Tuesday) flags nothing and clears nothing.
- A truncated or filtered extract looks exactly like a mass deletion. When one batch lacks more
  of the source's held records than the source's ``gone_guard`` allows (5% or 25 records by
  default, whichever is more), none is flagged: the count and a message that says what to do
  come back as a problem, and the source's load fails loudly after its records are staged. If
  the source really deleted them, an engineer accepts them (``joinedup mci accept-gone
  <source> --by <name>``: flagged at once, the events name who accepted), or raises the guard
  in ``adapters/<source>.yaml`` so that the next full extract flags them.

Messages carry counts, run ids and source names, never a key or a value.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from joinedup.mci import bulk
from joinedup.mci.golden import refresh_golden
from joinedup.mci.staging import landed_after
from joinedup.mci.store import LandingBatch, PersonEvent, SourceRecord, utcnow

if TYPE_CHECKING:
    from joinedup.adapters.config import GoneGuard

GONE = "gone_from_source"
BACK = "back_in_source"
GONE_REASON = "no longer in its source system's full extract"
BACK_REASON = "in its source system's full extract again"
ACTOR = "pipeline"


@dataclass
class GoneCounts:
    gone: int = 0  # flagged gone from source by this batch
    returned: int = 0  # flagged before, delivered again by this batch: cleared
    held_back: int = 0  # lacking from this batch, not flagged: more than the guard allows
    golden_changed: int = 0  # persons whose golden record changed with the flags
    problem: str | None = None


def mark_gone_from_source(session: Session, batch: LandingBatch, delivered: set[str], guard: GoneGuard, *,
                          actor: str = ACTOR) -> GoneCounts:
    """Flag the source's records that ``batch`` (a full extract) no longer holds, and clear
    those it holds again. ``delivered``: every source key the batch held (staged or
    quarantined); ``actor``: who the events name (the pipeline, or the engineer who accepted
    what the guard held back). The caller commits."""
    counts = GoneCounts()
    system = batch.source_system
    if landed_after(session, batch):
        return counts  # an older night staged again: a later batch says what the source holds
    lacking: list[tuple[int, str | None]] = []  # held until now, not in this batch
    back: list[tuple[int, str | None]] = []  # flagged gone before, in this batch
    still_held = 0
    for rid, key, master, gone in session.execute(
            select(SourceRecord.id, SourceRecord.source_key, SourceRecord.master_id, SourceRecord.gone_run_id)
            .where(SourceRecord.source_system == system)):
        if gone is None:
            still_held += 1
            if key not in delivered:
                lacking.append((rid, master))
        elif key in delivered:
            back.append((rid, master))
    now = utcnow()
    if back:
        mark_back(session, back, batch.run_id, now, actor=actor)
        counts.returned = len(back)
    if len(lacking) > guard.limit(still_held):
        counts.held_back = len(lacking)
        counts.golden_changed = _refresh_golden(session, back, batch.run_id)
        counts.problem = (
            f"the full extract of {system} landed by run {batch.run_id} lacks {len(lacking):,} of the "
            f"{still_held:,} records the source held ({len(lacking) / max(still_held, 1):.1%}), more than its "
            f"gone_guard allows ({guard.max_share:.0%} or {guard.min_records} records): none was flagged gone from "
            f"source. A truncated or filtered extract looks like this; if the source really deleted them, accept them "
            f"with `joinedup mci accept-gone {system} --by <your name>`, or raise gone_guard in "
            f"adapters/{system}.yaml and the next full extract flags them")
        return counts
    if lacking:
        mark_gone(session, lacking, batch.run_id, now, actor=actor)
        counts.gone = len(lacking)
    counts.golden_changed = _refresh_golden(session, back + lacking, batch.run_id)
    return counts


def _refresh_golden(session: Session, records: list[tuple[int, str | None]], run_id: str) -> int:
    """The golden records of the persons of ``records`` (flagged or cleared), worked out again."""
    masters = {master for _, master in records if master is not None}
    return refresh_golden(session, masters, run_id, records_moved=False) if masters else 0


def mark_gone(session: Session, records: list[tuple[int, str | None]], run_id: str, at: datetime, *,
              actor: str = ACTOR) -> None:
    """Flag ``records`` ((record id, master ID) pairs) gone from source by ``run_id``'s extract,
    with an event in each linked person's history."""
    bulk.update_rows(session, SourceRecord.__table__, "id",
                     [{"id": rid, "gone_run_id": run_id, "gone_at": at} for rid, _ in records])
    _events(session, records, GONE, run_id, GONE_REASON, at, actor)


def mark_back(session: Session, records: list[tuple[int, str | None]], run_id: str, at: datetime, *,
              actor: str = ACTOR) -> None:
    """Clear the flag of ``records`` delivered again by ``run_id``'s extract, with an event."""
    bulk.update_rows(session, SourceRecord.__table__, "id",
                     [{"id": rid, "gone_run_id": None, "gone_at": None} for rid, _ in records])
    _events(session, records, BACK, run_id, BACK_REASON, at, actor)


def _events(session: Session, records: list[tuple[int, str | None]], kind: str, run_id: str, reason: str,
            at: datetime, actor: str) -> None:
    """One event per record in its person's history (a record not matched yet has no person:
    its flag is its only trace). The reason does not name the system: the workbench shows it
    beside a restricted record's event too, where even the system is withheld."""
    bulk.insert_rows(session, PersonEvent.__table__, [
        {"master_id": master, "kind": kind, "source_record_id": rid, "run_id": run_id, "actor": actor,
         "reason": reason, "at": at}
        for rid, master in records if master is not None])
