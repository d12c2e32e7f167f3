"""The thin path end to end, in process: CSV drop -> landing -> mapping -> gate -> staging ->
match -> master IDs -> report, on SQLite and PostgreSQL."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import csv_drop_source, drop_file


@pytest.fixture(autouse=True)
def csv_source(project: Path) -> None:
    """The revenues extract as a CSV drop, whatever the demo council configures."""
    csv_drop_source(project, only=True)


def _masters(session) -> dict[str, str | None]:  # noqa: ANN001
    from joinedup.mci.store import SourceRecord

    return dict(session.execute(select(SourceRecord.source_key, SourceRecord.master_id)).all())


def test_night_builds_the_index(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import Person, QuarantinedRow, ReviewPair, session_factory
    from joinedup.pipeline import merge, sync_source

    csv_drop_source(project, max_failure_rate=0.2)
    drop = drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    result = sync_source("revenues", "night-1")
    assert result["rows_landed"] == 12
    assert result["rows_failed"] == 2 and result["new"] == 10
    assert not drop.exists() and (drop.parent / "processed" / drop.name).exists()
    out = merge("night-1")

    with session_factory()() as session:
        masters = _masters(session)
        quarantine = {(q.source_key, q.rule, q.field) for q in session.scalars(select(QuarantinedRow))}
        persons = session.scalar(select(func.count()).select_from(Person))
        assert quarantine == {("500000007", "value_not_mappable", "date_of_birth"),
                              ("500000008", "ni_number_valid", "ni_number")}
        assert "500000007" not in masters and "500000008" not in masters
        assert masters["500000001"] == masters["500000002"]  # same NI number and DOB
        assert masters["500000009"] == masters["500000010"]  # Peggy is Margaret: same NI number and DOB
        assert masters["500000004"] == masters["500000005"]  # same name, DOB, postcode
        assert masters["500000006"] != masters["500000004"]  # twin sister at the same address
        assert masters["500000011"] != masters["500000012"]  # different valid NI numbers
        assert persons == 7 == len(set(masters.values()))
        assert session.scalar(select(func.count()).select_from(ReviewPair)) == 0
    assert out["new_persons"] == 7 and out["refused_by_constraint"] == 0
    report = Path(out["report"]).read_text(encoding="utf-8")
    assert "persons in the index" in report
    for name in ("Smith", "William", "Lloyd-Jones", "AB123456C"):
        assert name not in report  # keys and counts only


def _first_night(project: Path) -> dict[str, str | None]:
    """The fixture extract synced and merged as night-1; the record -> master ID map."""
    from joinedup.mci.store import session_factory
    from joinedup.pipeline import merge, sync_source

    csv_drop_source(project, max_failure_rate=0.2)
    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    sync_source("revenues", "night-1")
    merge("night-1")
    with session_factory()() as session:
        return _masters(session)


def test_rerun_of_the_same_night_changes_nothing(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import PersonEvent, session_factory
    from joinedup.pipeline import merge, sync_source

    before = _first_night(project)
    with session_factory()() as session:
        events = session.scalar(select(func.count()).select_from(PersonEvent))
    again = sync_source("revenues", "night-1")  # same night: landed already, nothing to stage
    assert again["rows_landed"] == 12 and again["new"] == 0 and again["changed"] == 0
    merge("night-1")
    # the next night receives the same file again: every record unchanged
    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260106.csv")
    night2 = sync_source("revenues", "night-2")
    assert night2["unchanged"] == 10 and night2["new"] == 0
    assert merge("night-2")["records_compared"] == 0
    with session_factory()() as session:
        assert _masters(session) == before
        assert session.scalar(select(func.count()).select_from(PersonEvent)) == events


def test_gate_over_threshold_loads_nothing_and_fails_loudly(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import LandingBatch, SourceRecord, session_factory
    from joinedup.pipeline import sync_source
    from joinedup.quality.gate import QualityGateFailed

    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")  # 2 of 12 bad > 10%
    with pytest.raises(QualityGateFailed, match="2 of 12 rows failed"):
        sync_source("revenues", "night-1")
    with session_factory()() as session:
        assert session.scalar(select(func.count()).select_from(SourceRecord)) == 0
        batch = session.scalar(select(LandingBatch))
        assert batch.status == "failed" and "threshold" in batch.status_reason
    # Raising the threshold (the steward accepts the rate) and re-running loads the kept batch.
    csv_drop_source(project, max_failure_rate=0.2)
    result = sync_source("revenues", "night-2")
    assert result["new"] == 10


def test_changed_record_is_rematched_and_keeps_its_master_id(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import Person, session_factory
    from joinedup.pipeline import merge, sync_source

    before = _first_night(project)
    text = (Path(__file__).parents[1] / "fixtures" / "revenues_small.csv").read_text(encoding="utf-8")
    lines = [line.replace("3 Church Road,,,Newport,NP20 1AB", "8 New Street,,,Newport,NP20 9XY")
                 .replace("2026-01-04T10", "2026-01-06T10")
             if line.startswith("500000004") else line for line in text.splitlines()]
    folder = project / "var" / "drops" / "revenues"
    (folder / "revenues_20260106.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    night2 = sync_source("revenues", "night-2")
    assert night2["changed"] == 1 and night2["unchanged"] == 9
    out = merge("night-2")
    assert out["records_compared"] == 1 and out["new_persons"] == 0
    with session_factory()() as session:
        assert _masters(session) == before
        person = session.get(Person, before["500000004"])
        assert person.golden["postcode"] == "NP20 9XY"  # most recent address wins
        assert person.golden_sources["postcode"] == "revenues/500000004"


def test_replay_after_a_mapping_fix_loads_the_batch_without_the_source(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import QuarantinedRow, SourceRecord, session_factory
    from joinedup.pipeline import replay, sync_source
    from joinedup.quality.gate import QualityGateFailed

    csv_drop_source(project, max_failure_rate=0.2)
    mapping = project / "mappings" / "revenues.yaml"
    good = mapping.read_text()
    mapping.write_text(good.replace('formats: ["%d/%m/%Y", "%Y-%m-%d"]', 'formats: ["%Y-%m-%d"]'))  # a mistake
    drop = drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    with pytest.raises(QualityGateFailed):
        sync_source("revenues", "night-1")  # every date of birth unmappable: nothing loaded
    assert not drop.exists()  # the file was landed and moved: the source is not asked again
    mapping.write_text(good)  # the engineer fixes the mapping
    out = replay("revenues", "replay-1")
    assert out["batches_replayed"] == 1 and out["rows_failed"] == 2 and out["new"] == 10
    with session_factory()() as session:
        assert session.scalar(select(func.count()).select_from(SourceRecord)) == 10
        statuses = sorted((q.source_key, q.rule, q.status) for q in session.scalars(select(QuarantinedRow)))
    assert ("500000007", "value_not_mappable", "open") in statuses
    assert ("500000008", "ni_number_valid", "open") in statuses
    assert all(status == "replayed" for key, rule, status in statuses
               if (key, rule) not in {("500000007", "value_not_mappable"), ("500000008", "ni_number_valid")})
