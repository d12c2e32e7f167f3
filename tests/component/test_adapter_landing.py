"""The four council sources through ``joinedup.pipeline.land`` into raw landing, against the
real simulators on loopback; and a revenues run whose server dies mid-way, then the rerun."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from joinedup.adapters.base import RetriableSourceError
from joinedup.simulators.council import build_council
from joinedup.simulators.housing_soap import HousingSoapOptions
from joinedup.simulators.revenues_rest import RevenuesRestOptions
from joinedup.simulators.servers import CouncilOptions, FailurePlan, start_council_servers

REVENUES_REST = """\
name: revenues
kind: rest
connection_id: revenues_rest
mapping: revenues.yaml
quality: {max_failure_rate: 0.10}
options:
  path: customers
  records_path: data
  page_size: 100
  paging: {style: cursor, cursor_param: cursor, next_cursor_path: next_cursor, size_param: limit}
  incremental: {param: modified_since, field: modified_at, key_field: customer_ref}
  http: {retries: 2, backoff_seconds: 0.01, backoff_max_seconds: 0.05, jitter_seconds: 0.01}
"""
FAST_SOAP = "  http: {retries: 2, backoff_seconds: 0.01, backoff_max_seconds: 0.05, jitter_seconds: 0.01}\n"
KEYS = {"housing": "TenantRef", "revenues": "customer_ref", "socialcare": "ClientId", "hr": "EMPNO"}
STAMPS = {"housing": "LastModified", "revenues": "modified_at"}


@pytest.fixture(scope="module")
def council():
    return build_council(1200, 5)


@pytest.fixture
def sources(project: Path) -> Path:
    (project / "adapters" / "revenues.yaml").write_text(REVENUES_REST, encoding="utf-8")
    housing = project / "adapters" / "housing.yaml"
    text = housing.read_text(encoding="utf-8")
    housing.write_text(text[: text.index("  http:")] + FAST_SOAP, encoding="utf-8")
    return project


def start(project: Path, council, monkeypatch, revenues_failures: FailurePlan | None = None):
    """The council's servers up, its file drops in var/drops/council (as the demo does)."""
    running = start_council_servers(
        council.records, project / "var" / "drops" / "council",
        options=CouncilOptions(revenues=RevenuesRestOptions(failures=revenues_failures or FailurePlan()),
                               housing=HousingSoapOptions()))
    for key, value in running.env().items():
        monkeypatch.setenv(key, value)
    return running


def landed(project: Path, source: str, run_id: str) -> list[dict]:
    folder = project / "var" / "landing" / source / run_id
    return [json.loads(line) for page in sorted(folder.glob("page-*.jsonl"))
            for line in page.read_text(encoding="utf-8").splitlines()]


def stored_cursor(source: str) -> str | None:
    from joinedup.mci.store import SourceCursor, session_factory

    with session_factory()() as session:
        row = session.scalar(select(SourceCursor).where(SourceCursor.source_system == source))
        return row.cursor if row else None


def test_each_source_lands_end_to_end(sources: Path, council, monkeypatch) -> None:
    from joinedup.landing import completed_manifest
    from joinedup.pipeline import land

    with start(sources, council, monkeypatch):
        for source, key in KEYS.items():
            result = land(source, "night-1")
            records = council.records[source]
            assert result["rows_landed"] == len(records) > 0, source
            got = landed(sources, source, "night-1")
            assert sorted(r[key] for r in got) == sorted(r[key] for r in records), source
            assert all(set(r) == set(records[0]) for r in got), source  # the native layout, nothing added
            manifest = completed_manifest(source, "night-1")
            assert manifest is not None and manifest.rows == len(records)
            if source in STAMPS:
                last = max(records, key=lambda r: (r[STAMPS[source]], r[key]))
                assert stored_cursor(source) == f"{last[STAMPS[source]]}|{last[key]}" == manifest.cursor_after
        # the next night, nothing has changed: nothing is fetched again
        for source in KEYS:
            assert land(source, "night-2")["rows_landed"] == 0, source
    hr_processed = sources / "var" / "drops" / "council" / "processed"
    assert len(list(hr_processed.glob("hr_*.dat"))) == 1


def test_rerun_after_the_server_died_loses_nothing(sources: Path, council, monkeypatch) -> None:
    from joinedup.landing import completed_manifest
    from joinedup.pipeline import check, land

    records = council.records["revenues"]
    plan = FailurePlan(fail_after_n_requests=5)  # 1 token request + 4 pages, then the server is gone
    with start(sources, council, monkeypatch, revenues_failures=plan) as running:
        with pytest.raises(RetriableSourceError, match="unreachable or dropped"):
            land("revenues", "night-1")
        before = landed(sources, "revenues", "night-1")
        assert len(before) == 400  # four pages landed before the crash, kept
        assert completed_manifest("revenues", "night-1") is None  # the run is not complete...
        assert stored_cursor("revenues") is None  # ...so the cursor did not move
        plan.fail_after_n_requests = None  # the server is back
        running.revenues.reset_request_count()
        result = land("revenues", "night-1")
    after = landed(sources, "revenues", "night-1")
    refs = [r["customer_ref"] for r in after]
    assert set(refs) == {r["customer_ref"] for r in records}  # nothing lost
    last = max(records, key=lambda r: (r["modified_at"], r["customer_ref"]))
    assert stored_cursor("revenues") == f"{last['modified_at']}|{last['customer_ref']}"
    # The resumed run continues from the cursor after the last landed page: nothing twice.
    assert result["rows_landed"] == len(records) and len(refs) == len(set(refs))
    checked = check("revenues", "night-1")
    assert checked["duplicates_removed"] == 0 and checked["rows_in"] == len(records)
