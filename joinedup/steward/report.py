"""The match report of a night: an HTML page under ``var/reports/``.

It shows counts and keys, never personal values: it is a file anyone with access to the
server can open. Values are shown by the workbench, behind login and roles.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from joinedup.landing import safe_run_id
from joinedup.mci.store import LandingBatch, Person, QuarantinedRow, ReviewPair, Run, SourceRecord
from joinedup.paths import reports_dir

_env = Environment(loader=PackageLoader("joinedup.steward", "templates"), autoescape=select_autoescape())


def report_figures(session: Session, run_id: str) -> dict[str, Any]:
    stages = {r.stage: r for r in session.scalars(select(Run).where(Run.run_id == run_id))}
    sources = sorted({s.split(":", 1)[1] for s in stages if ":" in s} |
                     set(session.scalars(select(LandingBatch.source_system).distinct())))
    per_source = []
    for name in sources:
        land, check, stage = (stages.get(f"{k}:{name}") for k in ("land", "check", "stage"))
        per_source.append({
            "source": name,
            "rows_landed": (land.figures or {}).get("rows_landed") if land else None,
            "rows_failed": (check.figures or {}).get("rows_failed") if check else None,
            "by_rule": (check.figures or {}).get("by_rule", {}) if check else {},
            "new": (stage.figures or {}).get("new") if stage else None,
            "changed": (stage.figures or {}).get("changed") if stage else None,
            "status": "ran tonight" if land else "did not run tonight",
            "failed": [s.stage for s in (land, check, stage) if s is not None and s.status == "failed"],
            "records_in_index": session.scalar(select(func.count()).select_from(SourceRecord).where(SourceRecord.source_system == name)),
            "quarantine_open": session.scalar(select(func.count()).select_from(QuarantinedRow).where(
                QuarantinedRow.source_system == name, QuarantinedRow.status == "open")),
        })
    merge = stages.get("merge")
    rules = session.execute(select(SourceRecord.link_rule, func.count()).group_by(SourceRecord.link_rule)).all()
    review = session.execute(
        select(ReviewPair.id, ReviewPair.rule, ReviewPair.score, ReviewPair.evidence, ReviewPair.record_id_l, ReviewPair.record_id_r)
        .where(ReviewPair.status == "open").order_by(ReviewPair.score.desc(), ReviewPair.id).limit(200)
    ).all()
    keys = dict((rid, f"{sys}/{key}") for rid, sys, key in session.execute(
        select(SourceRecord.id, SourceRecord.source_system, SourceRecord.source_key).where(
            SourceRecord.id.in_({r.record_id_l for r in review} | {r.record_id_r for r in review}))))
    return {
        "run_id": run_id,
        "merge": (merge.figures or {}) if merge else {},
        "sources": per_source,
        "persons": session.scalar(select(func.count()).select_from(Person).where(Person.status == "active")),
        "records": session.scalar(select(func.count()).select_from(SourceRecord)),
        "link_rules": sorted(((r or "(pending)"), n) for r, n in rules),
        "review": [{"id": r.id, "rule": r.rule, "score": r.score, "weight": (r.evidence or {}).get("match_weight"),
                    "left": keys.get(r.record_id_l), "right": keys.get(r.record_id_r)} for r in review],
    }


def write_match_report(session: Session, run_id: str) -> Path:
    figures = report_figures(session, run_id)
    html = _env.get_template("match_report.html").render(**figures)
    path = reports_dir() / f"match_report_{safe_run_id(run_id)}.html"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    latest = reports_dir() / "match_report_latest.html"
    latest.write_text(html, encoding="utf-8")
    return path
