"""Both web front ends, enumerated route by route: every route of the steward workbench and of
the lookup API refuses an anonymous caller unless it is on an explicit allow-list (sign-in
page, static files, the OpenAPI document and its viewer, health), and every answer carries the
security headers, refusals included. A route added tomorrow is checked by the same loop.
SQL metacharacters in every search parameter come back as ordinary, empty searches."""
from __future__ import annotations

import re
from urllib.parse import quote
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

WORKBENCH_PUBLIC = {("GET", "/login"), ("POST", "/login")}
WORKBENCH_PUBLIC_PREFIXES = ("/static",)
API_PUBLIC = {"/api/v1/openapi.json", "/api/v1/docs", "/api/v1/health", "/api/v1/docs/oauth2-redirect"}
SQL = ["' OR '1'='1", "'; DROP TABLE persons; --", "\" OR 1=1 --", "%' UNION SELECT * FROM api_keys --",
       "1; SELECT pg_sleep(0)", "\\'; --", "_%", "*", "\x00"]
HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _has_headers(response) -> None:  # noqa: ANN001
    for name, value in HEADERS.items():
        assert response.headers.get(name, "").lower() == value.lower(), (response.request.url.path, name)
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp or "default-src" in csp, response.request.url.path


@pytest.fixture
def empty_db(project: Path) -> str:
    from joinedup.mci import schema
    from joinedup.mci.store import _engine_for, get_engine

    if hasattr(schema, "upgrade"):
        schema.upgrade(get_engine())
    else:  # pragma: no cover - before migrations
        from joinedup.mci.store import Base

        Base.metadata.create_all(get_engine())
    yield str(project)
    _engine_for.cache_clear()


def _workbench():  # noqa: ANN202
    from joinedup.steward.web import create_app

    return create_app(secret="s" * 40, sso=None)


def _api():  # noqa: ANN202
    from joinedup.api import create_api

    return create_api()


def _routes(app) -> list[tuple[str, str]]:  # noqa: ANN001
    out = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            out += [(m, route.path) for m in sorted(route.methods)]
        elif isinstance(route, Mount):
            out.append(("MOUNT", route.path))
        else:
            out += [(m, route.path) for m in sorted(getattr(route, "methods", None) or {"GET"})]
    return out


def test_every_workbench_route_needs_a_session_unless_allow_listed(empty_db: str) -> None:
    app = _workbench()
    client = TestClient(app, follow_redirects=False)
    routes = _routes(app)
    checked = []
    for method, path in routes:
        if (method, path) in WORKBENCH_PUBLIC or path.startswith(WORKBENCH_PUBLIC_PREFIXES) or method == "HEAD":
            continue
        assert method != "MOUNT", f"mounted app {path} is not on the allow-list: check its access"
        response = client.request(method, _concrete(path))
        refused = response.status_code in (401, 403) or (
            response.status_code in (302, 303, 307) and "/login" in response.headers.get("location", ""))
        assert refused, f"{method} {path} answered {response.status_code} to an anonymous caller"
        _has_headers(response)
        checked.append((method, path))
    assert len(checked) >= 12, checked
    _has_headers(client.get("/login"))


def test_every_api_route_needs_a_key_unless_allow_listed(empty_db: str) -> None:
    app = _api()
    client = TestClient(app, follow_redirects=False)
    checked = []
    for method, path in _routes(app):
        if path in API_PUBLIC or method == "HEAD":
            continue
        assert method != "MOUNT", f"mounted app {path} is not on the allow-list: check its access"
        for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"X-API-Key": "' OR '1'='1"}):
            response = client.request(method, _concrete(path), headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.status_code)
            _has_headers(response)
        checked.append((method, path))
    assert len(checked) >= 4, checked
    health = client.get("/api/v1/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    _has_headers(health)


def test_sql_metacharacters_in_api_search_are_plain_text(empty_db: str) -> None:
    from joinedup.api.keys import create_key
    from joinedup.mci.store import session_factory

    app = _api()
    with session_factory()() as session:
        token = create_key(session, ["person:read"], "test")[1]
        session.commit()
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {token}"}
    for payload in SQL:
        body = {"given_name": payload, "family_name": payload, "date_of_birth": "1980-01-01", "postcode": payload,
                "ni_number": payload}
        response = client.post("/api/v1/persons/search", json=body, headers=auth)
        assert response.status_code in (200, 422), (payload, response.status_code)
        if response.status_code == 200:
            assert response.json()["candidates"] == [], payload
        quoted = quote(payload, safe="")
        for path in (f"/api/v1/persons/{quoted}", f"/api/v1/persons/by-source/housing/{quoted}"):
            got = client.get(path, headers=auth)
            assert got.status_code in (404, 422, 400), (path, got.status_code)
    with session_factory()() as session:  # the tables are all still there
        from sqlalchemy import inspect

        assert {"persons", "source_records", "api_keys"} <= set(inspect(session.get_bind()).get_table_names())


def test_sql_metacharacters_in_workbench_search_are_plain_text(empty_db: str) -> None:
    from joinedup.mci.store import session_factory
    from joinedup.steward.users import add_user

    app = _workbench()
    with session_factory()() as session:
        add_user(session, "sam", "correct horse battery", "steward")
        session.commit()
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    signed = client.post("/login", data={"username": "sam", "password": "correct horse battery", "csrf_token": token})
    assert signed.status_code == 303
    search = next(p for m, p in _routes(app) if m == "GET" and p.rstrip("/").endswith("search"))
    for payload in SQL:
        for field in ("q", "name", "dob", "postcode", "ni"):
            response = client.get(search, params={field: payload})
            assert response.status_code in (200, 400, 422), (field, payload, response.status_code)
            _has_headers(response)
