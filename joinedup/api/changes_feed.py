"""Which change-feed events a caller without ``socialcare:read`` may see.

Being known to social care is itself special-category data, so for such a caller a master ID
that only social-care records ever gave does not exist: not in ``GET /persons`` (404), not in
search, and not in the feed. An event is shown only when

- its source record (``linked`` events) is not a special-category record, and
- its master ID, and the other master ID it names (merged, split, created from a split), are
  *visible*: some non-special source record is, or was, linked to them. "Was" matters for
  merged master IDs, whose records now belong to the survivor: their ``linked`` events say
  which records they held.

A person first known to social care and later to another system becomes visible from then on,
with their whole history (their creation included); the feed never shows a master ID that the
caller could not look up or find.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from joinedup.mci.store import PersonEvent, SourceRecord


def visible_master_ids(session: Session, master_ids: Iterable[str]) -> set[str]:
    """Those of ``master_ids`` that some non-special source record is or was linked to."""
    wanted = sorted({m for m in master_ids if m})
    if not wanted:
        return set()
    now = set(session.scalars(select(SourceRecord.master_id).distinct().where(
        SourceRecord.master_id.in_(wanted), SourceRecord.special_category.is_(False))))
    rest = [m for m in wanted if m not in now]
    if rest:
        now |= set(session.scalars(
            select(PersonEvent.master_id).distinct()
            .join(SourceRecord, SourceRecord.id == PersonEvent.source_record_id)
            .where(PersonEvent.master_id.in_(rest), PersonEvent.kind == "linked",
                   SourceRecord.special_category.is_(False))))
    return now


def events_for_caller(session: Session, events: Sequence[PersonEvent], *, socialcare: bool) -> list[PersonEvent]:
    """``events`` less those that would reveal a social-care-only person or record."""
    if socialcare:
        return list(events)
    record_ids = sorted({e.source_record_id for e in events if e.source_record_id is not None})
    special = set(session.scalars(select(SourceRecord.id).where(
        SourceRecord.id.in_(record_ids), SourceRecord.special_category.is_(True)))) if record_ids else set()
    visible = visible_master_ids(session, [m for e in events for m in (e.master_id, e.other_master_id)])
    return [e for e in events
            if e.source_record_id not in special and e.master_id in visible
            and (e.other_master_id is None or e.other_master_id in visible)]
