"""``joinedup quarantine list|show|release`` on a real night: the steward lists what the gate
refused, looks at one entry, fixes the mapping, and releases the rows; a row that still fails
stays open with the new reason. Also: the match report names a source missing tonight."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.conftest import csv_drop_source, drop_file

@pytest.fixture(autouse=True)
def csv_source(project: Path) -> None:
    csv_drop_source(project, max_failure_rate=0.2, only=True)


def _cli(*args: str):  # noqa: ANN202
    from joinedup.cli import app

    result = CliRunner().invoke(app, list(args))
    return result


def _ids(session) -> dict[str, int]:  # noqa: ANN001
    from joinedup.mci.store import QuarantinedRow

    return {q.source_key: q.id for q in session.scalars(select(QuarantinedRow).where(QuarantinedRow.status == "open"))}


DOTTED = "500000020,Ms,Eluned,Price,05.06.1980,,100023336970,2 Heol Las,,,Newport,NP20 3AA,,,2019-01-01,2026-01-04T10:00:00Z"


def _night_with_a_dotted_date(project: Path) -> None:
    """The fixture extract plus one customer whose date of birth is written 05.06.1980, a format
    the mapping does not declare yet: three rows quarantined of thirteen."""
    from joinedup.pipeline import sync_source

    path = project / "adapters" / "revenues.yaml"
    path.write_text(path.read_text().replace("max_failure_rate: 0.2", "max_failure_rate: 0.3"))
    drop = drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    drop.write_text(drop.read_text(encoding="utf-8") + DOTTED + "\n", encoding="utf-8")
    sync_source("revenues", "night-1")


def test_list_show_and_release_after_a_mapping_fix(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import QuarantinedRow, SourceRecord, session_factory

    _night_with_a_dotted_date(project)
    with session_factory()() as session:
        ids = _ids(session)
    assert set(ids) == {"500000007", "500000008", "500000020"}

    listed = _cli("quarantine", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
    assert {(r["source_key"], r["rule"], r["field"]) for r in rows} == {
        ("500000007", "value_not_mappable", "date_of_birth"), ("500000008", "ni_number_valid", "ni_number"),
        ("500000020", "value_not_mappable", "date_of_birth")}
    only = _cli("quarantine", "list", "--rule", "ni_number_valid", "--json")
    assert [json.loads(line)["source_key"] for line in only.stdout.splitlines() if line.startswith("{")] == ["500000008"]

    shown = _cli("quarantine", "show", str(ids["500000020"]))
    assert shown.exit_code == 0, shown.output
    assert "value_not_mappable" in shown.stdout and "revenues/night-1/" in shown.stdout and "row 13" in shown.stdout
    assert "dob = '05.06.1980'" in shown.stdout  # the source value behind the field, for the steward
    assert "Eluned" not in shown.stdout  # the rest of the row only with --raw
    assert "first_name = 'Eluned'" in _cli("quarantine", "show", str(ids["500000020"]), "--raw").stdout

    # Nothing fixed yet: the row still fails and stays open, same entry.
    before = _cli("quarantine", "release", str(ids["500000020"]))
    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout.split("\nsome rows", 1)[0])["still_failing"] == [ids["500000020"]]

    # The engineer declares the dotted format in the mapping; the steward releases both dates.
    mapping = project / "mappings" / "revenues.yaml"
    mapping.write_text(mapping.read_text().replace('formats: ["%d/%m/%Y", "%Y-%m-%d"]', 'formats: ["%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y"]'))
    out = _cli("quarantine", "release", str(ids["500000020"]), str(ids["500000007"]), "--night", "release-1")
    assert out.exit_code == 0, out.output
    outcome = json.loads(out.stdout.split("\nsome rows", 1)[0])
    assert outcome["released"] == [ids["500000020"]] and outcome["staged"] == {"new": 1, "changed": 0, "unchanged": 0}
    assert outcome["still_failing"] == [ids["500000007"]]  # 31/13/1980 is no date in any format
    with session_factory()() as session:
        statuses = {q.source_key: q.status for q in session.scalars(select(QuarantinedRow))}
        staged = session.scalar(select(SourceRecord).where(SourceRecord.source_key == "500000020"))
        assert staged is not None and staged.match_status == "pending" and staged.last_run_id == "release-1"
        assert staged.record["date_of_birth"] == "1980-06-05"
    assert statuses == {"500000007": "open", "500000008": "open", "500000020": "released"}
    from joinedup.steward.models import AuditEntry

    with session_factory()() as session:
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "quarantine_release")
                                  .order_by(AuditEntry.id)).all()
    assert len(audited) == 2 and audited[-1].username.startswith("cli:")
    assert audited[-1].detail["released"] == [ids["500000020"]]

    unknown = _cli("quarantine", "release", "999999")
    assert unknown.exit_code == 1 and "no quarantine entry 999999" in unknown.output


def test_releasing_a_closed_entry_is_refused(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import QuarantinedRow, session_factory
    from joinedup.pipeline import sync_source

    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    sync_source("revenues", "night-1")
    with session_factory()() as session:
        entry = session.scalar(select(QuarantinedRow).where(QuarantinedRow.source_key == "500000008"))
        entry.status = "superseded"
        session.commit()
        entry_id = entry.id
    out = _cli("quarantine", "release", str(entry_id))
    assert out.exit_code == 1 and "is not open" in out.output


def test_the_match_report_says_which_source_is_missing_and_since_when(project: Path, mci_db: str) -> None:
    from joinedup.pipeline import merge, sync_source

    csv_drop_source(project, "housing", max_failure_rate=0.2)
    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    drop_file(project, "housing", "revenues_small.csv", "housing_20260105.csv")
    sync_source("revenues", "night-1")
    sync_source("housing", "night-1")
    merge("night-1")
    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260106.csv")
    sync_source("revenues", "night-2")  # housing's extract never arrives tonight
    report = Path(merge("night-2")["report"]).read_text(encoding="utf-8")
    missing = report.split("Missing tonight", 1)[1].split("<h2>", 1)[0]
    assert "housing" in missing and "night-1" in missing and "did not run tonight" in missing
    assert "revenues" not in missing
