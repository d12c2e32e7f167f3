"""Retention: delete what the hub no longer needs, once it is older than the council's period
(``schemas/retention.yaml``), and never what is still needed. ``plan_retention`` says what
would go and what stays and why; ``apply_retention`` does it and records the counts (never a
value or a file's content) as a ``runs`` row with stage ``retention``.

Kept whatever its age, with the reason in the plan:

- a landing batch not yet ``staged`` (landed, checked, failed): it is the only copy of what
  the source sent, needed to replay that night;
- a landing folder with no ``landing_batches`` row or an unfinished extract (progress.json):
  a night still under way or interrupted resumes from it;
- a staged batch behind an open quarantine entry: releasing the entry re-reads its landed row;
- files waiting in a drop folder (not landed yet) and the latest match report.

Source records their system deleted (flagged gone from source by a full extract,
:mod:`joinedup.mci.gone`) leave the index ``gone_from_source_days`` after: the hub does not keep
what the system of record no longer holds. A person left with no record is marked ``erased``
(the master ID is never reissued); one that keeps other records gets their golden record and
search keys worked out again. Each removal is an event in the person's history (ids only).
No tombstone: should the source deliver the record again, it is a new record and is matched.

Deleted landing batches keep their ``landing_batches`` row with status ``purged`` (and the
reason), so history and counts remain while the pages are gone; replay skips them.
"""
from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from joinedup.landing import MANIFEST, PROGRESS
from joinedup.mci.store import LandingBatch, PersonEvent, QuarantinedRow, Run, SourceRecord, session_factory, utcnow
from joinedup.paths import landing_dir, reports_dir
from joinedup.privacy.retention_policy import RetentionPolicy, load_policy

DAY = 86_400.0
PURGED = "purged"


@dataclass
class RetentionPlan:
    """What one retention run deletes and keeps (paths are folders/files under var/, no contents)."""
    landing_folders: list[Path] = field(default_factory=list)
    drop_files: list[Path] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    quarantine_rows: int = 0
    audit_rows: int = 0
    gone_records: list[tuple[int, str | None]] = field(default_factory=list)  # (record id, master ID)
    kept: dict[str, int] = field(default_factory=dict)  # reason -> how many landing folders kept

    def keep(self, reason: str) -> None:
        self.kept[reason] = self.kept.get(reason, 0) + 1

    def figures(self) -> dict[str, Any]:
        return {"landing_batches_deleted": len(self.landing_folders), "drop_files_deleted": len(self.drop_files),
                "reports_deleted": len(self.reports), "quarantine_rows_deleted": self.quarantine_rows,
                "audit_rows_deleted": self.audit_rows, "gone_from_source_records_deleted": len(self.gone_records),
                "kept": dict(sorted(self.kept.items()))}


def _age_days(path: Path, now: float) -> float:
    """Age of a file, or of the newest file in a folder (a folder is as young as its newest page)."""
    if path.is_dir():
        times = [p.stat().st_mtime for p in path.rglob("*") if p.is_file()] or [path.stat().st_mtime]
        return (now - max(times)) / DAY
    return (now - path.stat().st_mtime) / DAY


def _cutoff(days: int) -> datetime:
    return utcnow() - timedelta(days=days)


def _plan_landing(session: Session, policy: RetentionPolicy, plan: RetentionPlan, now: float) -> None:
    root = landing_dir()
    batches = {(b.source_system, Path(b.manifest_path).parent.name): b for b in session.scalars(select(LandingBatch))}
    open_quarantine = {(s, f.split("/")[1]) for s, f in session.execute(
        select(QuarantinedRow.source_system, QuarantinedRow.landing_file).where(QuarantinedRow.status == "open"))
        if f and f.count("/") >= 1}
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        if _age_days(folder, now) <= policy.landing_days:
            continue
        source, run = folder.parent.name, folder.name
        batch = batches.get((source, run))
        if (folder / PROGRESS).exists() or not (folder / MANIFEST).exists():
            plan.keep("unfinished extract (a resumed night continues from it)")
        elif batch is None:
            plan.keep("no landing_batches row (not registered yet: a night under way)")
        elif batch.status != "staged":
            plan.keep(f"batch {batch.status}, not staged (needed to replay that night)")
        elif (source, run) in open_quarantine:
            plan.keep("open quarantine entries read their landed rows")
        else:
            plan.landing_folders.append(folder)


def _plan_drop_files(policy: RetentionPolicy, plan: RetentionPlan, now: float) -> None:
    from joinedup.adapters import build_adapter, load_sources

    folders: set[Path] = set()
    for config in load_sources():
        if config.kind in ("csv", "fixed_width", "xml"):
            folders.add(build_adapter(config).folder)  # type: ignore[attr-defined]
    for folder in sorted(folders):
        for sub in ("processed", "rejected"):  # never the drop folder itself: those are not landed yet
            for path in sorted((folder / sub).glob("*")) if (folder / sub).is_dir() else []:
                if path.is_file() and _age_days(path, now) > policy.drop_files_days:
                    plan.drop_files.append(path)


def _plan_reports(policy: RetentionPolicy, plan: RetentionPlan, now: float) -> None:
    for path in sorted(reports_dir().glob("match_report_*.html")):
        if path.name != "match_report_latest.html" and _age_days(path, now) > policy.reports_days:
            plan.reports.append(path)


def plan_retention(session: Session, policy: RetentionPolicy | None = None) -> RetentionPlan:
    policy = policy or load_policy()
    now = time.time()
    plan = RetentionPlan()
    _plan_landing(session, policy, plan, now)
    _plan_drop_files(policy, plan, now)
    _plan_reports(policy, plan, now)
    plan.quarantine_rows = session.scalar(select(func.count()).select_from(QuarantinedRow).where(
        QuarantinedRow.status != "open", QuarantinedRow.created_at < _cutoff(policy.quarantine_days))) or 0
    from joinedup.steward.models import AuditEntry

    plan.audit_rows = session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.at < _cutoff(policy.audit_log_days))) or 0
    plan.gone_records = [tuple(r) for r in session.execute(
        select(SourceRecord.id, SourceRecord.master_id).where(
            SourceRecord.gone_at.is_not(None), SourceRecord.gone_at < _cutoff(policy.gone_from_source_days))
        .order_by(SourceRecord.id))]
    return plan


def _remove_gone_records(session: Session, records: list[tuple[int, str | None]], policy: RetentionPolicy,
                         run_id: str) -> int:
    """Remove the records gone from source longer than the policy allows; returns how many
    persons were left with no record (see the module doc)."""
    from joinedup.privacy.erasure import _absorbed, remove_records

    if not records:
        return 0
    ids = [rid for rid, _ in records]
    leaving = Counter(master for _, master in records if master is not None)  # records each person loses
    touched = set(leaving)
    held = dict(session.execute(select(SourceRecord.master_id, func.count()).where(
        SourceRecord.master_id.in_(sorted(touched))).group_by(SourceRecord.master_id)).all()) if touched else {}
    gone_whole = {m for m in touched if held.get(m, 0) == leaving[m]}
    emptied = gone_whole.union(*(_absorbed(session, m) for m in gone_whole))  # merged-in IDs' old golden records too
    at = utcnow()
    reason = f"a record its source system deleted, removed {policy.gone_from_source_days} days after (retention)"
    session.add_all(PersonEvent(master_id=master, kind="removed_by_retention", run_id=run_id, actor="retention",
                                reason=reason, evidence={"source_record_id": rid}, at=at)
                    for rid, master in records if master is not None)
    session.flush()
    remove_records(session, ids, persons_gone=emptied, persons_left=touched - gone_whole, run_id=run_id)
    return len(gone_whole)


def apply_retention(*, dry_run: bool = False, policy: RetentionPolicy | None = None,
                    run_id: str | None = None) -> dict[str, Any]:
    """Plan, and unless ``dry_run`` delete; returns the figures (counts only). Callable from a
    DAG task as ``apply_retention(run_id=...)``."""
    from joinedup.steward.models import AuditEntry

    policy = policy or load_policy()
    run_id = run_id or f"retention__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    with session_factory()() as session:
        plan = plan_retention(session, policy)
        figures = {**plan.figures(), "dry_run": dry_run, "policy": policy.model_dump()}
        if dry_run:
            return figures
        row = session.scalar(select(Run).where(Run.run_id == run_id, Run.stage == "retention"))
        if row is None:
            row = Run(run_id=run_id, stage="retention", figures={})
            session.add(row)
        batches = {(b.source_system, Path(b.manifest_path).parent.name): b for b in session.scalars(select(LandingBatch))}
        today = f"{datetime.now(timezone.utc):%Y-%m-%d}"
        for folder in plan.landing_folders:
            shutil.rmtree(folder)
            batch = batches.get((folder.parent.name, folder.name))
            if batch is not None:
                batch.status = PURGED
                batch.status_reason = f"landing files deleted by retention on {today} (older than {policy.landing_days} days)"
        for path in plan.drop_files + plan.reports:
            path.unlink(missing_ok=True)
        session.execute(delete(QuarantinedRow).where(
            QuarantinedRow.status != "open", QuarantinedRow.created_at < _cutoff(policy.quarantine_days)))
        session.execute(delete(AuditEntry).where(AuditEntry.at < _cutoff(policy.audit_log_days)))
        figures["persons_left_with_no_record"] = _remove_gone_records(session, plan.gone_records, policy, run_id)
        row.figures, row.status, row.finished_at = figures, "ok", utcnow()
        session.commit()
    return figures
