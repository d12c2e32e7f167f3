"""The search-key index: a few keys per person, so a search reads a handful of index rows.

Keys come from every source record linked to the person, through ``standardise`` (the
matcher's own features), so the API finds what the matcher would compare:

- ``nr:<surname soundex>|<given-name root>``  Bill Smyth finds William Smith
- ``ny:<surname soundex>|<birth year>``, ``np:<surname soundex>|<postcode district>``
- ``dob:``, ``pc:``, ``ni:``, ``em:``, ``ph:``   exact standardised values

Keys that only a special-category record gives are marked ``restricted``.
``refresh_search_keys`` must run for every master ID a merge touched (created, linked,
merged, split, golden changed); ``build_search_keys`` rebuilds the lot.

Why it is written set-based: the night's merge calls ``refresh_search_keys`` for every
person it touched, which on a full build of a large council is every person (a million and
more). So the work goes in batches of ``BATCH_PERSONS`` persons: one chunked SELECT of plain
rows (no ORM objects), ``standardise`` once over the batch's frame, one read of the stored
keys, and only the difference written: one DELETE of the rows that went, one bulk INSERT of
the keys that came (COPY on PostgreSQL). Memory is bounded by the batch, whatever the size
of the council; ``build_search_keys`` reads the persons in master-ID ranges (keyset pages),
never the whole table.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from joinedup.api.models import PersonSearchKey
from joinedup.mci import bulk
from joinedup.mci.standardise import standardise
from joinedup.mci.store import Person, SourceRecord, active_person_pages
from joinedup.names import soundex

CHUNK = 500              # values per SQL IN (...) list: under SQLite's variable limit
BATCH_PERSONS = 5_000    # persons standardised and written together (bounds memory)
MAX_KEY_LENGTH = 200     # the column's width; a longer key (a very long e-mail) is not indexed

# the feature columns the keys are made of
KEY_COLUMNS = ("family_name_phonetic", "family_name_parts", "given_name_roots", "dob_year",
               "postcode_outward", "dob", "postcode", "ni_key", "email_std", "phone_std")
EXACT_KEYS = (("dob", "dob"), ("pc", "postcode"), ("ni", "ni_key"), ("em", "email_std"), ("ph", "phone_std"))


def _present(value: Any) -> bool:
    """A feature value that gives a key (frames mark missing as None or NaN)."""
    return value is not None and value == value and value != ""


def feature_keys(row: dict[str, Any]) -> set[str]:
    """Search keys of one standardised record (a row of ``standardise``)."""
    keys: set[str] = set()
    sounds = set()
    if _present(row.get("family_name_phonetic")):
        sounds.add(row["family_name_phonetic"])
    parts = row.get("family_name_parts")
    for part in (parts if _present(parts) else "").split("|"):
        code = soundex(part) if part else None
        if code:
            sounds.add(code)
    roots_text = row.get("given_name_roots")
    roots = [r for r in (roots_text if _present(roots_text) else "").split("|") if r]
    year = row.get("dob_year")
    outward = row.get("postcode_outward")
    for s in sounds:
        keys.update(f"nr:{s}|{r}" for r in roots)
        if _present(year):
            keys.add(f"ny:{s}|{int(year)}")
        if _present(outward):
            keys.add(f"np:{s}|{outward}")
    for kind, col in EXACT_KEYS:
        if _present(row.get(col)):
            keys.add(f"{kind}:{row[col]}")
    return {k for k in keys if len(k) <= MAX_KEY_LENGTH}


def key_rows(records: Sequence[tuple[int, str, bool, dict[str, Any] | None]],
             known: Mapping[int, Sequence[Any]] | None = None) -> list[dict[str, Any]]:
    """The index rows of these persons from their source records
    ``(record id, master_id, special_category, canonical record)``: every person's keys once,
    ``restricted`` when no open (non-special) record of that person gives the key.

    ``known``: record id -> its ``KEY_COLUMNS`` values as ``standardise`` gave them (the
    merge's own features); only the records not in it are standardised here (their
    canonical record must then be given).

    All the records of a person must be in ``records`` (the restriction is per person)."""
    if not records:
        return []
    known = known or {}
    missing = [(rid, rec) for rid, _, _, rec in records if rid not in known]
    computed: dict[int, tuple[Any, ...]] = {}
    if missing:
        features = standardise(pd.DataFrame([{**(rec or {}), "record_id": rid} for rid, rec in missing]))
        computed = dict(zip((rid for rid, _ in missing), zip(*(features[c].tolist() for c in KEY_COLUMNS))))
    open_keys: dict[str, set[str]] = {}
    special_keys: dict[str, set[str]] = {}
    for rid, master_id, special, _ in records:
        values = known[rid] if rid in known else computed[rid]
        target = special_keys if special else open_keys
        target.setdefault(master_id, set()).update(feature_keys(dict(zip(KEY_COLUMNS, values))))
    rows: list[dict[str, Any]] = []
    for master_id in sorted(set(open_keys) | set(special_keys)):
        visible = open_keys.get(master_id, set())
        rows += [{"master_id": master_id, "key": k, "restricted": False} for k in sorted(visible)]
        rows += [{"master_id": master_id, "key": k, "restricted": True}
                 for k in sorted(special_keys.get(master_id, set()) - visible)]
    return rows


class KnownFeatures(Mapping[int, tuple[Any, ...]]):
    """record id -> its ``KEY_COLUMNS`` values, read from a features frame (``standardise``'s
    columns, or the stored features the merge read) when asked: what
    :func:`refresh_search_keys` takes as ``features`` so that it does not standardise those
    records a second time. Holds column lists and a position per record, not a tuple per
    record (a first build hands it a million)."""

    def __init__(self, features: pd.DataFrame) -> None:
        self._columns = [features[c].tolist() for c in KEY_COLUMNS]
        self._position = {int(rid): i for i, rid in enumerate(features["record_id"].tolist())}

    def __getitem__(self, record_id: int) -> tuple[Any, ...]:
        i = self._position[record_id]
        return tuple(column[i] for column in self._columns)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._position

    def __iter__(self) -> Iterator[int]:
        return iter(self._position)

    def __len__(self) -> int:
        return len(self._position)


def _records_of(session: Session, master_ids: Sequence[str],
                known: Mapping[int, Sequence[Any]] | None = None) -> list[tuple[int, str, bool, dict | None]]:
    """The source records of these persons while active (plain rows, IN lists of ``CHUNK``).
    The canonical record (a JSON document to decode) is read only for records not in
    ``known`` (their features given), else it is None."""
    out: list[tuple[int, str, bool, dict | None]] = []
    for start in range(0, len(master_ids), CHUNK):
        chunk = master_ids[start:start + CHUNK]
        out += [tuple(r) for r in session.execute(
            select(SourceRecord.id, SourceRecord.master_id, SourceRecord.special_category)
            .join(Person, Person.master_id == SourceRecord.master_id)
            .where(SourceRecord.master_id.in_(chunk), Person.status == "active"))]
    known = known or {}
    unknown = [rid for rid, _, _ in out if rid not in known]
    records: dict[int, dict | None] = {}
    for start in range(0, len(unknown), CHUNK):
        records.update(session.execute(select(SourceRecord.id, SourceRecord.record)
                                       .where(SourceRecord.id.in_(unknown[start:start + CHUNK]))).all())
    return [(rid, mid, special, records.get(rid)) for rid, mid, special in out]


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    """COPY on PostgreSQL (executemany there is one INSERT per row), executemany elsewhere."""
    bulk.insert_rows(session, PersonSearchKey.__table__, rows)


def refresh_search_keys(session: Session, master_ids: Iterable[str],
                        features: Mapping[int, Sequence[Any]] | None = None) -> int:
    """Bring the keys of these master IDs up to date (merged or vanished ones lose theirs);
    adds to the caller's transaction and returns the number of keys inserted.

    ``features`` (:class:`KnownFeatures`): the features of records the caller has just
    standardised or read from the stored index (the merge), which are then not read and
    standardised again (a 1% night at 1,000,000 records: ~4 s); the others are.

    Only what changed is written: per batch the stored keys are read and diffed against the
    recomputed set, the rows that went (or whose ``restricted`` flag changed) are deleted by
    id and the keys that came are inserted. A night touches every person it re-matched, and
    most of them keep every key they had."""
    ids = sorted({m for m in master_ids if m})
    written = 0
    session.flush()  # the caller's pending links and statuses are what the keys must show
    table = PersonSearchKey.__table__
    for batch_start in range(0, len(ids), BATCH_PERSONS):
        batch = ids[batch_start:batch_start + BATCH_PERSONS]
        rows = key_rows(_records_of(session, batch, features), features)
        wanted = {(r["master_id"], r["key"], bool(r["restricted"])) for r in rows}
        have: set[tuple[str, str, bool]] = set()
        gone: list[int] = []
        for row_id, master_id, key, restricted in bulk.rows_matching(
                session, table, ("master_id",), [(m,) for m in batch], ("id", "master_id", "key", "restricted"),
                chunk=CHUNK):
            found = (master_id, key, bool(restricted))
            if found in wanted and found not in have:
                have.add(found)
            else:  # a key that went, or a second copy of one
                gone.append(row_id)
        bulk.delete_matching(session, table, "id", gone, chunk=CHUNK)
        came = [r for r in rows if (r["master_id"], r["key"], bool(r["restricted"])) not in have]
        _insert(session, came)
        written += len(came)
    return written


def build_search_keys(session: Session) -> int:
    """Rebuild the whole index (start-up of an empty index, or `joinedup api reindex`), a
    page of ``BATCH_PERSONS`` active persons at a time."""
    session.flush()
    session.execute(delete(PersonSearchKey.__table__))
    written = 0
    for page in active_person_pages(session, BATCH_PERSONS):
        first, last = page[0], page[-1]
        records = [tuple(r) for r in session.execute(
            select(SourceRecord.id, SourceRecord.master_id, SourceRecord.special_category, SourceRecord.record)
            .join(Person, Person.master_id == SourceRecord.master_id)
            .where(SourceRecord.master_id >= first, SourceRecord.master_id <= last, Person.status == "active"))]
        rows = key_rows(records)
        _insert(session, rows)
        written += len(rows)
    return written


def index_is_empty(session: Session) -> bool:
    """True when no key is stored (one row read, not a count of millions)."""
    return session.scalar(select(PersonSearchKey.id).limit(1)) is None
