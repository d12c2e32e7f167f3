"""A full extract delivers every record every night, failing ones too. The quarantine keeps one
open set per record, its newest delivery's: a record that fails again replaces its earlier
entries; one fixed at source closes them and is staged. Real nights through the pipeline,
on both stores."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import csv_drop_source, drop_file

BAD_DATE, BAD_NI = "500000007", "500000008"


@pytest.fixture(autouse=True)
def csv_source(project: Path) -> None:
    csv_drop_source(project, max_failure_rate=0.3, only=True)


def _entries(session) -> list[tuple[str, str, str, str]]:  # noqa: ANN001
    from joinedup.mci.store import QuarantinedRow

    return sorted((q.source_key, q.rule, q.run_id, q.status) for q in session.scalars(
        select(QuarantinedRow).where(QuarantinedRow.source_key.in_([BAD_DATE, BAD_NI]))))


def test_a_redelivered_record_keeps_one_open_entry_and_a_fixed_one_none(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import SourceRecord, session_factory
    from joinedup.pipeline import sync_source

    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    sync_source("revenues", "night-1")
    with session_factory()() as session:
        assert [(k, run, status) for k, _, run, status in _entries(session)] == [
            (BAD_DATE, "night-1", "open"), (BAD_NI, "night-1", "open")]

    # Night 2: the whole extract again; the NI number of one failing record is corrected.
    again = drop_file(project, "revenues", "revenues_small.csv", "revenues_20260106.csv")
    text = again.read_text(encoding="utf-8")
    assert "QQ123456C" in text
    again.write_text(text.replace("QQ123456C", "JG103761C").replace("2026-01-04T10:00:00Z", "2026-01-05T10:00:00Z"),
                     encoding="utf-8")
    out = sync_source("revenues", "night-2")
    assert out["superseded"] == 2

    with session_factory()() as session:
        entries = _entries(session)
        staged = session.scalar(select(SourceRecord.record).where(
            SourceRecord.source_system == "revenues", SourceRecord.source_key == BAD_NI))
    assert [(k, run, status) for k, _, run, status in entries] == [
        (BAD_DATE, "night-1", "superseded"), (BAD_DATE, "night-2", "open"), (BAD_NI, "night-1", "superseded")]
    assert staged is not None and staged["ni_number"] == "JG103761C"

    # Night 3 delivers nothing new for them: what is open stays open.
    sync_source("revenues", "night-3")
    with session_factory()() as session:
        assert [e for e in _entries(session) if e[3] == "open"] == [(BAD_DATE, entries[1][1], "night-2", "open")]


def test_replaying_an_old_night_leaves_a_later_nights_entries_open(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import session_factory
    from joinedup.pipeline import replay, sync_source

    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    sync_source("revenues", "night-1")
    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260106.csv")
    sync_source("revenues", "night-2")
    replay("revenues", "replay-1", nights=["night-1"])
    with session_factory()() as session:
        still_open = [(k, run) for k, _, run, status in _entries(session) if status == "open"]
    assert (BAD_DATE, "night-2") in still_open and (BAD_NI, "night-2") in still_open
