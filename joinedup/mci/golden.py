"""The golden record: per field, a configured survivorship rule picks the value the front
office sees from the source records linked to one master ID, and remembers its source.

A record its source system no longer holds (gone from source, :mod:`joinedup.mci.gone`) gives
a field's value only when no record still held has one (``prefer_held``, on by default): the
payroll record of a leaver HR has deleted does not outrank the council tax account the
resident still pays, yet a date of death only the deleted record carried is not lost."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from joinedup.canonical import identity_fields
from joinedup.configfile import load_model
from joinedup.mci import bulk
from joinedup.mci.store import Person, PersonEvent, active_person_pages
from joinedup.paths import project_root

RuleName = Literal["trust", "most_recent", "most_frequent", "most_complete"]


class FieldSurvivorship(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: RuleName
    order: list[str] | None = None


class Survivorship(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: FieldSurvivorship
    #: records gone from their source give a value only when no held record has one
    prefer_held: bool = True
    fields: dict[str, FieldSurvivorship] = {}

    def for_field(self, name: str) -> tuple[RuleName, list[str]]:
        spec = self.fields.get(name, self.default)
        return spec.rule, spec.order or self.default.order or []


@lru_cache(maxsize=4)
def _load(path: str, modified_ns: int) -> Survivorship:  # noqa: ARG001 - part of the cache key
    return load_model(Path(path), Survivorship)


def survivorship() -> Survivorship:
    """The council's rules (``schemas/survivorship.yaml``), read again when the file changes: a
    long-running workbench or API applies an edit at its next golden refresh."""
    path = project_root() / "schemas" / "survivorship.yaml"
    return _load(str(path), path.stat().st_mtime_ns)


#: Key set (True) on a record given to :func:`golden_record` that its source no longer holds.
GONE_FROM_SOURCE = "gone_from_source"

#: (field, rule, trust rank by system, rank of an unranked system, prefer held records)
FieldPlan = tuple[str, RuleName, dict[str, int], int, bool]


def field_plan(rules: Survivorship | None = None) -> list[FieldPlan]:
    """Each identity field with its rule and trust ranking, worked out once: a night refreshes
    hundreds of thousands of golden records with the same rules (pass the plan to
    :func:`golden_record`)."""
    rules = rules or survivorship()
    plan: list[FieldPlan] = []
    for name in identity_fields():
        rule, order = rules.for_field(name)
        plan.append((name, rule, {system: i for i, system in reversed(list(enumerate(order)))}, len(order),
                     rules.prefer_held))
    return plan


def golden_record(records: list[dict[str, Any]], rules: Survivorship | None = None, *,
                  plan: list[FieldPlan] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """(golden values, field -> 'source_system/source_key' it came from).

    ``plan`` (from :func:`field_plan`) saves re-reading the rules for each person. A person
    with one record takes every value of it: each rule picks the only candidate. A record
    carrying ``GONE_FROM_SOURCE`` is left out of a field's candidates when the rules prefer
    held records and a held record has a value."""
    plan = plan or field_plan(rules)
    golden: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if len(records) == 1:
        only = records[0]
        where = None
        for name, *_ in plan:
            value = only.get(name)
            if value not in (None, ""):
                golden[name] = value
                sources[name] = where = where or f"{only['source_system']}/{only['source_key']}"
        return golden, sources
    for name, rule, ranks, unranked, prefer_held in plan:
        candidates = [r for r in records if r.get(name) not in (None, "")]
        if not candidates:
            continue
        if prefer_held and len(candidates) > 1:
            candidates = [r for r in candidates if not r.get(GONE_FROM_SOURCE)] or candidates
        recency = lambda r: r.get("updated_at") or ""  # noqa: E731
        trust = lambda r: ranks.get(r["source_system"], unranked)  # noqa: E731
        if rule == "trust":
            best = min(candidates, key=lambda r: (trust(r), _neg(recency(r))))
        elif rule == "most_recent":
            best = max(candidates, key=lambda r: (recency(r), -trust(r)))
        elif rule == "most_complete":
            best = max(candidates, key=lambda r: (len(str(r[name])), recency(r)))
        else:  # most_frequent
            votes = Counter(r[name] for r in candidates)
            best = min(candidates, key=lambda r: (-votes[r[name]], trust(r), _neg(recency(r))))
        golden[name] = best[name]
        sources[name] = f"{best['source_system']}/{best['source_key']}"
    return golden, sources


def _neg(text: str) -> tuple[int, ...]:
    """Sort key that orders strings descending inside a min()."""
    return tuple(-ord(c) for c in text)


#: Persons per read of the golden refresh: one select of their records, one executemany of
#: the changed golden records (a 1,000,000-record first build writes every person).
GOLDEN_CHUNK = 2000


def refresh_golden(session: Session, master_ids: set[str], run_id: str, *,
                   features: Mapping[int, Any] | None = None, records_moved: bool = True) -> int:
    """Recompute the golden record of each person; an event where it changed. Returns how
    many changed. ``records_moved`` (the default): records joined, left or changed these
    persons, so their search keys are brought up to date too; False when only the rules or
    the records' flags changed (the keys come from the records, not the golden record).

    Set-based, for a first build of a million records as much as for a steward's one merge:
    per chunk of persons one read of their records (ordered by master ID, then record
    id: the order survivorship's ties are broken in), one of their stored golden records, one
    executemany for those that changed and one insert of their events. No ORM objects are
    loaded; any Person already in the session is expired so it reads the new values."""
    ids = sorted({m for m in master_ids if m})
    plan = field_plan()
    persons = Person.__table__
    changed: set[str] = set()
    for start in range(0, len(ids), GOLDEN_CHUNK):
        chunk = ids[start : start + GOLDEN_CHUNK]
        stored = session.execute(select(persons.c.master_id, persons.c.golden, persons.c.golden_sources)
                                 .where(persons.c.master_id.in_(chunk)).order_by(persons.c.master_id)).all()
        if not stored:
            continue
        by_person: dict[str, list[dict]] = defaultdict(list)
        # the driver's rows (bulk.select_in), ordered here by master ID then record id; the
        # record is JSON text on SQLite (decoded as SQLAlchemy's JSON type does), a document
        # psycopg has already decoded on PostgreSQL
        found = bulk.select_in(session, "SELECT master_id, id, record, gone_run_id FROM source_records "
                                        "WHERE master_id {in}", chunk, chunk=len(chunk))
        for mid, _, rec, gone in sorted(found, key=lambda r: (r[0], r[1])):
            record = json.loads(rec) if isinstance(rec, str) else dict(rec)
            if gone is not None:
                record[GONE_FROM_SOURCE] = True
            by_person[mid].append(record)
        rows, events = [], []
        for mid, old_golden, old_sources in stored:
            golden, sources = golden_record(by_person.get(mid, []), plan=plan)
            if golden == old_golden and sources == old_sources:
                continue
            if old_golden:
                events.append({"master_id": mid, "kind": "golden_changed", "run_id": run_id,
                               "evidence": {"fields": sorted(k for k in golden if golden.get(k) != old_golden.get(k))}})
            rows.append({"master_id": mid, "golden": golden, "golden_sources": sources})
            changed.add(mid)
        bulk.update_rows(session, persons, "master_id", rows)  # and updated_at, as an UPDATE does
        bulk.insert_rows(session, PersonEvent.__table__, events, autoflush=True)  # as insert(PersonEvent) did
    _expire_persons(session, changed)
    if not records_moved:
        return len(changed)
    from joinedup.api.search_keys import refresh_search_keys

    # the CRM's search finds each person by the records they now have (``features``: records
    # already standardised, search_keys.KnownFeatures)
    refresh_search_keys(session, master_ids, features)
    return len(changed)


def refresh_all_golden(session: Session, run_id: str, *, page: int = 10 * GOLDEN_CHUNK) -> tuple[int, int]:
    """Every active person's golden record worked out again under the current rules (after an
    edit of ``schemas/survivorship.yaml``: until then a person's golden record changes only
    when a night or a steward touches them). A page of persons at a time, in master-ID order,
    committed per page, so memory stays bounded and an interrupted run keeps what it did.
    Returns (persons, changed)."""
    seen = changed = 0
    for ids in active_person_pages(session, page):
        changed += refresh_golden(session, set(ids), run_id, records_moved=False)
        session.commit()
        seen += len(ids)
    return seen, changed


def _expire_persons(session: Session, master_ids: set[str]) -> None:
    """Persons the caller already holds in the session read their rewritten golden record
    again (a Core update does not touch the ORM's identity map)."""
    if not master_ids:
        return
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Person) and obj.master_id in master_ids:
            session.expire(obj, ["golden", "golden_sources", "updated_at"])
