"""Retention: files and rows older than schemas/retention.yaml's periods go, newer ones stay,
and what is still needed stays whatever its age (un-staged batches, unfinished extracts,
batches behind open quarantine entries, files not yet landed). Ages are set with mtime."""
from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

DAY = 86_400


def _age(path: Path, days: float) -> None:
    when = time.time() - days * DAY
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (when, when))


def _land(source: str, run: str, status: str, days: float, *, finished: bool = True) -> Path:
    from joinedup.landing import LandingWriter
    from joinedup.mci.store import LandingBatch, session_factory

    writer = LandingWriter(source, run, None)
    writer.write_page([{"TenantRef": "HT000001"}], origin="test")
    if finished:
        manifest = writer.complete("c1")
        with session_factory()() as session:
            session.add(LandingBatch(source_system=source, run_id=run, rows=manifest.rows, sha256=manifest.sha256,
                                     manifest_path=str(writer.folder / "manifest.json"), status=status))
            session.commit()
    _age(writer.folder, days)
    return writer.folder


@pytest.fixture
def held(project: Path) -> dict[str, Path]:
    """A var/ with old and new landing batches, drop files, reports, quarantine and audit rows."""
    from joinedup.mci.store import QuarantinedRow, session_factory, utcnow
    from joinedup.steward.models import AuditEntry

    paths = {
        "staged_old": _land("housing", "night-old", "staged", 120),
        "staged_new": _land("housing", "night-new", "staged", 10),
        "landed_old": _land("housing", "night-unstaged", "landed", 120),
        "failed_old": _land("revenues", "night-failed", "failed", 120),
        "quarantined_old": _land("revenues", "night-q", "staged", 120),
        "unfinished_old": _land("revenues", "night-crashed", "landed", 120, finished=False),
    }
    drops = project / "var" / "drops" / "council"
    for name, days in (("processed/hr_20250101.dat", 40), ("processed/hr_20250301.dat", 5),
                       ("rejected/socialcare_20250101.xml", 40), ("rejected/socialcare_20250101.xml.reason.txt", 40),
                       ("hr_20250102.dat", 400)):
        path = drops / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x", encoding="utf-8")
        _age(path, days)
        paths[name] = path
    reports = project / "var" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    for name in ("match_report_night-old.html", "match_report_latest.html", "match_report_night-new.html"):
        (reports / name).write_text("<html></html>", encoding="utf-8")
        _age(reports / name, 10 if "new" in name else 400)
        paths[name] = reports / name
    now = utcnow()
    with session_factory()() as session:
        for status, days, run in (("released", 200, "night-old"), ("open", 200, "night-q"), ("superseded", 20, "night-new")):
            session.add(QuarantinedRow(run_id=run, source_system="revenues" if run == "night-q" else "housing",
                                       source_key=None, rule="r", field=None, reason="test",
                                       landing_file=f"{'revenues' if run == 'night-q' else 'housing'}/{run}/page-00001.jsonl",
                                       landing_row=1, status=status, created_at=now - timedelta(days=days)))
        session.add(AuditEntry(username="u", action="login", at=now - timedelta(days=2200)))
        session.add(AuditEntry(username="u", action="login", at=now - timedelta(days=30)))
        session.commit()
    return paths


def _quarantine_statuses() -> list[str]:
    from joinedup.mci.store import QuarantinedRow, session_factory

    with session_factory()() as session:
        return sorted(session.scalars(select(QuarantinedRow.status)))


def test_dry_run_says_what_would_go_and_deletes_nothing(held: dict[str, Path]) -> None:
    from joinedup.cli import app

    result = CliRunner().invoke(app, ["retention", "apply", "--dry-run"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["landing_batches_deleted"] == 1 and figures["drop_files_deleted"] == 3
    assert figures["reports_deleted"] == 1 and figures["quarantine_rows_deleted"] == 1 and figures["audit_rows_deleted"] == 1
    assert all(p.exists() for p in held.values())
    assert _quarantine_statuses() == ["open", "released", "superseded"]


def test_old_files_go_new_and_still_needed_ones_stay(held: dict[str, Path]) -> None:
    from joinedup.mci.store import LandingBatch, Run, session_factory
    from joinedup.privacy.retention import apply_retention
    from joinedup.steward.models import AuditEntry

    figures = apply_retention(run_id="retention-test")
    gone = {"staged_old", "processed/hr_20250101.dat", "rejected/socialcare_20250101.xml",
            "rejected/socialcare_20250101.xml.reason.txt", "match_report_night-old.html"}
    assert {name for name, p in held.items() if not p.exists()} == gone
    # kept whatever their age, each for its reason
    assert figures["kept"] == {
        "batch failed, not staged (needed to replay that night)": 1,
        "batch landed, not staged (needed to replay that night)": 1,
        "open quarantine entries read their landed rows": 1,
        "unfinished extract (a resumed night continues from it)": 1,
    }
    assert _quarantine_statuses() == ["open", "superseded"]
    with session_factory()() as session:
        purged = session.scalar(select(LandingBatch).where(LandingBatch.run_id == "night-old"))
        assert purged.status == "purged" and "retention" in purged.status_reason
        assert session.scalar(select(LandingBatch.status).where(LandingBatch.run_id == "night-new")) == "staged"
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1
        run = session.scalar(select(Run).where(Run.stage == "retention", Run.run_id == "retention-test"))
        assert run.status == "ok" and run.figures["landing_batches_deleted"] == 1
    # a second run finds nothing more to delete
    again = apply_retention()
    assert again["landing_batches_deleted"] == again["drop_files_deleted"] == again["quarantine_rows_deleted"] == 0


def test_a_mistyped_retention_key_is_refused_with_its_line(project: Path) -> None:
    from joinedup.configfile import ConfigError
    from joinedup.privacy.retention_policy import load_policy, policy_path

    path = policy_path()
    path.write_text(path.read_text(encoding="utf-8") + "landing_dayz: 10\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="landing_dayz: unknown key"):
        load_policy()
