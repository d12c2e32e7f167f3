"""Security of the lookup API as a whole: every route but an explicit allow-list needs a key
with person:read (found by enumerating ``app.routes``, so a new route is checked the day it is
added), and every answer, errors and crashes included, carries the security headers."""
from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.component.test_api_lookup import BILL, Api, _make_api
from tests.component.test_api_support import build_index

EXPECTED = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
}


@pytest.fixture
def api(project) -> Api:  # noqa: ANN001
    (project / "var").mkdir(exist_ok=True)
    build_index()
    yield _make_api()
    from joinedup.mci.store import _engine_for

    _engine_for.cache_clear()


def _has_security_headers(response) -> None:  # noqa: ANN001
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.request.url.path, response.status_code, name)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers.get_list("cache-control") == ["no-store"]  # one value, not two


def _dependency_calls(dependant) -> set:  # noqa: ANN001
    calls = {dependant.call}
    for sub in dependant.dependencies:
        calls |= _dependency_calls(sub)
    return calls


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "JU00000001", path)


def test_every_route_needs_a_key_unless_allow_listed(api: Api) -> None:
    from joinedup.api.app import PUBLIC_PATHS, _caller

    app = api.client.app
    unprotected, checked = [], 0
    for route in app.routes:
        path = getattr(route, "path", None)
        if path in PUBLIC_PATHS:
            continue
        if not isinstance(route, APIRoute) or _caller not in _dependency_calls(route.dependant):
            unprotected.append(path)
            continue
        for method in route.methods:
            body = {"json": BILL} if method == "POST" else {}
            call = lambda **kw: api.client.request(method, _concrete(path), **body, **kw)  # noqa: B023, E731
            assert call().status_code == 401, (method, path)
            assert call(headers=api.auth(api.only_sc)).status_code == 403, (method, path)
            assert call(headers=api.auth(api.plain)).status_code in (200, 308, 404), (method, path)
            checked += 1
    assert unprotected == [], f"routes without the API-key check and not in PUBLIC_PATHS: {unprotected}"
    assert checked == 4  # persons, search, by-source, changes


def test_allow_listed_routes_hold_no_personal_data(api: Api) -> None:
    health = api.client.get("/api/v1/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert api.client.get("/api/v1/openapi.json").status_code == 200
    docs = api.client.get("/api/v1/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    _has_security_headers(docs)
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]  # the docs page may load Swagger UI


@pytest.mark.parametrize("method,path,key,body,status", [
    ("get", "/api/v1/persons/{william}", "plain", None, 200),
    ("post", "/api/v1/persons/search", "plain", BILL, 200),
    ("get", "/api/v1/persons/by-source/housing/HT000001", "plain", None, 200),
    ("get", "/api/v1/changes", "plain", None, 200),
    ("get", "/api/v1/health", None, None, 200),
    ("get", "/api/v1/openapi.json", None, None, 200),
    ("get", "/api/v1/changes", None, None, 401),
    ("get", "/api/v1/changes", "only_sc", None, 403),
    ("get", "/api/v1/persons/JU99999999", "plain", None, 404),
    ("post", "/api/v1/persons/search", "plain", {"family_name": "Smith"}, 422),
    ("get", "/api/v1/no-such-route", None, None, 404),
    ("delete", "/api/v1/changes", "plain", None, 405),
])
def test_security_headers_on_every_answer(api: Api, method: str, path: str, key: str | None, body: dict | None,
                                          status: int) -> None:
    headers = api.auth(getattr(api, key)) if key else {}
    kwargs = {"json": body} if body else {}
    response = api.client.request(method.upper(), path.format(william=api.william), headers=headers, **kwargs)
    assert response.status_code == status
    _has_security_headers(response)
    if status == 200 and path != "/api/v1/openapi.json":
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_security_headers_on_redirects_rate_limits_and_crashes(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import select

    from joinedup.mci.store import Person, SourceRecord, session_factory

    with session_factory()() as session:
        loser = session.scalar(select(SourceRecord).where(SourceRecord.source_key == "500000009")).master_id
        session.get(Person, loser).status, session.get(Person, loser).merged_into = "merged", api.william
        session.commit()
    moved = api.client.get(f"/api/v1/persons/{loser}", headers=api.auth(api.plain), follow_redirects=False)
    assert moved.status_code == 308
    _has_security_headers(moved)

    limited = _make_api(rate_per_second=0.001, burst=1)
    limited.client.get("/api/v1/changes", headers=limited.auth(limited.plain))
    too_many = limited.client.get("/api/v1/changes", headers=limited.auth(limited.plain))
    assert too_many.status_code == 429
    _has_security_headers(too_many)

    import joinedup.api.app as app_module

    def broken(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("database gone")

    monkeypatch.setattr(app_module, "events_for_caller", broken)
    crashing = TestClient(api.client.app, raise_server_exceptions=False)
    crash = crashing.get("/api/v1/changes", headers=api.auth(api.plain))
    assert crash.status_code == 500 and crash.headers["content-type"].startswith("application/problem+json")
    _has_security_headers(crash)
