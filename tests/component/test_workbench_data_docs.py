"""The night report links the quarantine and the GX Data Docs, shows each source's data
quality over time, and the Data Docs site is served to signed-in users only, read-only,
without leaving its folder."""
from __future__ import annotations

import os
from pathlib import Path

from fastapi.testclient import TestClient

from tests.component.test_workbench_routes import signed_in, workbench  # noqa: F401 - the fixture


def test_report_links_quarantine_data_docs_and_shows_quality_history(workbench, project: Path) -> None:  # noqa: ANN001, F811
    from joinedup.quality.data_docs import data_docs_index

    index = data_docs_index()
    assert index is not None, "the night's checks wrote no GX Data Docs"
    client, _ = signed_in(workbench, "sam")
    report = client.get("/report").text
    assert 'href="/quarantine"' in report and 'href="/data-docs/index.html"' in report
    assert "Data quality over time" in report
    history = report.split("Data quality over time", 1)[1]
    assert "<h3>revenues</h3>" in history and "<h3>socialcare</h3>" in history
    validation_links = [part.split('"', 1)[0] for part in history.split('href="/data-docs/')[1:]]
    assert validation_links and all(p.startswith("validations/") for p in validation_links)
    page = client.get("/data-docs/" + validation_links[0])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert policy.startswith("sandbox") and "connect-src 'none'" in policy and "frame-ancestors 'none'" in policy
    home = client.get("/data-docs/")
    assert home.status_code == 303 and home.headers["location"] == "/data-docs/index.html"
    assert client.get("/data-docs/index.html").text == index.read_text(encoding="utf-8")


def test_data_docs_need_a_session_and_stay_in_their_folder(workbench, project: Path) -> None:  # noqa: ANN001, F811
    from joinedup.quality.data_docs import data_docs_dir

    anonymous = TestClient(workbench, follow_redirects=False)
    assert anonymous.get("/data-docs/index.html").status_code == 303  # to /login
    site = data_docs_dir()
    (site.parent / "outside.html").write_text("<p>not part of the site</p>", encoding="utf-8")
    os.symlink(site.parent / "outside.html", site / "link.html")
    client, token = signed_in(workbench, "vic")  # any signed-in role may read them
    assert client.get("/data-docs/index.html").status_code == 200
    for path in ("../outside.html", "..%2Foutside.html", "%2e%2e/outside.html", "link.html", "validations",
                 "..%5coutside.html", "/etc/passwd", "%2Fetc%2Fpasswd"):
        response = client.get("/data-docs/" + path)
        assert response.status_code == 404, path
        assert "not part of the site" not in response.text and "root:" not in response.text
    assert client.post("/data-docs/index.html", data={"csrf_token": token}).status_code == 405


def test_no_data_docs_yet(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import session_factory
    from joinedup.steward.users import add_user
    from joinedup.steward.web import create_app

    app = create_app(secret="s" * 40, sso=None)
    with session_factory()() as session:
        add_user(session, "sam", "correct horse battery", "steward")
        session.commit()
    client, _ = signed_in(app, "sam")
    assert client.get("/data-docs/").status_code == 404
    assert client.get("/data-docs/index.html").status_code == 404
