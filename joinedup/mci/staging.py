"""Staging: upsert canonical records by (source_system, source_key) with a content hash.

An unchanged record costs nothing downstream (it keeps its link); a new or changed one is
marked ``pending`` for the next match. Re-staging the same batch changes nothing.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from joinedup.canonical import person_fields
from joinedup.mci import bulk
from joinedup.mci.store import SourceRecord, utcnow
from joinedup.privacy.tombstones import refuse_erased

CHUNK = 500


def content_hash(record: dict[str, Any]) -> str:
    body = json.dumps({f: record.get(f) for f in person_fields()}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class _Staged(NamedTuple):
    id: int
    source_key: str
    content_hash: str


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
    chunks = [records[start : start + CHUNK] for start in range(0, len(records), CHUNK)]
    # What is already staged, read once for the whole batch (one set-based statement on
    # PostgreSQL: joinedup.mci.bulk.rows_matching); a key this call stages twice is read
    # again before its second chunk, as a read per chunk would have found it.
    wanted = [(chunk[0]["source_system"], r["source_key"]) for chunk in chunks for r in chunk]
    stored = {(system, key): _Staged(rid, key, digest) for rid, system, key, digest in bulk.rows_matching(
        session, SourceRecord.__table__, ("source_system", "source_key"), wanted,
        ("id", "source_system", "source_key", "content_hash"))}
    written: set[tuple[str, str]] = set()
    for chunk in chunks:
        system = chunk[0]["source_system"]
        keys = [r["source_key"] for r in chunk]
        again = [(system, k) for k in keys if (system, k) in written]
        if again:
            stored.update({(s, k): _Staged(rid, k, digest) for rid, s, k, digest in bulk.rows_matching(
                session, SourceRecord.__table__, ("source_system", "source_key"), again,
                ("id", "source_system", "source_key", "content_hash"))})
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
            else:
                counts.changed += 1
                changed.append(dict(id=old.id, record=clean, content_hash=digest, match_status="pending",
                                    last_run_id=run_id, staged_at=utcnow()))
        # Bulk writes (COPY on PostgreSQL, one executemany elsewhere: joinedup.mci.bulk), not an
        # ORM object per row: a first load stages every record of a council.
        bulk.insert_rows(session, SourceRecord.__table__, fresh, autoflush=True)
        bulk.update_rows(session, SourceRecord.__table__, "id", changed, autoflush=True)
    return counts
