"""The match report of a night: an HTML page under ``var/reports/``.

It shows counts and keys, never personal values: it is a file anyone with access to the
server can open. Values are shown by the workbench, behind login and roles.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from joinedup.landing import safe_run_id
from joinedup.mci.store import LandingBatch, Person, QuarantinedRow, ReviewPair, Run, SourceRecord
from joinedup.paths import reports_dir

_env = Environment(loader=PackageLoader("joinedup.steward", "templates"), autoescape=select_autoescape())


def _configured_sources() -> set[str]:
    """The sources in adapters/ (a source that never ran is missing too); none if unreadable."""
    try:
        from joinedup.adapters import load_sources

        return {c.name for c in load_sources()}
    except Exception:  # noqa: BLE001 - the report still shows what ran
        return set()


def last_good_night(session: Session, source: str, before: datetime | None = None) -> Run | None:
    """The latest night the source loaded cleanly: its check and its stage both ``ok``."""
    checks = {r.run_id: r for r in session.scalars(select(Run).where(Run.stage == f"check:{source}", Run.status == "ok"))}
    stages = [r for r in session.scalars(select(Run).where(Run.stage == f"stage:{source}", Run.status == "ok"))
              if r.run_id in checks and (before is None or (r.finished_at or r.started_at) <= before)]
    return max(stages, key=lambda r: (r.finished_at or r.started_at, r.id), default=None)


def missing_sources(session: Session, run_id: str, sources: list[str], stages: dict[str, Run]) -> list[dict[str, Any]]:
    """Sources that did not load tonight, with the last night each did (``None``: never)."""
    merge = stages.get("merge")
    cutoff = merge.started_at if merge else None
    out = []
    for name in sources:
        ok = [stages.get(f"{k}:{name}") for k in ("land", "check", "stage")]
        if all(s is not None and s.status == "ok" for s in ok):
            continue
        failed = [s.stage.split(":")[0] for s in ok if s is not None and s.status == "failed"]
        if ok[0] is None:
            why = "did not run tonight"
        elif failed:
            why = "failed: " + ", ".join(failed)
        else:
            why = "did not finish tonight"
        last = last_good_night(session, name, before=cutoff)
        out.append({"source": name, "why": why, "last_good_night": last.run_id if last else None,
                    "last_good_at": (last.finished_at or last.started_at) if last else None})
    return out


def report_figures(session: Session, run_id: str) -> dict[str, Any]:
    stages = {r.stage: r for r in session.scalars(select(Run).where(Run.run_id == run_id))}
    sources = sorted({s.split(":", 1)[1] for s in stages if ":" in s} |
                     set(session.scalars(select(LandingBatch.source_system).distinct())) | _configured_sources())
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
        "missing": missing_sources(session, run_id, sources, stages),
        "links": _report_links(sources),
        "review": [{"id": r.id, "rule": r.rule, "score": r.score, "weight": (r.evidence or {}).get("match_weight"),
                    "left": keys.get(r.record_id_l), "right": keys.get(r.record_id_r)} for r in review],
    }


def _report_links(sources: list[str]) -> dict[str, Any]:
    """Links from the report (in var/reports) to the data-quality pages and GX Data Docs."""
    from joinedup.quality.data_docs import data_docs_index
    from joinedup.quality.pages import quality_index

    pages = quality_index()
    return {
        "quality_index": "quality/index.html" if pages else None,
        "quality": {s: f"quality/{s}.html" for s in sources if pages and (pages.parent / f"{s}.html").exists()},
        "data_docs": "data_docs/index.html" if data_docs_index() else None,
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
