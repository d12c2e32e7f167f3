"""A source that dies mid-run: the REST connection cut in the middle of a page, the REST server
gone after two pages, the SOAP server gone after two pages. The source's run fails clearly (or
its retry holds), nothing half-received counts as landed, the cursor does not move, and the next
run (what Airflow's retry does) completes with the clean run's index, row for row."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.reliability.conftest import NIGHT
from tests.reliability.cutting_proxy import CuttingProxy
from tests.reliability.index_check import assert_nothing_lost, assert_same_index, index_snapshot

ORDER = ["housing", "hr", "revenues", "socialcare"]  # the order `joinedup run` syncs them in


def _sync_before(source: str) -> None:
    """The sources the night syncs before ``source``, so the index is built in the clean order."""
    from joinedup.pipeline import sync_source

    for name in ORDER[:ORDER.index(source)]:
        sync_source(name, NIGHT)


def _finish_night() -> None:
    """The next run: the whole night again (sources already done are no-ops), then the merge."""
    from joinedup.night import run_night

    outcome = run_night(ORDER, night=NIGHT, via_airflow=False)
    assert not outcome.failed_sources and not outcome.merge_failed, outcome.stages


def _state(source: str) -> tuple[list, str | None]:
    from joinedup.mci.store import LandingBatch, SourceCursor, session_factory

    with session_factory()() as session:
        batches = list(session.scalars(select(LandingBatch).where(LandingBatch.source_system == source)))
        cursor = session.get(SourceCursor, source)
        return batches, cursor.cursor if cursor else None


def _progress_pages(faulty, source: str) -> int:  # noqa: ANN001
    files = list(faulty.var.glob(f"landing/{source}/*/progress.json"))
    return len(json.loads(files[0].read_text())["pages"]) if files else 0


def test_rest_connection_cut_mid_page(faulty, clean_index, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from joinedup.pipeline import sync_source

    _sync_before("revenues")
    revenues = faulty.council.revenues
    proxy = CuttingProxy(revenues.port, cut_after_bytes=30_000)  # inside the second or third page
    uri = faulty.council.env()["JOINEDUP_CONN_REVENUES_REST"].replace(f":{revenues.port}/", f":{proxy.port}/")
    monkeypatch.setenv("JOINEDUP_CONN_REVENUES_REST", uri)
    try:
        held = sync_source("revenues", NIGHT)  # the adapter asks for the cut page again
    finally:
        proxy.close()
    assert proxy.cuts == 1, "the proxy never cut the connection: the test proved nothing"
    assert held["rows_landed"] == len(faulty.records["revenues"])
    monkeypatch.setenv("JOINEDUP_CONN_REVENUES_REST", faulty.council.env()["JOINEDUP_CONN_REVENUES_REST"])
    _finish_night()
    assert_same_index(index_snapshot(faulty.db_url), clean_index)
    assert_nothing_lost(faulty.db_url, faulty.var, faulty.records)


@pytest.mark.parametrize("source", ["revenues", "housing"])
def test_server_dies_after_two_pages_then_the_next_run_resumes(faulty, clean_index, source: str) -> None:  # noqa: ANN001
    from joinedup.pipeline import sync_source
    from joinedup.simulators.servers import FailurePlan

    _sync_before(source)
    server = getattr(faulty.council, source)
    server.reset_request_count()
    # revenues counts the token request too: 1 token + 2 pages; housing counts SOAP calls only.
    server.failures = FailurePlan(fail_after_n_requests=3 if source == "revenues" else 2, failure="drop")
    with pytest.raises(Exception) as failed:  # noqa: PT011 - the adapters' own error classes differ
        sync_source(source, NIGHT)
    assert source in str(failed.value), f"the failure does not name the source: {failed.value}"
    batches, cursor = _state(source)
    assert batches == [] and cursor is None, "a run that died mid-extract must not count as landed"
    assert _progress_pages(faulty, source) == 2, "the two pages received before the source died must be kept"

    server.failures = FailurePlan()  # the source is back
    server.go_down()
    server.come_up()
    server.reset_request_count()
    _finish_night()
    # The resumed extract asked only for what came after the two kept pages.
    assert not list(faulty.var.glob(f"landing/{source}/*/progress.json"))
    assert_same_index(index_snapshot(faulty.db_url), clean_index)
    assert_nothing_lost(faulty.db_url, faulty.var, faulty.records)
