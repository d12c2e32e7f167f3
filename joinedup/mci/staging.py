"""Staging: upsert canonical records by (source_system, source_key) with a content hash.

An unchanged record costs nothing downstream (it keeps its link); a new or changed one is
marked ``pending`` for the next match. Re-staging the same batch changes nothing.

Newest delivery wins: a stored record keeps the run id of the landing batch its values came
from (``last_run_id``). Staging a batch that landed BEFORE that one (replaying last Tuesday
after a mapping fix, while Wednesday's values are stored) leaves the record as it is and counts
it ``kept_newer``: a replay never rolls a record back. Batches staged in landing order (every
normal night, or a replay of every night) are not affected.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from joinedup.canonical import person_fields
from joinedup.mci import bulk
from joinedup.mci.store import LandingBatch, SourceRecord, utcnow
from joinedup.privacy.tombstones import refuse_erased

CHUNK = 500


def content_hash(record: dict[str, Any]) -> str:
    body = json.dumps({f: record.get(f) for f in person_fields()}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class _Staged(NamedTuple):
    id: int
    source_key: str
    content_hash: str
    last_run_id: str


_STAGED_COLUMNS = ("id", "source_system", "source_key", "content_hash", "last_run_id")


@dataclass
class StageCounts:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    kept_newer: int = 0  # stored values came from a batch that landed after this one


def landed_after(session: Session, batch: LandingBatch) -> list[str]:
    """The run ids of the source's landing batches that landed after ``batch`` (none on a
    normal night; some when an old night is staged again): a later batch's delivery stands."""
    return list(session.scalars(select(LandingBatch.run_id).where(
        LandingBatch.source_system == batch.source_system, LandingBatch.id > batch.id)))


class _LandingOrder:
    """Which landing batches of a source landed after the one being staged.

    ``landing_batches.id`` grows as batches land (one row per source and night, registered at
    landing), so it is the landing order. A run id with no landing batch (a quarantine release,
    a test, the demo loader) has no place in that order and never blocks or is blocked."""

    def __init__(self, session: Session, run_id: str) -> None:
        self._session = session
        self._run_id = run_id
        self._order: dict[str, dict[str, int]] = {}

    def _batches(self, system: str) -> dict[str, int]:
        if system not in self._order:
            self._order[system] = dict(self._session.execute(
                select(LandingBatch.run_id, LandingBatch.id).where(LandingBatch.source_system == system)).all())
        return self._order[system]

    def stored_is_newer(self, system: str, stored_run_id: str) -> bool:
        batches = self._batches(system)
        this, stored = batches.get(self._run_id), batches.get(stored_run_id)
        return this is not None and stored is not None and stored > this


def stage_records(
    session: Session, records: list[dict[str, Any]], run_id: str, *, special_category: bool = False
) -> StageCounts:
    counts = StageCounts()
    records = refuse_erased(session, records, run_id)  # an erased (source, key) is quarantined, not staged
    fields = person_fields()
    chunks = [records[start : start + CHUNK] for start in range(0, len(records), CHUNK)]
    # What is already staged, read once for the whole batch (one set-based statement on
    # PostgreSQL: joinedup.mci.bulk.rows_matching); a key this call stages twice is read
    # again before its second chunk, as a read per chunk would have found it.
    wanted = [(chunk[0]["source_system"], r["source_key"]) for chunk in chunks for r in chunk]
    stored = {(system, key): _Staged(rid, key, digest, last) for rid, system, key, digest, last in bulk.rows_matching(
        session, SourceRecord.__table__, ("source_system", "source_key"), wanted, _STAGED_COLUMNS)}
    order = _LandingOrder(session, run_id)
    written: set[tuple[str, str]] = set()
    for chunk in chunks:
        system = chunk[0]["source_system"]
        keys = [r["source_key"] for r in chunk]
        again = [(system, k) for k in keys if (system, k) in written]
        if again:
            stored.update({(s, k): _Staged(rid, k, digest, last) for rid, s, k, digest, last in bulk.rows_matching(
                session, SourceRecord.__table__, ("source_system", "source_key"), again, _STAGED_COLUMNS)})
        existing = {k: stored[(system, k)] for k in keys if (system, k) in stored}
        written.update((system, k) for k in keys)
        fresh: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        for rec in chunk:
            clean = {f: rec.get(f) for f in fields}
            digest = content_hash(clean)
            old = existing.get(rec["source_key"])
            if old is None:
                counts.new += 1
                fresh.append(dict(
                    source_system=system, source_key=rec["source_key"], content_hash=digest, record=clean,
                    special_category=special_category, match_status="pending",
                    first_run_id=run_id, last_run_id=run_id, staged_at=utcnow(),
                ))
            elif old.content_hash == digest:
                counts.unchanged += 1
            elif order.stored_is_newer(system, old.last_run_id):
                counts.kept_newer += 1
            else:
                counts.changed += 1
                changed.append(dict(id=old.id, record=clean, content_hash=digest, match_status="pending",
                                    last_run_id=run_id, staged_at=utcnow()))
        # Bulk writes (COPY on PostgreSQL, one executemany elsewhere: joinedup.mci.bulk), not an
        # ORM object per row: a first load stages every record of a council.
        bulk.insert_rows(session, SourceRecord.__table__, fresh, autoflush=True)
        bulk.update_rows(session, SourceRecord.__table__, "id", changed, autoflush=True)
    return counts
