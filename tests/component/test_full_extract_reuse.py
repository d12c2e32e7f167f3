"""A full extract (``extract: full``) maps only the records its last batch did not hold, and
checks to exactly what mapping it whole gives: the same hand-over rows, quarantine entries,
figures. Nothing is reused after the mapping changes or when the kept rows cannot be read;
erasure removes a person's kept rows and leaves the rest usable."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, update

from tests.component.test_check_chunks import _awkward_revenues, _council, _drop
from tests.conftest import csv_drop_source

NIGHTS = ("night-1", "night-2")


def _night_two(night_one: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Night one again with a few records changed, one gone, two new and one new failure."""
    rows = [dict(r) for r in night_one]
    rows[5]["last_name"] = rows[5]["last_name"] + "-Jones"
    rows[6]["dob"] = "01/01/1970"
    rows[8]["postcode"] = "not a postcode"
    del rows[7]
    rows += [dict(r) for r in _council("revenues")[70:72]]
    return rows


def _distinct(rows: list[dict[str, Any]]) -> set[tuple]:
    return {tuple(sorted(r.items())) for r in rows}


def _land_both(project: Path, extract: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Night one landed and checked with ``extract``, night two landed (not checked)."""
    from joinedup import pipeline

    csv_drop_source(project, only=True, max_failure_rate=0.5, extract=extract)
    one = _awkward_revenues()
    _drop(project, one)
    pipeline.land("revenues", NIGHTS[0])
    pipeline.check("revenues", NIGHTS[0])
    two = _night_two(one)
    folder = project / "var" / "drops" / "revenues"
    _drop(project, two)  # night one's file was moved out of the folder when it landed
    (folder / "revenues_20260105.csv").rename(folder / "revenues_20260106.csv")
    pipeline.land("revenues", NIGHTS[1])
    return one, two


def _check_night_two(project: Path, monkeypatch: pytest.MonkeyPatch, extract: str, run_id: str,
                     chunk: int = 100_000) -> dict[str, Any]:
    """Check night two again (its earlier check forgotten) with ``extract``; what it left
    behind and how many rows it mapped."""
    from joinedup import pipeline
    from joinedup.mci.store import LandingBatch, QuarantinedRow, Run, session_factory

    csv_drop_source(project, only=True, max_failure_rate=0.5, extract=extract)
    monkeypatch.setattr(pipeline, "CHECK_CHUNK_ROWS", chunk)
    mapped_rows = []
    real = pipeline.map_records
    monkeypatch.setattr(pipeline, "map_records", lambda records, *a, **k: mapped_rows.append(len(records))
                        or real(records, *a, **k))
    with session_factory()() as session:
        session.execute(update(QuarantinedRow).where(QuarantinedRow.run_id == NIGHTS[1]).values(status="superseded"))
        session.execute(update(LandingBatch).where(LandingBatch.run_id == NIGHTS[1])
                        .values(status="landed", status_reason=None))
        session.commit()
        folder = pipeline.work_dir(session.scalar(select(LandingBatch).where(LandingBatch.run_id == NIGHTS[1])))
    for old in folder.glob("*") if folder.exists() else []:
        old.unlink()
    result = pipeline.check("revenues", run_id)
    passed = pd.read_parquet(folder / "passed.parquet").astype(object)
    with session_factory()() as session:
        figures = session.scalar(select(Run.figures).where(Run.run_id == run_id, Run.stage == "check:revenues"))
        quarantine = [(q.source_key, q.rule, q.field, q.reason, q.landing_file, q.landing_row)
                      for q in session.scalars(select(QuarantinedRow).where(QuarantinedRow.run_id == NIGHTS[1],
                                                                            QuarantinedRow.status == "open")
                                               .order_by(QuarantinedRow.id))]
    kept = folder / "mapped.parquet"
    return {"result": result, "mapped_rows": sum(mapped_rows), "kept_rows": pq.read_table(kept).num_rows if kept.exists() else None,
            "passed": passed.where(passed.notna(), None),
            "failures": json.loads((folder / "failures.json").read_text(encoding="utf-8")),
            "batch_figures": [{k: v for k, v in b.items() if k != "data_docs"} for b in figures["batches"]],
            "quarantine": quarantine}


def _assert_same_check(reused: dict[str, Any], whole: dict[str, Any]) -> None:
    pd.testing.assert_frame_equal(reused["passed"], whole["passed"])
    assert reused["failures"] == whole["failures"]
    assert reused["batch_figures"] == whole["batch_figures"]
    assert reused["quarantine"] == whole["quarantine"]
    assert {k: v for k, v in reused["result"].items() if k != "rows_reused"} == \
        {k: v for k, v in whole["result"].items() if k != "rows_reused"}


@pytest.mark.parametrize("chunk", [100_000, 7])
def test_a_full_extract_maps_only_what_changed_and_checks_as_if_mapped_whole(
        project: Path, mci_db: str, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    one, two = _land_both(project, "full")
    repeated = len(_distinct(two) & _distinct(one))
    new = len(_distinct(two)) - repeated
    assert repeated >= 50 and new == 5  # three changed (one now failing), two new

    reused = _check_night_two(project, monkeypatch, "full", "check-reused", chunk)
    whole = _check_night_two(project, monkeypatch, "changes", "check-whole", chunk)

    assert reused["result"]["rows_reused"] == repeated and reused["mapped_rows"] == new
    assert whole["result"]["rows_reused"] == 0 and whole["mapped_rows"] == len(_distinct(two))
    _assert_same_check(reused, whole)
    assert len(reused["failures"]) >= 9 and len(reused["passed"]) >= 45
    # a full extract's batch keeps its mapped rows (one per distinct record) for the next; a changes extract's does not
    assert reused["kept_rows"] == len(_distinct(two)) and whole["kept_rows"] is None


def test_nothing_is_reused_once_the_mapping_changes(project: Path, mci_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _land_both(project, "full")
    mapping = project / "mappings" / "revenues.yaml"
    text = mapping.read_text(encoding="utf-8")
    changed = text.replace("family_name:    {from: last_name, transform: [trim, title_case_name]}",
                           "family_name:    {from: last_name, transform: [trim]}")
    assert changed != text
    mapping.write_text(changed, encoding="utf-8")

    reused = _check_night_two(project, monkeypatch, "full", "check-reused")
    whole = _check_night_two(project, monkeypatch, "changes", "check-whole")
    assert reused["result"]["rows_reused"] == 0 and reused["mapped_rows"] == whole["mapped_rows"]
    _assert_same_check(reused, whole)
    names = [n for n in reused["passed"]["family_name"] if n]
    assert any(n.isupper() for n in names), "the changed mapping leaves upper-case surnames as sent"


@pytest.mark.parametrize("fault, says", [("truncated", "could not be read"), ("a row twice", "repeat a record")])
def test_kept_rows_that_cannot_be_used_are_passed_over_with_a_warning(
        project: Path, mci_db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        fault: str, says: str) -> None:
    one, _ = _land_both(project, "full")
    (kept,) = (project / "var" / "landing" / "revenues").glob("*/checked/mapped.parquet")
    if fault == "truncated":
        kept.write_bytes(kept.read_bytes()[: kept.stat().st_size // 2])
    else:
        table = pq.read_table(kept)
        pq.write_table(pa.concat_tables([table, table.slice(3, 1)]), kept)  # same stamp, one record twice

    with caplog.at_level(logging.WARNING, logger="joinedup.mapping.reuse"):
        reused = _check_night_two(project, monkeypatch, "full", "check-reused")
    whole = _check_night_two(project, monkeypatch, "changes", "check-whole")
    assert reused["result"]["rows_reused"] == 0
    _assert_same_check(reused, whole)
    (warning,) = [r for r in caplog.records if r.name == "joinedup.mapping.reuse"]
    assert says in warning.getMessage() and NIGHTS[0] in warning.getMessage()
    for value in (one[0]["last_name"], one[0]["customer_ref"], one[0]["dob"]):
        assert value not in warning.getMessage()


def test_erasure_removes_a_persons_kept_rows_and_the_rest_are_still_reused(
        project: Path, mci_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from joinedup.privacy.file_redaction import redact_checked
    from joinedup.privacy.tombstones import normalise_key

    one, two = _land_both(project, "full")
    (kept,) = (project / "var" / "landing" / "revenues").glob("*/checked/mapped.parquet")
    erased = one[0]["customer_ref"]
    before = pq.read_table(kept)
    assert erased in before.column("source_key").to_pylist()

    removed = redact_checked(kept.parent, {normalise_key(erased)}, [])
    after = pq.read_table(kept)
    assert removed >= 2  # from the hand-over and from the kept rows
    assert erased not in after.column("source_key").to_pylist() and after.num_rows == before.num_rows - 1
    assert after.schema.metadata == before.schema.metadata  # still stamped: still reusable

    reused = _check_night_two(project, monkeypatch, "full", "check-reused")
    assert reused["result"]["rows_reused"] == len(_distinct(two) & _distinct(one)) - 1
