"""The revenues REST simulator, driven with requests as the adapter does."""
from __future__ import annotations

import pytest
import requests

from joinedup.simulators.revenues_rest import REVENUES_FIELDS, RevenuesRestOptions, RevenuesRestServer
from joinedup.simulators.servers import FailurePlan

CLIENT_ID, SECRET, API_KEY = "revenues-sync", "s3cret/with:odd&chars", "key-123"


class FakeClock:
    """Seconds that move only when a test says so: token expiry without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def customer(i: int, modified: str) -> dict:
    record = dict.fromkeys(REVENUES_FIELDS)
    record.update(customer_ref=f"5{i:08d}", first_name="Siân", last_name="D’Arcy", dob="02/13/1985",
                  postcode="SA1 1AA", modified_at=modified)
    return record


def many_customers(n: int) -> list[dict]:
    return [customer(i, f"2024-05-{1 + (i * 11) % 28:02d}T09:{i % 4:02d}:00Z") for i in range(n)]


def expected_order(records: list[dict], since: str = "") -> list[str]:
    chosen = [r for r in records if r["modified_at"] >= since]
    return [r["customer_ref"] for r in sorted(chosen, key=lambda r: (r["modified_at"], r["customer_ref"]))]


def options(**kw) -> RevenuesRestOptions:
    return RevenuesRestOptions(client_id=CLIENT_ID, client_secret=SECRET, api_key=API_KEY, **kw)


@pytest.fixture
def server():
    with RevenuesRestServer(many_customers(83), options=options()) as running:
        yield running


def get_token(server, client_id=CLIENT_ID, secret=SECRET) -> requests.Response:
    return requests.post(server.token_url, data={"grant_type": "client_credentials"},
                         auth=(client_id, secret), timeout=5)


def bearer(server) -> dict[str, str]:
    return {"Authorization": f"Bearer {get_token(server).json()['access_token']}"}


def cursor_all(server, headers, **params) -> tuple[list[str], int]:
    refs, pages, cursor = [], 0, None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = requests.get(server.customers_url, params=query, headers=headers, timeout=5)
        assert response.status_code == 200, response.text
        body = response.json()
        refs += [c["customer_ref"] for c in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return refs, pages
        assert pages < 100, "paging did not end"


# --- OAuth2 and API keys -----------------------------------------------------------------------
def test_token_flow_with_basic_auth_and_with_form_credentials(server):
    answer = get_token(server)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"]
    form = requests.post(server.token_url, timeout=5, data={
        "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET})
    assert form.status_code == 200 and form.json()["access_token"] != body["access_token"]
    listing = requests.get(server.customers_url, headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=5)
    assert listing.status_code == 200 and len(listing.json()["data"]) == 83


def test_wrong_client_secret_and_wrong_grant_are_refused(server):
    wrong = get_token(server, secret="nope")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    grant = requests.post(server.token_url, data={"grant_type": "password"}, auth=(CLIENT_ID, SECRET), timeout=5)
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


def test_expired_token_is_401_and_a_fresh_token_works():
    clock = FakeClock()
    with RevenuesRestServer(many_customers(5), options=options(token_ttl_seconds=30, clock=clock)) as server:
        token = get_token(server).json()
        assert token["expires_in"] == 30
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert requests.get(server.customers_url, headers=headers, timeout=5).status_code == 200
        clock.now += 31
        expired = requests.get(server.customers_url, headers=headers, timeout=5)
        assert expired.status_code == 401
        assert expired.json()["error"] == "invalid_token" and "expired" in expired.json()["error_description"]
        assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
        assert requests.get(server.customers_url, headers=bearer(server), timeout=5).status_code == 200


def test_expire_all_tokens_works_with_the_real_clock(server):
    headers = bearer(server)
    server.expire_all_tokens()
    assert requests.get(server.customers_url, headers=headers, timeout=5).status_code == 401


def test_api_key_header_is_an_alternative_to_oauth(server):
    ok = requests.get(server.customers_url, headers={"X-API-Key": API_KEY}, timeout=5)
    assert ok.status_code == 200
    bad = requests.get(server.customers_url, headers={"X-API-Key": "guess"}, timeout=5)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_api_key"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer made-up"}, {"Authorization": "Basic abc"}])
def test_missing_or_unknown_credentials_are_401(server, headers):
    response = requests.get(server.customers_url, headers=headers, timeout=5)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


# --- paging ------------------------------------------------------------------------------------
def test_cursor_paging_to_the_end_gets_every_record_once_in_order(server):
    refs, pages = cursor_all(server, bearer(server), limit=10)
    assert refs == expected_order(many_customers(83))
    assert pages == 9


def test_cursor_paging_with_modified_since_filters_inclusively(server):
    since = "2024-05-12T09:01:00Z"
    refs, _ = cursor_all(server, {"X-API-Key": API_KEY}, limit=7, modified_since=since)
    assert refs == expected_order(many_customers(83), since)
    assert 0 < len(refs) < 83
    assert any(r["modified_at"] == since for r in many_customers(83) if r["customer_ref"] in refs)


def test_modified_since_with_an_offset_is_compared_in_utc(server):
    refs, _ = cursor_all(server, {"X-API-Key": API_KEY}, limit=100, modified_since="2024-05-12T10:01:00+01:00")
    assert refs == expected_order(many_customers(83), "2024-05-12T09:01:00Z")


def test_link_header_paging_to_the_end_gets_every_record_once(server):
    headers, refs, pages = {"X-API-Key": API_KEY}, [], 0
    url, params = server.customers_paged_url, {"page_size": 20, "modified_since": "2024-05-03T00:00:00Z"}
    while url:
        response = requests.get(url, params=params, headers=headers, timeout=5)
        assert response.status_code == 200
        refs += [c["customer_ref"] for c in response.json()["data"]]
        url, params = response.links.get("next", {}).get("url"), None
        pages += 1
        assert pages < 100
    assert refs == expected_order(many_customers(83), "2024-05-03T00:00:00Z")
    assert response.json()["total_count"] == len(refs)


def test_records_arrive_as_given(server):
    body = requests.get(server.customers_url, params={"limit": 1}, headers={"X-API-Key": API_KEY}, timeout=5).json()
    first = body["data"][0]
    assert first == next(r for r in many_customers(83) if r["customer_ref"] == first["customer_ref"])


@pytest.mark.parametrize("params, fragment", [
    ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "ten"}, "limit"),
    ({"modified_since": "last tuesday"}, "modified_since"), ({"modifiedSince": "2024-01-01"}, "unknown"),
    ({"cursor": "forged"}, "cursor"),
])
def test_bad_parameters_are_400_with_a_reason(server, params, fragment):
    response = requests.get(server.customers_url, params=params, headers={"X-API-Key": API_KEY}, timeout=5)
    assert response.status_code == 400
    assert fragment in response.json()["error_description"]


def test_cursor_is_bound_to_its_modified_since(server):
    headers = {"X-API-Key": API_KEY}
    cursor = requests.get(server.customers_url, params={"limit": 5}, headers=headers, timeout=5).json()["next_cursor"]
    response = requests.get(server.customers_url, headers=headers, timeout=5,
                            params={"cursor": cursor, "modified_since": "2024-05-10T00:00:00Z"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_cursor"


# --- misbehaviour ------------------------------------------------------------------------------
def test_a_burst_over_the_rate_limit_gets_429_with_retry_after():
    clock = FakeClock()  # time stands still: the whole burst falls in one second
    with RevenuesRestServer(many_customers(5), options=options(rate_limit_per_second=3, clock=clock)) as server:
        statuses = [requests.get(server.customers_url, headers={"X-API-Key": API_KEY}, timeout=5) for _ in range(6)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429, 429]
        assert statuses[3].headers["Retry-After"] == "1"
        assert statuses[3].json()["error"] == "rate_limited"
        clock.now += 1.0
        assert requests.get(server.customers_url, headers={"X-API-Key": API_KEY}, timeout=5).status_code == 200
        assert server.rate_limited == 3


def test_every_kth_request_is_a_503():
    with RevenuesRestServer(many_customers(5), options=options(error_503_every=3)) as server:
        codes = [requests.get(server.customers_url, headers={"X-API-Key": API_KEY}, timeout=5).status_code
                 for _ in range(7)]
    assert codes == [200, 200, 503, 200, 200, 503, 200]


def test_random_503s_follow_the_seed():
    def run() -> list[int]:
        with RevenuesRestServer(many_customers(5), options=options(error_503_probability=0.4, seed=7)) as server:
            response = requests.get(server.customers_url, headers={"X-API-Key": API_KEY}, timeout=5)
            assert response.status_code in (200, 503)
            if response.status_code == 503:
                assert response.headers["Retry-After"] == "1"
            return [response.status_code] + [
                requests.get(server.customers_url, headers={"X-API-Key": API_KEY}, timeout=5).status_code
                for _ in range(29)]

    first, second = run(), run()
    assert first == second
    assert 0 < first.count(503) < 30


def test_server_dies_mid_run_after_n_requests():
    plan = FailurePlan(fail_after_n_requests=2)
    with RevenuesRestServer(many_customers(30), options=options(failures=plan)) as server:
        session = requests.Session()
        headers = {"X-API-Key": API_KEY}
        assert session.get(server.customers_url, params={"limit": 10}, headers=headers, timeout=5).ok
        assert session.get(server.customers_url, params={"limit": 10}, headers=headers, timeout=5).ok
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(server.customers_url, params={"limit": 10}, headers=headers, timeout=5)


def test_down_refuses_connections():
    with RevenuesRestServer(many_customers(3), options=options(failures=FailurePlan(down=True))) as server:
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(server.customers_url, headers={"X-API-Key": API_KEY}, timeout=5)


def test_records_not_in_the_revenues_layout_are_refused():
    bad = customer(1, "2024-05-01T00:00:00Z") | {"surname": "x"}
    with pytest.raises(ValueError, match=r"record #0 .*unexpected \['surname'\]"):
        RevenuesRestServer([bad], options=options())
