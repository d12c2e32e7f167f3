"""The search-key index: a few keys per person, so a search reads a handful of index rows.

Keys come from every source record linked to the person, through ``standardise`` (the
matcher's own features), so the API finds what the matcher would compare:

- ``nr:<surname soundex>|<given-name root>``  Bill Smyth finds William Smith
- ``ny:<surname soundex>|<birth year>``, ``np:<surname soundex>|<postcode district>``
- ``dob:``, ``pc:``, ``ni:``, ``em:``, ``ph:``   exact standardised values

Keys that only a special-category record gives are marked ``restricted``.
``refresh_search_keys`` must run for every master ID a merge touched (created, linked,
merged, split, golden changed); ``build_search_keys`` rebuilds the lot.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from joinedup.api.models import PersonSearchKey
from joinedup.mci.standardise import standardise
from joinedup.mci.store import Person, SourceRecord

CHUNK = 500


def feature_keys(row: dict[str, Any]) -> set[str]:
    """Search keys of one standardised record (a row of ``standardise``)."""
    keys: set[str] = set()
    sounds = set()
    if row.get("family_name_phonetic"):
        sounds.add(row["family_name_phonetic"])
    from joinedup.names import soundex

    for part in (row.get("family_name_parts") or "").split("|"):
        code = soundex(part) if part else None
        if code:
            sounds.add(code)
    roots = [r for r in (row.get("given_name_roots") or "").split("|") if r]
    year = row.get("dob_year")
    for s in sounds:
        keys.update(f"nr:{s}|{r}" for r in roots)
        if year:
            keys.add(f"ny:{s}|{int(year)}")
        if row.get("postcode_outward"):
            keys.add(f"np:{s}|{row['postcode_outward']}")
    for kind, col in (("dob", "dob"), ("pc", "postcode"), ("ni", "ni_key"), ("em", "email_std"),
                      ("ph", "phone_std")):
        if row.get(col):
            keys.add(f"{kind}:{row[col]}")
    return {k for k in keys if len(k) <= 200}


def _features(records: list[tuple[int, dict[str, Any]]]) -> pd.DataFrame:
    frame = pd.DataFrame([{**rec, "record_id": rid} for rid, rec in records])
    if frame.empty:
        return frame
    return standardise(frame)


def refresh_search_keys(session: Session, master_ids: Iterable[str]) -> int:
    """Recompute the keys of these master IDs (merged or vanished ones lose theirs); adds
    to the caller's transaction and returns the number of keys written."""
    ids = sorted({m for m in master_ids if m})
    written = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        session.execute(delete(PersonSearchKey).where(PersonSearchKey.master_id.in_(chunk)))
        rows = session.execute(
            select(SourceRecord.id, SourceRecord.master_id, SourceRecord.special_category, SourceRecord.record)
            .join(Person, Person.master_id == SourceRecord.master_id)
            .where(SourceRecord.master_id.in_(chunk), Person.status == "active")).all()
        if not rows:
            continue
        feats = _features([(r.id, r.record or {}) for r in rows]).to_dict("records")
        open_keys: dict[str, set[str]] = {}
        special_keys: dict[str, set[str]] = {}
        for r, f in zip(rows, feats):
            target = special_keys if r.special_category else open_keys
            target.setdefault(r.master_id, set()).update(feature_keys(f))
        objs = []
        for mid in set(open_keys) | set(special_keys):
            visible = open_keys.get(mid, set())
            objs += [PersonSearchKey(master_id=mid, key=k, restricted=False) for k in visible]
            objs += [PersonSearchKey(master_id=mid, key=k, restricted=True)
                     for k in special_keys.get(mid, set()) - visible]
        session.add_all(objs)
        written += len(objs)
    session.flush()
    return written


def build_search_keys(session: Session) -> int:
    """Rebuild the whole index (start-up of an empty index, or `joinedup api reindex`)."""
    session.execute(delete(PersonSearchKey))
    ids = list(session.scalars(select(Person.master_id).where(Person.status == "active").order_by(Person.master_id)))
    return refresh_search_keys(session, ids)


def index_is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count()).select_from(PersonSearchKey))
