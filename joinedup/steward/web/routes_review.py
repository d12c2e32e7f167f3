"""The review queue and the pair view: side by side, differences marked, the evidence per
field, and the decision (accept / reject / defer, with a comment)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from joinedup.canonical import identity_fields
from joinedup.mci.store import ReviewPair, SourceRecord, StewardDecision
from joinedup.steward import audit, decisions
from joinedup.steward.users import CurrentUser
from joinedup.steward.web.masking import record_view, safe_evidence
from joinedup.steward.web.render import flash, render
from joinedup.steward.web.security import csrf_protect, current_user, db, require_steward

router = APIRouter(dependencies=[Depends(current_user), Depends(csrf_protect)])
QUEUE_STATUSES = ("open", "deferred", "accepted", "rejected")
QUEUE_LIMIT = 300


def queue_rows(session: Session, status: str, limit: int = QUEUE_LIMIT) -> list[Any]:
    """Pairs of one status, highest impact first: the number of records the decision moves
    (both persons' records), then the score, then the oldest."""
    sizes = select(SourceRecord.master_id, func.count().label("n")).where(SourceRecord.master_id.is_not(None)) \
        .group_by(SourceRecord.master_id).subquery()
    left, right = aliased(SourceRecord), aliased(SourceRecord)
    size_l, size_r = aliased(sizes), aliased(sizes)
    impact = (func.coalesce(size_l.c.n, 1) + func.coalesce(size_r.c.n, 1)).label("impact")
    query = (select(ReviewPair, left, right, impact)
             .join(left, left.id == ReviewPair.record_id_l).join(right, right.id == ReviewPair.record_id_r)
             .outerjoin(size_l, size_l.c.master_id == left.master_id)
             .outerjoin(size_r, size_r.c.master_id == right.master_id)
             .where(ReviewPair.status == status)
             .order_by(impact.desc(), ReviewPair.score.desc(), ReviewPair.id).limit(limit))
    return list(session.execute(query).all())


@router.get("/review")
def queue(request: Request, status: str = "open", user: CurrentUser = Depends(current_user),
          session: Session = Depends(db)) -> Response:
    if status not in QUEUE_STATUSES:
        status = "open"
    rows = [{"pair": pair, "left": record_view(l, user), "right": record_view(r, user), "impact": impact,
             "same_person": l.master_id is not None and l.master_id == r.master_id}
            for pair, l, r, impact in queue_rows(session, status)]
    counts = dict(session.execute(select(ReviewPair.status, func.count()).group_by(ReviewPair.status)).all())
    return render(request, "queue.html", title="Review queue", rows=rows, status=status, counts=counts,
                  statuses=QUEUE_STATUSES)


def compare(left: dict[str, Any], right: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per field: both values and whether they agree (case and spacing ignored)."""
    rows = []
    for name in [*identity_fields(), "updated_at"]:
        a, b = left.get(name), right.get(name)
        if a in (None, "") and b in (None, ""):
            continue
        norm = lambda v: " ".join(str(v).upper().split()) if v not in (None, "") else None  # noqa: E731
        if norm(a) is None or norm(b) is None:
            state = "missing"
        elif norm(a) == norm(b):
            state = "same"
        else:
            state = "differs"
        rows.append({"field": name, "left": a, "right": b, "state": state})
    return rows


def evidence_tables(evidence: dict[str, Any]) -> tuple[list[tuple[str, Any]], list[dict[str, Any]]]:
    """Scalars as (key, value), and every list of dicts as a table (columns = union of keys),
    whatever shape the matcher stores: the page renders what is there."""
    scalars, tables = [], []
    for key, value in (evidence or {}).items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns: list[str] = []
            for item in value:
                columns += [k for k in item if k not in columns]
            weight_key = next((k for k in ("match_weight", "weight", "log2_bayes_factor") if k in columns), None)
            weights = [abs(float(i[weight_key])) for i in value if weight_key and isinstance(i.get(weight_key), (int, float))]
            tables.append({"name": key, "columns": columns, "rows": value, "weight_key": weight_key,
                           "max_weight": max(weights, default=0) or 1})
        elif isinstance(value, dict):
            scalars += [(f"{key}.{k}", v) for k, v in value.items()]
        else:
            scalars.append((key, value))
    return scalars, tables


def _neighbours(session: Session, pair: ReviewPair) -> tuple[int | None, int | None]:
    ids = [p.id for p, *_ in queue_rows(session, pair.status if pair.status in QUEUE_STATUSES else "open")]
    if pair.id not in ids:
        return None, ids[0] if ids else None
    i = ids.index(pair.id)
    return (ids[i - 1] if i > 0 else None), (ids[i + 1] if i + 1 < len(ids) else None)


@router.get("/review/{pair_id}")
def pair_view(request: Request, pair_id: int, user: CurrentUser = Depends(current_user),
              session: Session = Depends(db)) -> Response:
    pair = session.get(ReviewPair, pair_id)
    if pair is None:
        raise HTTPException(404, f"no review pair {pair_id}")
    left_rec, right_rec = session.get(SourceRecord, pair.record_id_l), session.get(SourceRecord, pair.record_id_r)
    left, right = record_view(left_rec, user), record_view(right_rec, user)
    restricted = left.restricted or right.restricted
    scalars, tables = evidence_tables(safe_evidence(pair.evidence, restricted))
    history = list(session.scalars(select(StewardDecision).where(
        StewardDecision.record_id_l.in_([pair.record_id_l, pair.record_id_r]) |
        StewardDecision.record_id_r.in_([pair.record_id_l, pair.record_id_r])).order_by(StewardDecision.id)))
    prev_id, next_id = _neighbours(session, pair)
    audit.record(session, user.username, "view_pair", pair_id=pair.id)
    session.commit()
    return render(request, "pair.html", title=f"Pair {pair.id}", pair=pair, left=left, right=right,
                  rows=compare(left.values, right.values) if not restricted else [],
                  restricted=restricted, scalars=scalars, tables=tables, history=history,
                  superseded=decisions.superseded_must_links(history), prev_id=prev_id, next_id=next_id,
                  decidable=pair.status in decisions.DECIDABLE)


@router.post("/review/{pair_id}/decide")
def decide(request: Request, pair_id: int, action: str = Form(...), comment: str = Form(""),
           user: CurrentUser = Depends(require_steward), session: Session = Depends(db)) -> Response:
    apply = {"accept": decisions.accept_pair, "reject": decisions.reject_pair, "defer": decisions.defer_pair}.get(action)
    if apply is None:
        raise HTTPException(400, f"unknown action {action!r}; known: accept, reject, defer")
    pair = session.get(ReviewPair, pair_id)
    if pair is None:
        raise HTTPException(404, f"no review pair {pair_id}")
    _prev, next_id = _neighbours(session, pair)
    try:
        outcome = apply(session, pair_id, user.username, comment[:2000])
    except decisions.DecisionError as exc:
        session.rollback()
        flash(request, str(exc), kind="error")
        return RedirectResponse(f"/review/{pair_id}", status_code=303)
    audit.record(session, user.username, action, pair_id=pair_id, master_id=outcome.master_id,
                 detail={"records_moved": outcome.records_moved})
    session.commit()
    link = (f"/person/{outcome.master_id}", f"Open person {outcome.master_id}") if outcome.master_id else None
    flash(request, f"Pair {pair_id}: {outcome.message}", link=link)
    return RedirectResponse(f"/review/{next_id}" if next_id else "/review", status_code=303)
