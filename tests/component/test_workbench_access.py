"""Who gets in: login rate limiting (counted from the audit log), single sign-on through a
trusted reverse proxy's header, and which client address the workbench believes."""
from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.component.test_workbench_routes import PASSWORD, token_of
from tests.conftest import free_port

PROXY, ELSEWHERE = "10.9.0.1", "10.9.0.2"
LIMITS = dict(max_failures=3, max_failures_per_address=5, window=timedelta(minutes=15))


@pytest.fixture
def users(project: Path, mci_db: str) -> str:
    from joinedup.mci.store import Base, get_engine, session_factory
    from joinedup.steward import models  # noqa: F401
    from joinedup.steward.users import add_user

    Base.metadata.create_all(get_engine())
    with session_factory()() as session:
        add_user(session, "sam", PASSWORD, "steward")
        add_user(session, "ada", PASSWORD, "admin", socialcare=True)
        session.commit()
    return mci_db


def make_app(**kwargs):  # noqa: ANN003, ANN201
    from joinedup.steward.web import create_app
    from joinedup.steward.web.login_limits import LoginLimits

    kwargs.setdefault("sso", None)
    return create_app(secret="s" * 40, login_limits=LoginLimits(**LIMITS), **kwargs)


def attempt(app, username: str, password: str, address: str = "192.0.2.10"):  # noqa: ANN001, ANN201
    client = TestClient(app, follow_redirects=False, client=(address, 50000))
    token = token_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def entries(action: str) -> list:
    from joinedup.mci.store import session_factory
    from joinedup.steward.models import AuditEntry

    with session_factory()() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def age_failures(minutes: int) -> None:
    """As if the failures so far happened ``minutes`` earlier."""
    from joinedup.mci.store import session_factory
    from joinedup.steward.models import AuditEntry

    with session_factory()() as session:
        for entry in session.scalars(select(AuditEntry).where(AuditEntry.action == "login_failed")):
            entry.at = entry.at - timedelta(minutes=minutes)
        session.commit()


# -- login rate limiting ------------------------------------------------------------------------
def test_failed_sign_ins_pause_the_username_for_every_worker(users: str) -> None:
    app, other_worker = make_app(), make_app()
    for _ in range(3):
        assert attempt(app, "sam", "wrong password").status_code == 401
    refused = attempt(app, "sam", PASSWORD)  # the right password, but paused: it is not checked
    assert refused.status_code == 429 and "Too many failed sign-ins for this username" in refused.text
    assert 14 <= int(refused.headers["retry-after"]) // 60 <= 15
    assert attempt(other_worker, "sam", PASSWORD).status_code == 429  # the count lives in the database
    assert attempt(app, "ada", PASSWORD).status_code == 303  # other users are not paused
    logged = entries("login_refused")
    assert [(e.username, e.detail["failures"], e.detail["by_address"]) for e in logged] == [("sam", 3, False)] * 2
    assert logged[0].detail["client"] == "192.0.2.10"
    age_failures(16)  # the window has passed
    assert attempt(app, "sam", PASSWORD).status_code == 303


def test_an_unknown_username_is_paused_like_a_known_one(users: str) -> None:
    app = make_app()
    for name, address in (("nobody", "192.0.2.1"), ("sam", "192.0.2.2")):  # under the address limit
        assert all(attempt(app, name, "wrong password", address).status_code == 401 for _ in range(3))
    unknown, sam = attempt(app, "nobody", "x" * 12, "192.0.2.1"), attempt(app, "sam", "x" * 12, "192.0.2.2")
    assert unknown.status_code == sam.status_code == 429
    message = lambda page: re.search(r'role="alert">([^<]+)<', page.text).group(1)  # noqa: E731
    assert message(unknown) == message(sam)  # no telling which usernames exist


def test_a_successful_sign_in_clears_the_username_count(users: str) -> None:
    app = make_app()
    for _ in range(2):
        attempt(app, "sam", "wrong password")
    assert attempt(app, "sam", PASSWORD).status_code == 303
    for _ in range(2):
        assert attempt(app, "sam", "wrong password").status_code == 401
    assert attempt(app, "sam", PASSWORD).status_code == 303  # 2 since the success, not 4


def test_failures_from_one_address_pause_that_address(users: str) -> None:
    app = make_app()
    for name in ("a1", "a2", "a3", "a4", "a5"):  # a password-spraying sweep, one try per name
        assert attempt(app, name, "wrong password", address="198.51.100.7").status_code == 401
    refused = attempt(app, "sam", PASSWORD, address="198.51.100.7")
    assert refused.status_code == 429 and "for this network address" in refused.text
    assert attempt(app, "sam", PASSWORD, address="198.51.100.8").status_code == 303
    assert [e.detail["client"] for e in entries("login_failed")] == ["198.51.100.7"] * 5


def test_limits_from_the_environment_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from joinedup.steward.web.login_limits import LoginLimits

    monkeypatch.delenv("JOINEDUP_LOGIN_MAX_FAILURES_PER_ADDRESS", raising=False)
    monkeypatch.setenv("JOINEDUP_LOGIN_MAX_FAILURES", "7")
    monkeypatch.setenv("JOINEDUP_LOGIN_WINDOW_MINUTES", "30")
    assert LoginLimits.from_env() == LoginLimits(max_failures=7, window=timedelta(minutes=30))
    monkeypatch.setenv("JOINEDUP_LOGIN_MAX_FAILURES", "none")
    with pytest.raises(ValueError, match="JOINEDUP_LOGIN_MAX_FAILURES must be a whole number"):
        LoginLimits.from_env()


# -- single sign-on -------------------------------------------------------------------------------
def sso_settings(**kwargs):  # noqa: ANN003, ANN201
    from joinedup.steward.web.proxy import TrustedProxies, parse_networks
    from joinedup.steward.web.sso import SsoSettings

    return SsoSettings(user_header="X-Remote-User", proxies=TrustedProxies(parse_networks(f"{PROXY}/32", "test")),
                       **kwargs)


def from_address(app, address: str) -> TestClient:  # noqa: ANN001
    return TestClient(app, follow_redirects=False, client=(address, 50000))


def test_a_trusted_proxy_header_signs_the_user_in(users: str) -> None:
    app = make_app(sso=sso_settings())
    client = from_address(app, PROXY)
    page = client.get("/report", headers={"X-Remote-User": "sam"})
    assert page.status_code == 200 and "sam · steward" in page.text
    assert client.get("/search", headers={"X-Remote-User": "sam"}).status_code == 200
    assert [e.username for e in entries("sso_login")] == ["sam"]  # one sign-in, not one per page
    # the user the proxy vouches for changes: a new session, not the old one's rights
    admin = client.get("/audit", headers={"X-Remote-User": "ada"})
    assert admin.status_code == 200 and "ada · admin" in admin.text
    assert [e.username for e in entries("sso_login")] == ["sam", "ada"]
    assert client.get("/audit", headers={"X-Remote-User": "sam"}).status_code == 403


def test_a_forged_header_is_ignored(users: str) -> None:
    elsewhere = from_address(make_app(sso=sso_settings()), ELSEWHERE)
    for headers in ({"X-Remote-User": "ada"}, {"X-Remote-User": "ada", "X-Forwarded-For": PROXY}):
        page = elsewhere.get("/audit", headers=headers)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
    mode_off = from_address(make_app(sso=None), PROXY)
    assert mode_off.get("/audit", headers={"X-Remote-User": "ada"}).status_code == 303
    assert entries("sso_login") == []


def test_an_unknown_sso_user_is_refused_unless_auto_provisioned(users: str) -> None:
    from joinedup.mci.store import session_factory
    from joinedup.steward.users import authenticate, find_user

    refused = from_address(make_app(sso=sso_settings()), PROXY).get("/report", headers={"X-Remote-User": "newbie"})
    assert refused.status_code == 403 and "not a workbench user yet" in refused.text
    assert [(e.username, e.detail["client"]) for e in entries("sso_refused")] == [("newbie", PROXY)]

    client = from_address(make_app(sso=sso_settings(auto_provision=True)), PROXY)
    page = client.get("/person/JU00000001", headers={"X-Remote-User": "newbie"})
    assert page.status_code == 404  # signed in (the person does not exist), not sent to /login
    assert "newbie · viewer" in client.get("/report", headers={"X-Remote-User": "newbie"}).text
    with session_factory()() as session:
        user = find_user(session, "newbie")
        assert (user.role, user.socialcare) == ("viewer", False)
        assert authenticate(session, "newbie", user.password_hash) is None  # no local password
    assert entries("sso_login")[0].detail["created"] is True


def test_the_roles_header_sets_role_and_social_care(users: str) -> None:
    from joinedup.mci.store import session_factory
    from joinedup.steward.users import find_user

    client = from_address(make_app(sso=sso_settings(roles_header="X-Remote-Groups", role_prefix="joinedup-")), PROXY)
    as_steward = {"X-Remote-User": "sam", "X-Remote-Groups": "staff, joinedup-steward;joinedup-socialcare"}
    assert "sam · steward · social care" in client.get("/report", headers=as_steward).text
    as_viewer = {"X-Remote-User": "sam", "X-Remote-Groups": "joinedup-viewer"}
    assert "sam · viewer" in client.get("/report", headers=as_viewer).text
    with session_factory()() as session:
        assert (find_user(session, "sam").role, find_user(session, "sam").socialcare) == ("viewer", False)
    assert [e.detail["role_changed"] for e in entries("sso_login")] == [True, True]
    none = client.get("/report", headers={"X-Remote-User": "sam", "X-Remote-Groups": "staff steward"})
    assert none.status_code == 403 and "no workbench role" in none.text  # "steward" lacks the prefix


def test_sso_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from joinedup.steward.web.sso import SsoSettings

    for name in ("USER_HEADER", "TRUSTED_PROXIES", "ROLES_HEADER", "AUTO_PROVISION"):
        monkeypatch.delenv(f"JOINEDUP_SSO_{name}", raising=False)
    assert SsoSettings.from_env() is None  # off unless configured
    monkeypatch.setenv("JOINEDUP_SSO_USER_HEADER", "X-Remote-User")
    with pytest.raises(ValueError, match="JOINEDUP_SSO_TRUSTED_PROXIES is not"):
        SsoSettings.from_env()
    monkeypatch.setenv("JOINEDUP_SSO_TRUSTED_PROXIES", "127.0.0.1/32, proxy.council.local")
    with pytest.raises(ValueError, match="'proxy.council.local' is not an IP address"):
        SsoSettings.from_env()
    monkeypatch.setenv("JOINEDUP_SSO_TRUSTED_PROXIES", "127.0.0.1/32,10.20.0.0/16")
    settings = SsoSettings.from_env()
    assert settings.proxies.trusts("10.20.3.4") and not settings.proxies.trusts("10.21.0.1")
    assert settings.auto_provision is False and settings.roles_header is None


def test_the_client_address_comes_from_a_trusted_proxy_only(users: str) -> None:
    from joinedup.steward.web.proxy import TrustedProxies, parse_networks

    app = make_app(proxies=TrustedProxies(parse_networks(f"{PROXY}/32", "test")))
    chain = {"X-Forwarded-For": "203.0.113.66, 192.0.2.44"}  # a forged first hop, then the real client
    for address in (PROXY, ELSEWHERE):
        client = from_address(app, address)
        token = token_of(client.get("/login").text)
        client.post("/login", data={"username": "sam", "password": "wrong password", "csrf_token": token},
                    headers=chain)
    assert [e.detail["client"] for e in entries("login_failed")] == ["192.0.2.44", ELSEWHERE]


# -- the same, through a real server on loopback --------------------------------------------------
def serve(app):  # noqa: ANN001, ANN201
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), proxy_headers=False,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "the workbench did not start on loopback"
    return server, thread, f"http://127.0.0.1:{server.config.port}"


def test_over_loopback_the_header_counts_only_when_loopback_is_the_trusted_proxy(users: str) -> None:
    from joinedup.steward.web.proxy import TrustedProxies, parse_networks
    from joinedup.steward.web.sso import SsoSettings

    def settings(networks: str) -> SsoSettings:
        return SsoSettings(user_header="X-Remote-User", proxies=TrustedProxies(parse_networks(networks, "test")))

    for trusted, expected in (("127.0.0.1/32", 200), ("10.0.0.0/8", 303)):
        server, thread, url = serve(make_app(sso=settings(trusted)))
        try:
            page = requests.get(f"{url}/report", headers={"X-Remote-User": "ada"}, allow_redirects=False, timeout=10)
            assert page.status_code == expected, trusted
            if expected == 200:
                assert "ada · admin" in page.text and page.headers["cache-control"] == "no-store"
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    assert [(e.username, e.detail["client"]) for e in entries("sso_login")] == [("ada", "127.0.0.1")]


# -- security headers on every answer -----------------------------------------------------------
def test_every_answer_carries_the_security_headers(users: str) -> None:
    from joinedup.steward.web.security import SECURITY_HEADERS

    app = make_app(secure_cookies=True)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    client = TestClient(app, base_url="https://testserver", follow_redirects=False, raise_server_exceptions=False)
    answers = {
        "sign-in page": client.get("/login"),
        "redirect to sign in": client.get("/report", headers={"accept": "text/html"}),
        "401 for data": client.get("/report", headers={"accept": "application/json"}),
        "404": client.get("/no/such/page"),
        "405": client.put("/login"),
        "csrf refusal": client.post("/login", data={"username": "sam", "password": PASSWORD}),
        "static": client.get("/static/workbench.css"),
        "crash": client.get("/boom"),
    }
    signed = TestClient(app, base_url="https://testserver", follow_redirects=False, raise_server_exceptions=False,
                        client=("192.0.2.1", 1))  # Secure cookies: over https
    token = token_of(signed.get("/login").text)
    signed.post("/login", data={"username": "sam", "password": PASSWORD, "csrf_token": token})
    answers["person page 404"] = signed.get("/person/JU00000001")
    answers["report"] = signed.get("/report")
    assert answers["crash"].status_code == 500 and "a bug" not in answers["crash"].text
    assert answers["report"].status_code == 200
    for what, answer in answers.items():
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (what, name)
        assert answer.headers["strict-transport-security"].startswith("max-age="), what
        if what != "static":
            assert answer.headers["cache-control"] == "no-store", what
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "frame-ancestors 'none'" in policy
