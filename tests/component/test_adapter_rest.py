"""The REST adapter against the real revenues simulator on loopback: paging styles, auth,
token refresh, 429/503 storms, a server that dies, loops, and a resumed run."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from joinedup.adapters.base import FatalSourceError, RetriableSourceError
from joinedup.adapters.config import SourceConfig
from joinedup.adapters.rest import RestAdapter, RestOptions
from joinedup.simulators.revenues_rest import REVENUES_FIELDS, RevenuesRestOptions, RevenuesRestServer
from joinedup.simulators.servers import FailurePlan

CLIENT_ID, SECRET, API_KEY = "revenues-sync", "s3cret/with:odd&chars", "key-123"
FAST = {"retries": 4, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05, "jitter_seconds": 0.01,
        "connect_timeout_seconds": 2, "read_timeout_seconds": 5}


def customer(i: int, modified: str) -> dict:
    record = dict.fromkeys(REVENUES_FIELDS)
    record.update(customer_ref=f"5{i:08d}", first_name="Siân", last_name="D’Arcy", dob="02/03/1985",
                  postcode="SA1 1AA", modified_at=modified)
    return record


def customers(n: int) -> list[dict]:
    # several records share each timestamp, so page boundaries fall inside a second
    return [customer(i, f"2024-05-{1 + (i // 7) % 28:02d}T09:{(i // 7) % 60:02d}:00Z") for i in range(n)]


def sim_options(**kw) -> RevenuesRestOptions:
    return RevenuesRestOptions(client_id=CLIENT_ID, client_secret=SECRET, api_key=API_KEY, **kw)


def adapter(monkeypatch: pytest.MonkeyPatch, server: RevenuesRestServer, *, auth: str = "oauth2",
            secret: str = SECRET, **options) -> RestAdapter:
    if auth == "oauth2":
        uri = f"rest://{CLIENT_ID}:{secret.replace('/', '%2F').replace(':', '%3A').replace('&', '%26')}@127.0.0.1:{server.port}/api/v1?auth=oauth2&token_url=/oauth/token"
    else:
        uri = f"rest://:{secret}@127.0.0.1:{server.port}/api/v1?auth=api_key&header=X-API-Key"
    monkeypatch.setenv("JOINEDUP_CONN_REVENUES_TEST", uri)
    raw = {"path": "customers", "records_path": "data", "page_size": 10,
           "paging": {"style": "cursor", "cursor_param": "cursor", "next_cursor_path": "next_cursor", "size_param": "limit"},
           "incremental": {"param": "modified_since", "field": "modified_at", "key_field": "customer_ref"},
           "http": dict(FAST)}
    for key, value in options.items():
        if key == "http":
            raw["http"].update(value)
        else:
            raw[key] = value
    config = SourceConfig(name="revenues", kind="rest", mapping="revenues.yaml", connection_id="revenues_test", options=raw)
    return RestAdapter(config, RestOptions.model_validate(raw))


def refs(pages) -> list[str]:
    return [r["customer_ref"] for p in pages for r in p.records]


def expected(records: list[dict]) -> list[str]:
    return [r["customer_ref"] for r in sorted(records, key=lambda r: (r["modified_at"], r["customer_ref"]))]


@pytest.fixture
def records() -> list[dict]:
    return customers(95)


@pytest.mark.parametrize("auth", ["oauth2", "api_key"])
def test_cursor_paging_to_the_end(monkeypatch, records, auth) -> None:
    with RevenuesRestServer(records, options=sim_options()) as server:
        a = adapter(monkeypatch, server, auth=auth, secret=SECRET if auth == "oauth2" else API_KEY)
        pages = list(a.extract(None))
    assert refs(pages) == expected(records)
    assert len(pages) == 10 and all(set(p.records[0]) == set(REVENUES_FIELDS) for p in pages)
    last = max(records, key=lambda r: (r["modified_at"], r["customer_ref"]))
    assert pages[-1].cursor == f"{last['modified_at']}|{last['customer_ref']}"
    cursors = [p.cursor for p in pages]
    assert cursors == sorted(cursors)  # the watermark only moves forward


def test_link_header_paging_to_the_end(monkeypatch, records) -> None:
    with RevenuesRestServer(records, options=sim_options()) as server:
        a = adapter(monkeypatch, server, path="customers-paged", paging={"style": "link", "size_param": "page_size"})
        assert refs(a.extract(None)) == expected(records)


def test_page_number_paging_to_the_end(monkeypatch, records) -> None:
    with RevenuesRestServer(records, options=sim_options()) as server:
        a = adapter(monkeypatch, server, path="customers-paged", page_size=19,
                    paging={"style": "page", "page_param": "page", "size_param": "page_size"})
        assert refs(a.extract(None)) == expected(records)


def test_incremental_run_fetches_only_changes_and_nothing_twice(monkeypatch, records) -> None:
    with RevenuesRestServer(records, options=sim_options()) as server:
        a = adapter(monkeypatch, server)
        first = list(a.extract(None))
        cursor = first[-1].cursor
        assert list(adapter(monkeypatch, server).extract(cursor)) == []  # nothing changed
        changed = [dict(r) for r in records]
        changed[3]["modified_at"] = "2024-06-01T00:00:00Z"
        changed[40]["modified_at"] = "2024-06-01T00:00:00Z"
        server.set_records(changed)
        second = list(adapter(monkeypatch, server).extract(cursor))
    assert refs(second) == [records[3]["customer_ref"], records[40]["customer_ref"]]
    assert second[-1].cursor == f"2024-06-01T00:00:00Z|{records[40]['customer_ref']}"


def test_resume_from_a_page_cursor_fetches_nothing_twice_and_loses_nothing(monkeypatch, records) -> None:
    """Page boundaries fall inside a second (7 records share each timestamp): the compound
    cursor makes a resume from any page exact although the API's 'since' is inclusive."""
    with RevenuesRestServer(records, options=sim_options()) as server:
        pages = list(adapter(monkeypatch, server).extract(None))
        for cut in (1, 3, 6):
            resumed = list(adapter(monkeypatch, server).extract(pages[cut - 1].cursor))
            assert refs(pages[:cut]) + refs(resumed) == expected(records)


def test_wrong_secret_is_fatal_and_names_the_connection(monkeypatch, records) -> None:
    with RevenuesRestServer(records, options=sim_options()) as server:
        with pytest.raises(FatalSourceError, match="connection revenues_test") as caught:
            list(adapter(monkeypatch, server, secret="wrong").extract(None))
        assert "wrong" not in str(caught.value)
        with pytest.raises(FatalSourceError, match="HTTP 401 invalid_api_key using connection revenues_test"):
            list(adapter(monkeypatch, server, auth="api_key", secret="bad-key").extract(None))


def test_expired_token_is_refreshed_once_and_paging_goes_on(monkeypatch, records) -> None:
    with RevenuesRestServer(records, options=sim_options()) as server:
        a = adapter(monkeypatch, server)
        got = []
        for page in a.extract(None):
            got.extend(r["customer_ref"] for r in page.records)
            if page.meta["page"] in (2, 5):
                server.expire_all_tokens()
    assert got == expected(records)
    assert a._oauth is not None and a._oauth.fetched == 3


def test_503_storm_recovers_with_backoff(monkeypatch, records) -> None:
    with RevenuesRestServer(records, options=sim_options(error_503_every=2, error_503_probability=0.2, seed=7)) as server:
        a = adapter(monkeypatch, server, http={"retries": 8, "retry_after_max_seconds": 0})
        assert refs(a.extract(None)) == expected(records)
        assert server.injected_503s >= 5


def test_429_retry_after_is_honoured(monkeypatch) -> None:
    records = customers(30)
    with RevenuesRestServer(records, options=sim_options(rate_limit_per_second=2)) as server:
        a = adapter(monkeypatch, server, http={"retries": 6})
        started = time.monotonic()
        assert refs(a.extract(None)) == expected(records)
        waited = time.monotonic() - started
    assert server.rate_limited >= 1
    assert waited >= 1.0  # Retry-After: 1 was slept, not ignored (a lower bound, not a speed check)


def test_client_side_rate_limit_stays_under_the_server_limit(monkeypatch) -> None:
    records = customers(40)
    with RevenuesRestServer(records, options=sim_options(rate_limit_per_second=3)) as server:
        # 2 a second against the server's 3: half a second between requests, room for a
        # server thread scheduled late on a loaded machine
        a = adapter(monkeypatch, server, auth="api_key", secret=API_KEY, http={"rate_limit_per_second": 2})
        assert refs(a.extract(None)) == expected(records)
    assert server.rate_limited == 0


def test_endless_503_gives_up_with_a_retriable_error(monkeypatch, records) -> None:
    with RevenuesRestServer(records, options=sim_options(error_503_every=1)) as server:
        a = adapter(monkeypatch, server, auth="api_key", secret=API_KEY, http={"retries": 3, "retry_after_max_seconds": 0})
        with pytest.raises(RetriableSourceError, match="HTTP 503 after 3 retries"):
            list(a.extract(None))
        assert server.injected_503s == 4


def test_server_that_dies_mid_run_is_retriable_after_pages_were_yielded(monkeypatch, records) -> None:
    plan = FailurePlan(fail_after_n_requests=4)
    with RevenuesRestServer(records, options=sim_options(failures=plan)) as server:
        a = adapter(monkeypatch, server, auth="api_key", secret=API_KEY)
        got = []
        with pytest.raises(RetriableSourceError, match="unreachable or dropped"):
            for page in a.extract(None):
                got.append(page)
        assert len(got) == 4


def test_server_down_is_retriable(monkeypatch, records) -> None:
    with RevenuesRestServer(records, options=sim_options(failures=FailurePlan(down=True))) as server:
        a = adapter(monkeypatch, server, auth="api_key", secret=API_KEY, http={"retries": 1})
        with pytest.raises(RetriableSourceError):
            list(a.extract(None))
        assert not a.health().ok


class _LoopingApi(BaseHTTPRequestHandler):
    """An API whose next_cursor goes round in a circle (a real-world bug)."""

    def do_GET(self) -> None:  # noqa: N802
        body = b'{"data": [{"id": "1"}], "next_cursor": "abc"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_a_looping_cursor_fails_loudly() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _LoopingApi)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        raw = {"base_url": f"http://127.0.0.1:{httpd.server_address[1]}", "path": "items", "auth": "none",
               "paging": {"style": "cursor"}, "http": FAST}
        config = SourceConfig(name="looping", kind="rest", mapping="revenues.yaml", options=raw)
        a = RestAdapter(config, RestOptions.model_validate(raw))
        pages = []
        with pytest.raises(FatalSourceError, match="same next-page cursor twice"):
            for page in a.extract(None):
                pages.append(page)
        assert len(pages) == 2
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_missing_connection_says_how_to_set_it(monkeypatch, records) -> None:
    monkeypatch.delenv("JOINEDUP_CONN_NOWHERE", raising=False)
    raw = {"path": "customers", "http": FAST}
    config = SourceConfig(name="revenues", kind="rest", mapping="revenues.yaml", connection_id="nowhere", options=raw)
    with pytest.raises(FatalSourceError, match="set JOINEDUP_CONN_NOWHERE"):
        list(RestAdapter(config, RestOptions.model_validate(raw)).extract(None))
