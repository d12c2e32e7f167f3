"""The workbench in a real browser: Debian's chromium driven by Playwright, against the app
served by uvicorn on loopback, over an index the real pipeline built.

A steward signs in, reads the night report (with its data quality over time and the GX Data
Docs it links to), opens the queue, accepts a pair with the keyboard, sees the person merged,
unmerges, sees the accept's must-link marked as superseded, and an admin checks the audit log;
a viewer without the social-care permission sees the social-care record masked; too many
wrong passwords pause a username's sign-in. Screenshots of the main pages go
to a temporary folder, or to docs/screenshots/ (shown in the README) when
JOINEDUP_SCREENSHOTS=docs/screenshots is set, so an ordinary test run leaves the tree clean."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.component.test_workbench_setup import SECRET_VALUES, build_index, records_by_key
from tests.conftest import REPO, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = REPO / os.environ["JOINEDUP_SCREENSHOTS"] if os.environ.get("JOINEDUP_SCREENSHOTS") else None
PASSWORD = "correct horse battery"


def _need_browser() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append('the playwright package (pip install "playwright>=1.50,<2")')
    if missing:
        message = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        print(f"SKIPPED: {message}")
        pytest.skip(message)


@pytest.fixture
def server(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict]]:
    """The workbench on a free loopback port, over tonight's index; users ada (admin, social
    care), sam (steward) and vic (viewer)."""
    _need_browser()
    import uvicorn

    from joinedup.mci.store import _engine_for, session_factory
    from joinedup.steward.users import add_user
    from joinedup.steward.web import create_app

    (project / "var").mkdir(exist_ok=True)
    for setting in ("JOINEDUP_LOGIN_MAX_FAILURES", "JOINEDUP_LOGIN_WINDOW_MINUTES", "JOINEDUP_SSO_USER_HEADER"):
        monkeypatch.delenv(setting, raising=False)  # the defaults: 5 failures in 15 minutes, no SSO
    monkeypatch.setenv("JOINEDUP_DB_URL", f"sqlite:///{project / 'var' / 'mci.sqlite'}")
    build_index(project)
    app = create_app(secret="b" * 40)
    with session_factory()() as session:
        add_user(session, "ada", PASSWORD, "admin", socialcare=True)
        add_user(session, "sam", PASSWORD, "steward")
        add_user(session, "vic", PASSWORD, "viewer")
        session.commit()
        keys = {k: (r.id, r.master_id) for k, r in records_by_key(session).items()}
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", keys
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        _engine_for.cache_clear()


def _sign_in(page, base: str, username: str) -> None:  # noqa: ANN001
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/report")


def test_steward_reviews_merges_unmerges_and_the_audit_log_shows_it(server, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import expect, sync_playwright

    base, keys = server
    expect.set_options(timeout=30_000)  # each merge or split is a POST and a new page: a loaded CI machine
    shots = SHOTS or tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 820})
        def console(message) -> None:  # noqa: ANN001 - CSP violations land here
            if message.type == "error":
                problems.append(message.text)

        page.on("console", console)
        page.goto(f"{base}/report")
        expect(page).to_have_url(f"{base}/login?next=%2Freport")
        page.screenshot(path=shots / "login.png")
        _sign_in(page, base, "ada")

        expect(page.locator("h1")).to_have_text("Night report")
        expect(page.locator(".card").first).to_contain_text("records auto-linked")
        expect(page.locator("svg.chart rect").first).to_be_visible()
        expect(page.locator(".history h3")).to_have_text(["revenues", "socialcare"])
        docs_link = page.locator("a", has_text="GX Data Docs")
        expect(docs_link).to_have_attribute("href", "/data-docs/index.html")
        page.screenshot(path=shots / "report.png", full_page=True)
        with page.expect_popup() as popup:  # Data Docs open beside the workbench
            page.locator(".history a", has_text="validation").first.click()
        docs = popup.value
        docs.wait_for_load_state()
        assert docs.url.startswith(f"{base}/data-docs/validations/"), docs.url
        expect(docs.locator("body")).to_contain_text("revenues")  # GX's page of that source's batch
        docs.close()

        page.click("header nav >> text=Review queue")
        rows = page.locator("table.queue tbody tr")
        expect(rows).to_have_count(3)
        page.wait_for_load_state("load")  # the shortcuts' script (deferred) has run
        page.screenshot(path=shots / "queue.png", full_page=True)
        page.keyboard.press("j")  # the first row is selected
        expect(rows.first).to_have_class("selected")
        page.locator("table.queue tbody tr", has_text="Catherine").click()
        expect(page.locator("tr.differs").first).to_be_visible()
        hughes_pair = int(page.url.rsplit("/", 1)[1])
        page.wait_for_load_state("load")
        page.fill("textarea[name=comment]", "moved from Oak Way to Elm Close")
        page.screenshot(path=shots / "pair.png", full_page=True)
        page.keyboard.press("Escape")  # leave the comment box: the shortcuts work again
        page.keyboard.press("a")  # accept
        flash = page.locator(".flash").first
        expect(flash).to_contain_text("Merged")
        flash.get_by_role("link").click()

        survivor = keys["500000014"][1]
        expect(page).to_have_url(f"{base}/person/{survivor}")
        expect(page.locator("table.records thead")).to_contain_text("revenues/500000015")
        expect(page.locator("ol.timeline")).to_contain_text("absorbed")
        expect(page.locator("td.winner").first).to_be_visible()
        page.screenshot(path=shots / "person.png", full_page=True)

        page.locator("table.records thead th", has_text="revenues/500000015").locator("input[type=checkbox]").check()
        page.fill("input[name=reason]", "two different people")
        page.click("text=Split the chosen records into a new person")
        expect(page.locator(".flash").first).to_contain_text("Split 1 record(s)")
        expect(page.locator("table.records thead")).not_to_contain_text("revenues/500000015")
        expect(page.locator("ol.timeline")).to_contain_text("records split off into")

        page.goto(f"{base}/review/{hughes_pair}")  # the accept's must-link is kept, superseded by the split
        superseded = page.locator("tr.superseded")
        expect(superseded).to_have_count(1)
        expect(superseded).to_contain_text("must-link")
        expect(page.locator("table.data.small")).to_contain_text("supersedes must-link")
        page.screenshot(path=shots / "pair_history.png", full_page=True)

        page.goto(f"{base}/search?q=hughes")
        expect(page.locator("table tbody tr")).to_have_count(2)  # two persons again
        page.screenshot(path=shots / "search.png", full_page=True)

        page.click("header nav >> text=Audit log")
        audit = page.locator("table.audit tbody")
        for action in ("accept", "unmerge", "view person", "view pair", "login"):
            expect(audit).to_contain_text(action)
        page.screenshot(path=shots / "audit.png", full_page=True)
        page.click("text=Sign out")
        expect(page).to_have_url(f"{base}/login")

        # a viewer without the social-care permission: the social-care record is masked
        _sign_in(page, base, "vic")
        page.goto(f"{base}/person/{keys['500000001'][1]}")
        expect(page.locator("table.records thead")).to_contain_text("Restricted record in a special-category system")
        html = page.content()
        for secret in SECRET_VALUES:
            assert secret not in html, secret
        expect(page.locator(".unmerge-box")).to_have_count(0)  # a viewer cannot unmerge
        page.screenshot(path=shots / "person_restricted.png", full_page=True)
        page.click("text=Sign out")

        # five wrong passwords for one username pause its sign-in, right password or not
        page.remove_listener("console", console)  # Chromium logs each 401/429 answer as a console error
        for _ in range(5):
            page.fill("input[name=username]", "sam")
            page.fill("input[name=password]", "not the password")
            page.click("button[type=submit]")
            expect(page.locator(".flash.error")).to_contain_text("Wrong username or password")
        page.fill("input[name=username]", "sam")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator(".flash.error")).to_contain_text("Too many failed sign-ins for this username")
        page.screenshot(path=shots / "login_paused.png")
        browser.close()
    assert not problems, problems

    from joinedup.mci.store import ReviewPair, SourceRecord, session_factory

    with session_factory()() as session:
        assert session.scalar(select(ReviewPair.status).where(ReviewPair.record_id_l == keys["500000014"][0])) == "accepted"
        assert session.get(SourceRecord, keys["500000015"][0]).master_id not in (None, survivor)
