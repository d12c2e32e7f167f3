"""The workbench's routes through FastAPI's TestClient, over an index the real pipeline built:
sign-in, authorisation of every route, CSRF, security headers, masking, decisions, search."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.component.test_workbench_setup import SECRET_VALUES, build_index, records_by_key

PASSWORD = "correct horse battery"
USERS = {  # username: (role, socialcare)
    "ada": ("admin", True),
    "sam": ("steward", False),
    "vic": ("viewer", False),
    "cara": ("steward", True),
}
PUBLIC = {("GET", "/login"), ("POST", "/login")}


@pytest.fixture
def workbench(project: Path, mci_db: str):
    from joinedup.mci.store import session_factory
    from joinedup.steward.users import add_user
    from joinedup.steward.web import create_app

    build_index(project)
    app = create_app(secret="s" * 40)
    with session_factory()() as session:
        for name, (role, social) in USERS.items():
            add_user(session, name, PASSWORD, role, socialcare=social)
        session.commit()
    return app


def token_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def signed_in(app, username: str) -> tuple[TestClient, str]:  # noqa: ANN001
    client = TestClient(app, follow_redirects=False)
    token = token_of(client.get("/login").text)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/review"})
    assert response.status_code == 303 and response.headers["location"] == "/review"
    return client, token_of(client.get("/report").text)


def _keys(app) -> dict:  # noqa: ANN001
    from joinedup.mci.store import session_factory

    with session_factory()() as session:
        return {k: (r.id, r.master_id) for k, r in records_by_key(session).items()}


def _pair_id(left_key: str, right_key: str, app) -> int:  # noqa: ANN001
    from joinedup.mci.store import ReviewPair, session_factory

    keys = _keys(app)
    ids = {keys[left_key][0], keys[right_key][0]}
    with session_factory()() as session:
        for pair in session.scalars(select(ReviewPair)):
            if {pair.record_id_l, pair.record_id_r} == ids:
                return pair.id
    raise AssertionError("pair not found")


def _concrete(path: str) -> str:
    return path.replace("{pair_id}", "1").replace("{master_id}", "JU00000001")


def _routes(app) -> list[tuple[str, str]]:  # noqa: ANN001
    return sorted((m, r.path) for r in app.routes if isinstance(r, APIRoute) for m in r.methods)


def test_every_route_but_sign_in_needs_a_session(workbench) -> None:  # noqa: ANN001
    client = TestClient(workbench, follow_redirects=False)
    routes = _routes(workbench)
    assert len(routes) >= 12
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        url = _concrete(path)
        if method == "GET":
            page = client.get(url, headers={"accept": "text/html"})
            assert page.status_code == 303 and page.headers["location"].startswith("/login?next="), (method, path)
            assert client.get(url, headers={"accept": "application/json"}).status_code == 401, (method, path)
        else:
            assert client.request(method, url, data={}).status_code in (401, 403), (method, path)
    assert client.get("/login").status_code == 200
    assert client.get("/static/workbench.css").status_code == 200


def test_every_post_refuses_a_missing_or_wrong_csrf_token(workbench) -> None:  # noqa: ANN001
    client, token = signed_in(workbench, "ada")
    posts = [path for method, path in _routes(workbench) if method == "POST"]
    assert {"/login", "/logout", "/review/{pair_id}/decide", "/person/{master_id}/unmerge"} <= set(posts)
    pair = _pair_id("500000014", "500000015", workbench)
    for path in posts:
        url = path.replace("{pair_id}", str(pair)).replace("{master_id}", "JU00000001")
        form = {"action": "accept", "username": "ada", "password": PASSWORD, "record_id": "1"}
        assert client.post(url, data=form).status_code == 403, path
        assert client.post(url, data={**form, "csrf_token": token[:-2] + "xx"}).status_code == 403, path
    from joinedup.mci.store import ReviewPair, session_factory

    with session_factory()() as session:
        assert session.get(ReviewPair, pair).status == "open"  # nothing was decided
    # and a form from another session is refused too
    other, other_token = signed_in(workbench, "cara")
    assert client.post(f"/review/{pair}/decide", data={"action": "accept", "csrf_token": other_token}).status_code == 403


def test_security_headers_and_session_cookie(workbench) -> None:  # noqa: ANN001
    client = TestClient(workbench, follow_redirects=False)
    page = client.get("/login")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    cookie = page.headers["set-cookie"].lower()
    assert "samesite=strict" in cookie and "httponly" in cookie
    signed, _ = signed_in(workbench, "sam")
    assert signed.get("/report").headers["cache-control"] == "no-store"


def test_sign_in_failures_and_no_open_redirect(workbench) -> None:  # noqa: ANN001
    from joinedup.steward.audit import recent
    from joinedup.mci.store import session_factory

    client = TestClient(workbench, follow_redirects=False)
    token = token_of(client.get("/login").text)
    bad = client.post("/login", data={"username": "sam", "password": "wrong password", "csrf_token": token})
    assert bad.status_code == 401 and "Wrong username or password" in bad.text
    assert client.get("/report").status_code == 303
    good = client.post("/login", data={"username": "sam", "password": PASSWORD, "csrf_token": token,
                                       "next": "//evil.example/steal"})
    assert good.headers["location"] == "/report"
    with session_factory()() as session:
        assert [e.action for e in recent(session, username="sam")][:2] == ["login", "login_failed"]


def test_signing_out_and_a_changed_password_end_the_session(workbench) -> None:  # noqa: ANN001
    from joinedup.mci.store import session_factory
    from joinedup.steward.users import set_password

    client, token = signed_in(workbench, "sam")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/report").status_code == 303
    client, _ = signed_in(workbench, "sam")
    with session_factory()() as session:
        set_password(session, "sam", "another long password")
        session.commit()
    assert client.get("/report").status_code == 303


def test_pages_render_for_a_steward(workbench) -> None:  # noqa: ANN001
    client, _ = signed_in(workbench, "sam")
    report = client.get("/report")
    assert report.status_code == 200 and "<svg" in report.text and "records auto-linked" in report.text
    assert "socialcare" in report.text and "revenues" in report.text  # per-source figures
    queue = client.get("/review")
    assert queue.status_code == 200 and queue.text.count('data-href="/review/') == 3
    assert client.get("/quarantine").text.count("<tr>") >= 3  # header + the 2 refused rows
    assert client.get("/review/999999").status_code == 404
    assert client.get("/person/JU99999999").status_code == 404
    assert client.get("/audit").status_code == 403  # admins only


def test_viewer_can_read_but_not_decide_or_unmerge(workbench) -> None:  # noqa: ANN001
    from joinedup.mci.store import ReviewPair, session_factory

    client, token = signed_in(workbench, "vic")
    pair = _pair_id("500000014", "500000015", workbench)
    page = client.get(f"/review/{pair}")
    assert page.status_code == 200 and 'value="accept"' not in page.text
    assert client.post(f"/review/{pair}/decide", data={"action": "accept", "csrf_token": token}).status_code == 403
    smith = _keys(workbench)["500000001"]
    assert client.post(f"/person/{smith[1]}/unmerge", data={"record_id": str(_keys(workbench)["500000002"][0]),
                                                             "csrf_token": token}).status_code == 403
    with session_factory()() as session:
        assert session.get(ReviewPair, pair).status == "open"
        assert records_by_key(session)["500000002"].master_id == smith[1]


def test_special_category_values_are_masked_without_the_permission(workbench) -> None:  # noqa: ANN001
    keys = _keys(workbench)
    smith = keys["500000001"][1]
    morgan_pair = _pair_id("500000013", "SC0000002", workbench)
    for username in ("sam", "vic"):
        client, _ = signed_in(workbench, username)
        pages = [client.get(f"/person/{smith}"), client.get(f"/review/{morgan_pair}"), client.get("/review"),
                 client.get("/search?postcode=cf52qq"), client.get("/search?q=smith"),
                 client.get(f"/person/{keys['SC0000002'][1]}")]
        for page in pages:
            assert page.status_code == 200
            for secret in SECRET_VALUES:
                assert secret not in page.text, (username, page.url, secret)
        assert "Restricted record in a special-category system" in pages[0].text
        assert "socialcare/" not in pages[0].text  # not even which system
        assert "No person matches" in pages[3].text
        assert "William" in pages[4].text and "+1 restricted" in pages[4].text
    client, _ = signed_in(workbench, "cara")
    assert "Ty Gwyn" in client.get(f"/person/{smith}").text
    assert "Harbour View" in client.get(f"/review/{morgan_pair}").text
    assert smith in client.get("/search?postcode=cf52qq").text


def test_search_by_name_dob_postcode_and_ni(workbench) -> None:  # noqa: ANN001
    keys = _keys(workbench)
    client, _ = signed_in(workbench, "sam")
    assert keys["500000009"][1] in client.get("/search", params={"q": "o'brien"}).text
    found = client.get("/search", params={"dob": "22/05/1985"}).text
    assert keys["500000014"][1] in found and keys["500000015"][1] in found and keys["500000009"][1] not in found
    assert keys["500000004"][1] in client.get("/search", params={"postcode": "np201ab"}).text
    by_ni = client.get("/search", params={"ni": "jk 11 22 33"}).text  # no suffix, spaces, lower case
    assert keys["500000009"][1] in by_ni and keys["500000001"][1] not in by_ni
    both = client.get("/search", params={"q": "amy brown", "dob": "1990-02-01"}).text
    assert keys["500000004"][1] in both and keys["500000006"][1] not in both  # Zoe, the twin
    assert "use DD/MM/YYYY" in client.get("/search", params={"dob": "31/13/1980"}).text
    injected = client.get("/search", params={"q": "%' OR 1=1 --"})
    assert injected.status_code == 200 and "No person matches" in injected.text


def test_accept_reject_defer_and_unmerge_through_the_pages(workbench) -> None:  # noqa: ANN001
    from joinedup.mci.store import ReviewPair, StewardDecision, session_factory
    from joinedup.steward.audit import recent

    client, token = signed_in(workbench, "sam")
    hughes = _pair_id("500000014", "500000015", workbench)
    done = client.post(f"/review/{hughes}/decide", data={"action": "accept", "comment": "moved house", "csrf_token": token})
    assert done.status_code == 303
    keys = _keys(workbench)
    assert keys["500000014"][1] == keys["500000015"][1]
    person = client.get(f"/person/{keys['500000014'][1]}").text
    assert "Catherine" in person and "Kate" in person and "merged" in person
    again = client.post(f"/review/{hughes}/decide", data={"action": "reject", "csrf_token": token})
    assert again.status_code == 303 and "already accepted" in client.get(f"/review/{hughes}").text

    price = _pair_id("500000016", "500000017", workbench)
    client.post(f"/review/{price}/decide", data={"action": "reject", "csrf_token": token})
    morgan = _pair_id("500000013", "SC0000002", workbench)
    client.post(f"/review/{morgan}/decide", data={"action": "defer", "comment": "ask social care", "csrf_token": token})

    split = client.post(f"/person/{keys['500000014'][1]}/unmerge",
                        data={"record_id": str(keys["500000015"][0]), "reason": "two people", "csrf_token": token})
    assert split.status_code == 303
    after = _keys(workbench)
    assert after["500000015"][1] != after["500000014"][1] == keys["500000014"][1]
    with session_factory()() as session:
        statuses = {p.id: p.status for p in session.scalars(select(ReviewPair))}
        assert (statuses[hughes], statuses[price], statuses[morgan]) == ("accepted", "rejected", "deferred")
        kinds = sorted(d.kind for d in session.scalars(select(StewardDecision)))
        assert kinds == ["cannot_link", "cannot_link", "must_link"]  # the split superseded the accept's must-link
        actions = [(e.action, e.pair_id, e.master_id) for e in recent(session, username="sam")]
        assert ("accept", hughes, keys["500000014"][1]) in actions and ("reject", price, None) in actions
        assert ("unmerge", None, keys["500000014"][1]) in actions
        assert any(a == "view_person" for a, *_ in actions)
    history = client.get(f"/review/{hughes}").text
    assert "superseded by #" in history and "supersedes must-link #" in history
    admin, _ = signed_in(workbench, "ada")
    log = admin.get("/audit", params={"username": "sam"}).text
    assert "accept" in log and "unmerge" in log and f"#{hughes}" in log
    for value in ("Catherine", "Hughes", "22/05/1985", "1985-05-22", "moved house", "two people"):
        assert value not in log  # ids and counts only


def test_a_record_gone_from_its_source_is_marked_and_a_restricted_one_not_revealed(workbench) -> None:  # noqa: ANN001
    from datetime import datetime

    from joinedup.mci.gone import mark_gone
    from joinedup.mci.store import session_factory

    keys = _keys(workbench)
    smith = keys["500000001"][1]
    client, _ = signed_in(workbench, "sam")
    assert "gone from source" not in client.get(f"/person/{smith}").text
    social = [k for k, (_, master) in keys.items() if master == smith and k.startswith("SC")]
    assert social, "the fixture links a social-care record to William Smith"
    gone_at = datetime(2026, 1, 6, 2, 0)
    with session_factory()() as session:  # what a full extract lacking it does (joinedup.mci.gone)
        mark_gone(session, [keys[social[0]]], "night-2", gone_at)
        session.commit()
    page = client.get(f"/person/{smith}").text
    assert "gone from source 06 Jan 2026" not in page  # the restricted record's column shows nothing
    assert "socialcare" not in page  # its history event is shown, without naming the system
    cara, _ = signed_in(workbench, "cara")
    assert "gone from source 06 Jan 2026" in cara.get(f"/person/{smith}").text
    with session_factory()() as session:
        mark_gone(session, [keys["500000002"]], "night-2", gone_at)
        session.commit()
    assert client.get(f"/person/{smith}").text.count("gone from source 06 Jan 2026") == 1

    # Both council tax accounts gone: the e-mail only the first carries still comes from it,
    # and the golden record says that record is no longer held.
    from joinedup.mci.golden import refresh_golden

    assert "no longer held" not in client.get(f"/person/{smith}").text
    with session_factory()() as session:
        mark_gone(session, [keys["500000001"]], "night-2", gone_at)
        refresh_golden(session, {smith}, "night-2", records_moved=False)
        session.commit()
    page = client.get(f"/person/{smith}").text
    email_row = re.search(r'<th scope="row">email</th>.*?</tr>', page, re.S).group(0)
    assert "revenues/500000001" in email_row and "no longer held" in email_row
    assert page.count("no longer held") == sum(1 for row in re.findall(r'<th scope="row">.*?</tr>', page, re.S)
                                               if "revenues/500000001" in row or "revenues/500000002" in row)
