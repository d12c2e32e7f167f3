"""The match report of a night (figures, per source, data quality, the score chart) and the
quarantine list. Counts and keys only: no personal values on these pages."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from joinedup.mci.store import PersonEvent, QuarantinedRow, ReviewPair, Run, SourceRecord
from joinedup.quality.data_docs import data_docs_index
from joinedup.quality.history import source_history, sources_with_history
from joinedup.steward.report import report_figures
from joinedup.steward.users import CurrentUser
from joinedup.steward.web.chart import weight_chart
from joinedup.steward.web.routes_data_docs import data_docs_link
from joinedup.steward.web.render import render
from joinedup.steward.web.security import csrf_protect, current_user, db

router = APIRouter(dependencies=[Depends(current_user), Depends(csrf_protect)])
HISTORY_NIGHTS = 7


def quality_history(session: Session) -> list[dict]:
    """Per source, its last checked batches (newest first) with a link to each batch's Data Docs page."""
    out = []
    for source in sources_with_history(session):
        rows = list(reversed(source_history(session, source, limit=HISTORY_NIGHTS)))
        out.append({"source": source, "rows": [{"row": r, "docs": data_docs_link(r.data_docs)} for r in rows]})
    return out


@router.get("/")
def home() -> Response:
    return RedirectResponse("/report", status_code=303)


def _nights(session: Session) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.stage == "merge").order_by(Run.started_at.desc(), Run.id.desc()).limit(60)))


def _scores(session: Session, run_id: str) -> tuple[list[float], list[float]]:
    """Link scores of the records linked on the night (not those linked as a new person), and
    the scores of the pairs the night sent for review."""
    linked = list(session.scalars(select(SourceRecord.link_score).join(
        PersonEvent, PersonEvent.source_record_id == SourceRecord.id).where(
        PersonEvent.run_id == run_id, PersonEvent.kind == "linked", SourceRecord.link_score.is_not(None))))
    review = list(session.scalars(select(ReviewPair.score).where(ReviewPair.run_id == run_id)))
    return [float(s) for s in linked if isinstance(s, (int, float))], [float(s) for s in review if s is not None]


@router.get("/report")
def report(request: Request, run: str | None = None, user: CurrentUser = Depends(current_user),
           session: Session = Depends(db)) -> Response:
    nights = _nights(session)
    chosen = next((n for n in nights if n.run_id == run), nights[0] if nights else None)
    if chosen is None:
        return render(request, "report.html", title="Night report", night=None, nights=[])
    figures = report_figures(session, chosen.run_id)
    later = [n.started_at for n in nights if n.started_at > chosen.started_at]
    window = [PersonEvent.at >= chosen.started_at] + ([PersonEvent.at < min(later)] if later else [])
    splits = session.scalar(select(func.count()).select_from(PersonEvent).where(PersonEvent.kind == "split", *window)) or 0
    steward_merges = session.scalar(select(func.count()).select_from(PersonEvent).where(
        PersonEvent.kind == "merged", PersonEvent.actor != "matcher", *window)) or 0
    decided = dict(session.execute(select(ReviewPair.status, func.count()).group_by(ReviewPair.status)).all())
    linked, review = _scores(session, chosen.run_id)
    quality = {"rows_failed": sum(s["rows_failed"] or 0 for s in figures["sources"]),
               "rows_landed": sum(s["rows_landed"] or 0 for s in figures["sources"]),
               "quarantine_open": sum(s["quarantine_open"] or 0 for s in figures["sources"])}
    by_rule: dict[str, int] = {}
    for s in figures["sources"]:
        for rule, n in (s["by_rule"] or {}).items():
            by_rule[rule] = by_rule.get(rule, 0) + n
    return render(request, "report.html", title="Night report", night=chosen, nights=nights, f=figures,
                  merge=figures["merge"], splits=splits, steward_merges=steward_merges, decided=decided,
                  chart=weight_chart(linked, review), quality=quality, by_rule=sorted(by_rule.items()),
                  history=quality_history(session), data_docs=data_docs_index() is not None)


@router.get("/quarantine")
def quarantine(request: Request, source: str | None = None, session: Session = Depends(db)) -> Response:
    query = select(QuarantinedRow).where(QuarantinedRow.status == "open").order_by(QuarantinedRow.id.desc()).limit(500)
    if source:
        query = query.where(QuarantinedRow.source_system == source)
    rows = list(session.scalars(query))
    sources = list(session.scalars(select(QuarantinedRow.source_system).distinct().order_by(QuarantinedRow.source_system)))
    return render(request, "quarantine.html", title="Quarantine", rows=rows, source=source, sources=sources)
