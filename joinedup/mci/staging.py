"""Staging: upsert canonical records by (source_system, source_key) with a content hash.

An unchanged record costs nothing downstream (it keeps its link); a new or changed one is
marked ``pending`` for the next match. Re-staging the same batch changes nothing.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from joinedup.canonical import person_fields
from joinedup.mci import bulk
from joinedup.mci.store import SourceRecord, utcnow
from joinedup.privacy.tombstones import refuse_erased

CHUNK = 500


def content_hash(record: dict[str, Any]) -> str:
    body = json.dumps({f: record.get(f) for f in person_fields()}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass
class StageCounts:
    new: int = 0
    changed: int = 0
    unchanged: int = 0


def stage_records(
    session: Session, records: list[dict[str, Any]], run_id: str, *, special_category: bool = False
) -> StageCounts:
    counts = StageCounts()
    records = refuse_erased(session, records, run_id)  # an erased (source, key) is quarantined, not staged
    fields = person_fields()
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        system = chunk[0]["source_system"]
        keys = [r["source_key"] for r in chunk]
        existing = {
            row.source_key: row
            for row in session.execute(
                select(SourceRecord.id, SourceRecord.source_key, SourceRecord.content_hash).where(
                    SourceRecord.source_system == system, SourceRecord.source_key.in_(keys)
                )
            )
        }
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
            else:
                counts.changed += 1
                changed.append(dict(id=old.id, record=clean, content_hash=digest, match_status="pending",
                                    last_run_id=run_id, staged_at=utcnow()))
        # Bulk writes (COPY on PostgreSQL, one executemany elsewhere: joinedup.mci.bulk), not an
        # ORM object per row: a first load stages every record of a council.
        bulk.insert_rows(session, SourceRecord.__table__, fresh, autoflush=True)
        bulk.update_rows(session, SourceRecord.__table__, "id", changed, autoflush=True)
    return counts
