"""What the CRM sees of one person: the golden record, the linked source records and the
council services they show, with social-care (special-category) records left out for callers
without ``socialcare:read`` (not masked: omitted, with a flag that something was withheld)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from joinedup.mci.store import Person, SourceRecord

# source system -> (service, what the record shows)
SERVICES: dict[str, tuple[str, str]] = {
    "housing": ("tenancy", "Council housing tenant"),
    "revenues": ("council_tax_account", "Council-tax account holder"),
    "socialcare": ("social_care_case", "Known to social care"),
    "hr": ("employee", "Council employee"),
}
MAX_REDIRECT_HOPS = 20


def survivor_of(session: Session, person: Person) -> str | None:
    """The active master ID a merged one now lives in (following merges of merges)."""
    seen: set[str] = set()
    current = person
    for _ in range(MAX_REDIRECT_HOPS):
        if current.status != "merged" or not current.merged_into or current.merged_into in seen:
            break
        seen.add(current.master_id)
        nxt = session.get(Person, current.merged_into)
        if nxt is None:
            return current.merged_into
        current = nxt
    return current.master_id if current.status == "active" else None


def person_view(session: Session, person: Person, *, socialcare: bool) -> dict[str, Any]:
    records = list(session.scalars(
        select(SourceRecord).where(SourceRecord.master_id == person.master_id)
        .order_by(SourceRecord.source_system, SourceRecord.source_key)))
    hidden = {f"{r.source_system}/{r.source_key}" for r in records if r.special_category and not socialcare}
    visible = [r for r in records if socialcare or not r.special_category]
    golden = {}
    golden_sources = {}
    for name, value in (person.golden or {}).items():
        source = (person.golden_sources or {}).get(name)
        if source in hidden:
            continue  # the value won from a record this caller may not see
        golden[name] = value
        golden_sources[name] = source
    linked = [{"source_system": r.source_system, "source_key": r.source_key,
               "last_updated": (r.record or {}).get("updated_at") or r.staged_at.isoformat(timespec="seconds"),
               "held_by_source": r.gone_run_id is None,
               "gone_from_source_at": r.gone_at.isoformat(timespec="seconds") if r.gone_at else None}
              for r in visible]
    involvements = []
    for r in visible:
        service = SERVICES.get(r.source_system)
        if service:
            involvements.append({"service": service[0], "description": service[1],
                                 "source_system": r.source_system, "source_key": r.source_key,
                                 "current": r.gone_run_id is None})
    return {"master_id": person.master_id, "status": person.status, "golden": golden,
            "golden_sources": golden_sources, "source_records": linked, "involvements": involvements,
            "restricted_records_withheld": bool(hidden),
            "updated_at": person.updated_at.isoformat(timespec="seconds")}
