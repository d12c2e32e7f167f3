"""The gate inside the pipeline: a refused batch still quarantines its rows, a retried batch
replaces them, each batch's figures are kept, and the reports (GX Data Docs, the data-quality
pages, the match report's sources table) are written with counts and keys only."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import csv_drop_source, drop_file

PERSONAL = ("Smith", "William", "Lloyd-Jones", "AB123456C", "QQ123456C", "CF10 1AA", "03/04/1961", "1961-04-03")


@pytest.fixture(autouse=True)
def csv_source(project: Path) -> None:
    csv_drop_source(project, only=True)


def _open(session) -> list[tuple[str, str, str | None, str]]:  # noqa: ANN001
    from joinedup.mci.store import QuarantinedRow

    return sorted((q.source_key, q.rule, q.field, q.status) for q in session.scalars(select(QuarantinedRow)))


def test_a_refused_batch_still_quarantines_its_rows_and_a_retry_replaces_them(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import QuarantinedRow, SourceRecord, session_factory
    from joinedup.pipeline import sync_source
    from joinedup.quality.gate import QualityGateFailed

    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")  # 2 of 12 bad > 10%
    with pytest.raises(QualityGateFailed, match="in quarantine"):
        sync_source("revenues", "night-1")
    with session_factory()() as session:
        assert session.scalar(select(SourceRecord.id)) is None  # nothing loaded
        assert _open(session) == [("500000007", "value_not_mappable", "date_of_birth", "open"),
                                  ("500000008", "ni_number_valid", "ni_number", "open")]
        rows = {(q.landing_file, q.landing_row) for q in session.scalars(select(QuarantinedRow))}
        assert {r for _, r in rows} == {7, 8} and all(f.startswith("revenues/night-1/") for f, _ in rows)
    with pytest.raises(QualityGateFailed):
        sync_source("revenues", "night-2")  # refused again: one open set, the first superseded
    with session_factory()() as session:
        statuses = [s for *_, s in _open(session)]
        assert statuses.count("open") == 2 and statuses.count("superseded") == 2
    csv_drop_source(project, max_failure_rate=0.2)  # the steward accepts the rate: the kept batch loads
    assert sync_source("revenues", "night-3")["new"] == 10
    with session_factory()() as session:
        statuses = [s for *_, s in _open(session)]
        assert statuses.count("open") == 2 and statuses.count("superseded") == 4


def test_each_batch_leaves_figures_for_the_quality_history_and_pages(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import session_factory
    from joinedup.pipeline import merge, sync_source
    from joinedup.quality.gate import QualityGateFailed
    from joinedup.quality.history import source_history

    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    with pytest.raises(QualityGateFailed):
        sync_source("revenues", "night-1")
    csv_drop_source(project, max_failure_rate=0.2)
    sync_source("revenues", "night-2")
    out = merge("night-2")
    with session_factory()() as session:
        history = source_history(session, "revenues")
    assert [(h.night, h.batch, h.status, h.rows_in, h.rows_quarantined) for h in history] == [
        ("night-1", "night-1", "refused", 12, 2), ("night-2", "night-1", "checked", 12, 2)]
    assert history[1].by_rule == {"ni_number_valid": 1, "value_not_mappable": 1}
    assert history[1].completeness["source_key"] == 1.0
    assert history[1].completeness["email"] == pytest.approx(1 / 12)  # one customer gave an e-mail address
    assert "threshold" in (history[0].reason or "")

    page = project / "var" / "reports" / "quality" / "revenues.html"
    index = project / "var" / "reports" / "quality" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert "value_not_mappable: 1" in html and "refused" in html and "night-2" in html
    assert '<a href="revenues.html">revenues</a>' in index.read_text(encoding="utf-8")
    report = Path(out["report"]).read_text(encoding="utf-8")
    assert 'href="quality/index.html"' in report and 'href="quality/revenues.html"' in report
    for text in (html, index.read_text(encoding="utf-8"), report):
        for value in PERSONAL:
            assert value not in text


def test_gx_data_docs_are_built_for_each_batch_without_values(project: Path, mci_db: str) -> None:
    from joinedup.pipeline import sync_source
    from joinedup.quality.data_docs import data_docs_index

    assert data_docs_index() is None
    csv_drop_source(project, max_failure_rate=0.2)
    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    sync_source("revenues", "night-1")
    index = data_docs_index()
    assert index is not None and index == project / "var" / "reports" / "data_docs" / "index.html"
    pages = list((index.parent / "validations" / "revenues_suite" / "night-1").rglob("*.html"))
    assert len(pages) == 1
    html = pages[0].read_text(encoding="utf-8")
    assert "ni_number" in html and ("Great Expectations" in html or "great_expectations" in html)
    for path in index.parent.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".json"):
            text = path.read_text(encoding="utf-8", errors="replace")
            for value in PERSONAL:
                assert value not in text, f"{value} in {path}"
    stored = list((project / "var" / "gx").rglob("*.json"))
    assert stored and not any("AB123456C" in p.read_text(encoding="utf-8", errors="replace") for p in stored)
