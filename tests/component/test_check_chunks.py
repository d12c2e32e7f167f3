"""The check step a chunk at a time gives what one pass over the whole batch gives: the same
hand-over rows, quarantine entries and reasons (in the same order), the same batch figures and
the same counts-only validation result for Data Docs, including the rules that need the whole
batch (the source key's uniqueness across chunks, the failure-rate threshold, a batch rule
with ``mostly``)."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, update

from tests.conftest import csv_drop_source

RUN = "night-1"


def _council(source: str, residents: int = 120) -> list[dict[str, Any]]:
    from joinedup.simulators.council import build_council
    from joinedup.simulators.history import RecordHistory

    return build_council(residents, seed=11, history=RecordHistory.named("full")).records[source]


def _awkward_revenues() -> list[dict[str, Any]]:
    """The council's revenues records with faults spread across chunk boundaries."""
    rows = [dict(r) for r in _council("revenues")][:60]
    rows[40]["customer_ref"] = rows[3]["customer_ref"]  # one key, two different records, chunks apart
    rows[41]["customer_ref"] = rows[3]["customer_ref"]
    rows[10]["ni_no"] = "BG123456A"  # never issued
    rows[22]["dob"] = "31/02/1980"  # not a date: value_not_mappable
    rows[23]["customer_ref"] = " "  # no key
    rows[30]["postcode"] = "not a postcode"
    rows[31]["dob"] = "2999-01-01"  # in the future
    rows.insert(50, dict(rows[12]))  # a page landed twice: an identical record, counted once
    return rows


def _drop(project: Path, rows: list[dict[str, Any]]) -> None:
    folder = project / "var" / "drops" / "revenues"
    folder.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(folder / "revenues_20260105.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(rows)


def _check_once(project: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, run_id: str) -> dict[str, Any]:
    """Check the landed batch again with ``chunk`` rows at a time; what it left behind."""
    from joinedup import pipeline
    from joinedup.mci.store import LandingBatch, QuarantinedRow, Run, session_factory

    monkeypatch.setattr(pipeline, "CHECK_CHUNK_ROWS", chunk)
    with session_factory()() as session:
        session.execute(update(LandingBatch).values(status="landed", status_reason=None))
        session.commit()
        batch = session.scalar(select(LandingBatch))
        folder = pipeline.work_dir(batch)
    for old in folder.glob("*") if folder.exists() else []:
        old.unlink()
    result = pipeline.check("revenues", run_id)
    out: dict[str, Any] = {"result": result}
    if (folder / "passed.parquet").exists():
        passed = pd.read_parquet(folder / "passed.parquet").astype(object)
        out["passed"] = passed.where(passed.notna(), None)
        out["failures"] = json.loads((folder / "failures.json").read_text(encoding="utf-8"))
    with session_factory()() as session:
        figures = session.scalar(select(Run.figures).where(Run.run_id == run_id, Run.stage == "check:revenues"))
        out["batch_figures"] = [{k: v for k, v in b.items() if k != "data_docs"} for b in figures["batches"]]
        out["quarantine"] = [(q.source_key, q.rule, q.field, q.reason, q.landing_file, q.landing_row)
                             for q in session.scalars(select(QuarantinedRow).where(QuarantinedRow.status == "open")
                                                      .order_by(QuarantinedRow.id))]
    return out


@pytest.mark.parametrize("threshold", [0.5, 0.05])
def test_chunked_check_matches_the_whole_batch(project: Path, mci_db: str, monkeypatch: pytest.MonkeyPatch,
                                               threshold: float) -> None:
    from joinedup import pipeline

    csv_drop_source(project, only=True, max_failure_rate=threshold)
    _drop(project, _awkward_revenues())
    pipeline.land("revenues", RUN)
    whole = _check_once(project, monkeypatch, 100_000, "check-whole")
    chunked = _check_once(project, monkeypatch, 7, "check-chunks")
    figures = whole["batch_figures"][0]
    assert figures["rows_in"] == 60 and figures["duplicates_removed"] == 1
    assert figures["by_rule"]["source_key_unique_in_batch"] == 3  # rows 3, 40, 41: chunks 0 and 5
    assert figures["status"] == ("checked" if threshold == 0.5 else "refused")
    assert chunked["batch_figures"] == whole["batch_figures"]
    assert chunked["result"] == whole["result"]
    if threshold == 0.5:
        pd.testing.assert_frame_equal(chunked["passed"], whole["passed"])
        assert chunked["failures"] == whole["failures"] and len(whole["failures"]) >= 8
        assert len(whole["passed"]) == 60 - figures["rows_failed"]
    else:
        assert chunked["quarantine"][-len(whole["quarantine"]):] == whole["quarantine"]
        assert "passed" not in chunked  # a refused batch hands nothing over


def _gate_both_ways(frame: pd.DataFrame, source: str, suite: str, chunk: int) -> tuple[Any, Any]:
    from joinedup.quality.gate import combine_chunks, duplicated_keys, validate_batch

    whole = validate_batch(frame, source, suite=suite, run_name="b1")
    dup = duplicated_keys(frame["source_key"])
    parts = []
    for start in range(0, len(frame), chunk):
        piece = frame.iloc[start:start + chunk]
        parts.append((start, validate_batch(piece, source, suite=suite, run_name="b1",
                                            duplicated=dup[start:start + chunk])))
    return whole, combine_chunks(parts)


def _result_facts(validation: Any) -> list[tuple[Any, ...]]:
    return [(r.expectation_config.type, r.expectation_config.kwargs.get("column"), r.success,
             json.dumps(r.result, sort_keys=True)) for r in validation.results]


@pytest.mark.parametrize("nhs_gaps", [3, 30])
def test_a_batch_rule_and_the_data_docs_counts_are_judged_on_the_whole_batch(project: Path, nhs_gaps: int) -> None:
    """Social care's 'NHS number on at least 90% of records' sees the batch, not a chunk: with
    gaps bunched in one chunk it passes when the batch is over 90%, and fails when it is not."""
    from joinedup.mapping.engine import map_records
    from joinedup.mapping.spec import load_mapping

    seen = _council("socialcare", 400)
    valid = next(r["NHSNumber"] for r in seen if r["NHSNumber"])
    records = [dict(seen[n % len(seen)], ClientId=f"SC{n:07d}") for n in range(100)]
    for r in records:
        r["NHSNumber"] = r["NHSNumber"] or valid
    for r in records[:nhs_gaps]:
        r["NHSNumber"] = None
    records[70]["ClientId"] = records[5]["ClientId"]
    records[80]["NHSNumber"] = "1234567890"  # fails the modulus 11 check
    frame = map_records(records, load_mapping(project / "mappings" / "socialcare.yaml"), "socialcare")
    whole, chunked = _gate_both_ways(frame, "socialcare", "socialcare", 9)
    assert [b.describe() for b in chunked.batch_failures] == [b.describe() for b in whole.batch_failures]
    assert bool(whole.batch_failures) == (nhs_gaps == 30)
    assert [(f.position, f.rule, f.field, f.reason) for f in chunked.failures] == [
        (f.position, f.rule, f.field, f.reason) for f in whole.failures]
    assert chunked.by_rule == whole.by_rule and list(chunked.by_rule) == list(whole.by_rule)
    assert chunked.failed_positions == whole.failed_positions and chunked.rows_in == whole.rows_in == 100
    assert _result_facts(chunked.validation) == _result_facts(whole.validation)
    assert chunked.validation.success == whole.validation.success
    assert chunked.validation.statistics == whole.validation.statistics


def test_a_suite_that_cannot_be_judged_by_chunks_is_validated_whole(project: Path) -> None:
    from joinedup.quality.gate import chunkable

    assert chunkable("revenues", "revenues")
    extra = project / "schemas" / "expectations" / "revenues.json"
    suite = json.loads(extra.read_text(encoding="utf-8"))
    suite["expectations"].append({"type": "expect_column_values_to_be_unique", "kwargs": {"column": "email"},
                                  "meta": {"rule": "email_unique"}})
    extra.write_text(json.dumps(suite), encoding="utf-8")
    from joinedup.quality import gate

    gate._suite_expectations.cache_clear()
    assert not chunkable("revenues", "revenues")
    assert np.array_equal(gate.duplicated_keys(pd.Series(["a", None, "a", "b", None])), [True, False, True, False, False])


@pytest.mark.parametrize("record", [
    {"b": "Siân", "a": None, "c": "x\u2009y", "d": "\\u00e9", "e": "é"},
    {"e": "é", "d": "\\u00e9", "c": "x\u2009y", "a": None, "b": "Siân"},  # the same record, keys in another order
    {"n": "1", "m": "", "q": "\"quoted\"", "t": "\t"},
])
def test_the_landing_writer_writes_one_canonical_line_per_record(project: Path, record: dict[str, Any]) -> None:
    """The check finds identical raw records by their landed line: that is exact only while the
    writer writes each record in one canonical form (sorted keys), so equal records give equal
    lines and different records different ones."""
    from joinedup.landing import LandingWriter
    from joinedup.pipeline import _landed_lines

    writer = LandingWriter("revenues", "lines-1", None)
    other = dict(record, extra="x")
    writer.write_page([record, dict(reversed(list(record.items()))), other], "test")
    lines = list(_landed_lines(writer.complete(None)))
    assert lines[0] == lines[1] == json.dumps(record, ensure_ascii=False, sort_keys=True)
    assert lines[2] != lines[0]
    assert [json.loads(line) for line in lines] == [record, record, other]
