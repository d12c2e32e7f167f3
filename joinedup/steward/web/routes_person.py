"""The person page (golden record with its winning sources, every linked record, history,
unmerge) and search by name, date of birth, postcode and NI number."""
from __future__ import annotations

import re
from datetime import datetime

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from joinedup.canonical import identity_fields
from joinedup.mci.store import Person, PersonEvent, SourceRecord
from joinedup.steward import audit, decisions
from joinedup.steward.users import CurrentUser
from joinedup.steward.web.masking import display_name, golden_view, is_restricted, record_view
from joinedup.steward.web.render import flash, render
from joinedup.steward.web.security import Forbidden, csrf_protect, current_user, db, require_steward

router = APIRouter(dependencies=[Depends(current_user), Depends(csrf_protect)])
SEARCH_LIMIT = 50


@router.get("/person/{master_id}")
def person_page(request: Request, master_id: str, user: CurrentUser = Depends(current_user),
                session: Session = Depends(db)) -> Response:
    person = session.get(Person, master_id)
    if person is None:
        raise HTTPException(404, f"no person {master_id}")
    records = list(session.scalars(select(SourceRecord).where(SourceRecord.master_id == master_id)
                                   .order_by(SourceRecord.source_system, SourceRecord.source_key)))
    views = [record_view(r, user) for r in records]
    golden = golden_view(person.golden or {}, person.golden_sources or {}, records, user)
    winners = {f: s for f, s in (person.golden_sources or {}).items()}
    fields = [f for f in [*identity_fields(), "updated_at"] if any(v.values.get(f) for v in views)]
    events = list(session.scalars(select(PersonEvent).where(
        or_(PersonEvent.master_id == master_id, PersonEvent.other_master_id == master_id))
        .order_by(PersonEvent.at, PersonEvent.id)))
    labels = {r.id: v.label for r, v in zip(records, views)}
    other_ids = {e.source_record_id for e in events if e.source_record_id and e.source_record_id not in labels}
    for r in session.scalars(select(SourceRecord).where(SourceRecord.id.in_(other_ids))) if other_ids else []:
        labels[r.id] = record_view(r, user).label
    audit.record(session, user.username, "view_person", master_id=master_id, detail={"records": len(records)})
    session.commit()
    return render(request, "person.html", title=f"Person {master_id}", person=person, records=views, golden=golden,
                  fields=fields, winners=winners, events=events, labels=labels,
                  can_unmerge=user.can_decide and person.status == "active" and len(records) > 1)


@router.post("/person/{master_id}/unmerge")
def unmerge(request: Request, master_id: str, record_id: list[int] = Form(default=[]), reason: str = Form(""),
            user: CurrentUser = Depends(require_steward), session: Session = Depends(db)) -> Response:
    chosen = session.scalars(select(SourceRecord).where(SourceRecord.id.in_(record_id))).all() if record_id else []
    if any(is_restricted(r, user) for r in chosen):
        raise Forbidden("A restricted special-category record can only be moved by a user with the social-care permission.")
    try:
        outcome = decisions.unmerge(session, master_id, record_id, user.username, reason[:2000])
    except decisions.DecisionError as exc:
        session.rollback()
        flash(request, str(exc), kind="error")
        return RedirectResponse(f"/person/{master_id}", status_code=303)
    audit.record(session, user.username, "unmerge", master_id=master_id,
                 detail={"records_moved": outcome.records_moved, "new_master_id": outcome.new_master_id})
    session.commit()
    flash(request, outcome.message, link=(f"/person/{outcome.new_master_id}", f"Open person {outcome.new_master_id}"))
    return RedirectResponse(f"/person/{master_id}", status_code=303)


# -- search -----------------------------------------------------------------------------------
def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def parse_dob(text: str) -> str | None:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(text.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    return None


def search_conditions(q: str, dob: str, postcode: str, ni: str) -> tuple[list, list[str]]:
    """SQL conditions over the source records' JSON (parameterised), and the problems found."""
    rec = SourceRecord.record
    conds, problems = [], []
    for token in [t for t in re.split(r"[\s,]+", q.strip().lower()) if t][:4]:
        pattern = _like(token)
        conds.append(or_(*(func.lower(rec[f].as_string()).like(pattern, escape="\\")
                           for f in ("given_name", "family_name", "previous_family_names", "middle_names"))))
    if dob.strip():
        iso = parse_dob(dob)
        if iso is None:
            problems.append("date of birth: use DD/MM/YYYY or YYYY-MM-DD")
        else:
            conds.append(rec["date_of_birth"].as_string() == iso)
    if postcode.strip():
        conds.append(func.replace(func.upper(rec["postcode"].as_string()), " ", "") == re.sub(r"\s", "", postcode.upper()))
    if ni.strip():
        key = re.sub(r"\s", "", ni.upper())[:8]
        conds.append(func.substr(rec["ni_number"].as_string(), 1, 8) == key)
    return conds, problems


@router.get("/search")
def search(request: Request, q: str = "", dob: str = "", postcode: str = "", ni: str = "",
           user: CurrentUser = Depends(current_user), session: Session = Depends(db)) -> Response:
    conds, problems = search_conditions(q[:200], dob[:20], postcode[:10], ni[:13])
    results = []
    if conds and not problems:
        where = [SourceRecord.master_id.is_not(None), and_(*conds)]
        if not user.socialcare:
            where.append(SourceRecord.special_category.is_(False))  # no finding people through restricted data
        ids = list(session.scalars(select(SourceRecord.master_id).where(*where).distinct()
                                   .order_by(SourceRecord.master_id).limit(SEARCH_LIMIT)))
        persons = {p.master_id: p for p in session.scalars(select(Person).where(Person.master_id.in_(ids)))}
        records = list(session.scalars(select(SourceRecord).where(SourceRecord.master_id.in_(ids))))
        for mid in ids:
            mine = [r for r in records if r.master_id == mid]
            hidden = {f"{r.source_system}/{r.source_key}" for r in mine if is_restricted(r, user)}
            p = persons[mid]
            show = lambda f: None if (p.golden_sources or {}).get(f) in hidden else (p.golden or {}).get(f)  # noqa: E731
            results.append({"master_id": mid, "name": display_name(p.golden or {}, p.golden_sources or {}, hidden),
                            "dob": show("date_of_birth"), "postcode": show("postcode"),
                            "records": len(mine), "restricted": len(hidden),
                            "systems": sorted({r.source_system for r in mine if not is_restricted(r, user)})})
        audit.record(session, user.username, "search", detail={"results": len(results)})
        session.commit()
    return render(request, "search.html", title="Search", q=q, dob=dob, postcode=postcode, ni=ni, results=results,
                  problems=problems, searched=bool(conds), limit=SEARCH_LIMIT)
