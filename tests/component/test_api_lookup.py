"""The lookup API end to end over a real MCI (staging + merge), on SQLite and PostgreSQL:
auth and scopes, social-care filtering, the Bill Smyth search, source-key lookup, the change
feed, merged-person redirects, rate limiting, problem details and the audit log."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.component.test_api_support import build_index

PROBLEM = "application/problem+json"
BILL = {"given_name": "Bill", "family_name": "Smyth", "date_of_birth": "3/4/1961", "postcode": "ab12 3dx"}


@dataclass
class Api:
    client: TestClient
    plain: str        # person:read
    social: str       # person:read + socialcare:read
    only_sc: str      # socialcare:read alone: allows nothing
    william: str
    pryce: str

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def _make_api(**options) -> Api:  # noqa: ANN003
    from joinedup.api import create_api
    from joinedup.api.keys import create_key
    from joinedup.mci.store import SourceRecord, session_factory

    app = create_api(**options)
    with session_factory()() as session:
        tokens = [create_key(session, scopes, "test")[1]
                  for scopes in (["person:read"], ["person:read", "socialcare:read"], ["socialcare:read"])]
        masters = dict(session.execute(select(SourceRecord.source_key, SourceRecord.master_id)).all())
        session.commit()
    return Api(TestClient(app), *tokens, william=masters["500000001"], pryce=masters["SC0000002"])


@pytest.fixture
def api(mci_db: str) -> Api:
    build_index()
    return _make_api()


def _is_problem(response, status: int) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["title"] and body["detail"]
    return body


@pytest.mark.parametrize("method,path,body", [
    ("get", "/api/v1/persons/JU00000001", None),
    ("post", "/api/v1/persons/search", BILL),
    ("get", "/api/v1/persons/by-source/revenues/500000001", None),
    ("get", "/api/v1/changes", None),
])
def test_every_route_needs_a_key_with_person_read(api: Api, method: str, path: str, body: dict | None) -> None:
    call = getattr(api.client, method)
    kwargs = {"json": body} if body else {}
    no_key = _is_problem(call(path, **kwargs), 401)
    assert no_key["instance"] == path
    assert call(path, **kwargs).headers["www-authenticate"].startswith("Bearer")
    _is_problem(call(path, headers=api.auth(api.plain + "x"), **kwargs), 401)
    _is_problem(call(path, headers={"Authorization": "Basic dXNlcjpwYXNz"}, **kwargs), 401)
    forbidden = _is_problem(call(path, headers=api.auth(api.only_sc), **kwargs), 403)
    assert forbidden["required_scope"] == "person:read"
    assert call(path, headers=api.auth(api.plain), **kwargs).status_code == 200


def test_person_without_socialcare_scope_omits_social_care(api: Api) -> None:
    plain = api.client.get(f"/api/v1/persons/{api.william}", headers=api.auth(api.plain)).json()
    assert {r["source_system"] for r in plain["source_records"]} == {"revenues", "housing", "hr"}
    assert {i["service"] for i in plain["involvements"]} == {"council_tax_account", "tenancy", "employee"}
    assert plain["restricted_records_withheld"] is True
    assert "nhs_number" not in plain["golden"]  # it won from the social-care record
    assert "socialcare" not in str(plain)
    assert plain["golden"]["given_name"] == "William" and plain["golden"]["postcode"] == "AB12 3DX"

    full = api.client.get(f"/api/v1/persons/{api.william}", headers=api.auth(api.social)).json()
    assert {r["source_system"] for r in full["source_records"]} == {"revenues", "housing", "hr", "socialcare"}
    assert "social_care_case" in {i["service"] for i in full["involvements"]}
    assert full["restricted_records_withheld"] is False
    assert full["golden"]["nhs_number"] == "9434765919"
    assert all(r["last_updated"] for r in full["source_records"])


def test_person_known_only_to_social_care_is_not_found_without_the_scope(api: Api) -> None:
    _is_problem(api.client.get(f"/api/v1/persons/{api.pryce}", headers=api.auth(api.plain)), 404)
    seen = api.client.get(f"/api/v1/persons/{api.pryce}", headers=api.auth(api.social))
    assert seen.status_code == 200 and seen.json()["golden"]["family_name"] == "Pryce"
    _is_problem(api.client.get("/api/v1/persons/JU99999999", headers=api.auth(api.social)), 404)


def test_bill_smyth_finds_william_smith(api: Api) -> None:
    response = api.client.post("/api/v1/persons/search", json=BILL, headers=api.auth(api.plain))
    assert response.status_code == 200
    candidates = response.json()["candidates"]
    assert candidates[0]["master_id"] == api.william
    reasons = {r["field"]: r["level"] for r in candidates[0]["reasons"]}
    assert reasons == {"given_name": "Nickname or variant of the same name",
                       "family_name": "Sounds the same (phonetic code)",
                       "dob": "Exact match on dob", "residence": "Same postcode"}
    assert candidates[0]["score"] > 15 and candidates[0]["match_probability"] > 0.9
    assert all(c["score"] < candidates[0]["score"] for c in candidates[1:])


def test_search_tries_the_transposed_date_and_ranks_twins_apart(api: Api) -> None:
    swapped = api.client.post("/api/v1/persons/search", headers=api.auth(api.plain),
                              json={"family_name": "Smith", "date_of_birth": "1961-03-04"}).json()["candidates"]
    assert swapped[0]["master_id"] == api.william
    assert {r["field"]: r["level"] for r in swapped[0]["reasons"]}["dob"] == "Day and month transposed"
    twins = api.client.post("/api/v1/persons/search", headers=api.auth(api.plain),
                            json={"given_name": "Zoe", "family_name": "Brown", "date_of_birth": "01/02/1990"}).json()
    first, second = twins["candidates"][:2]
    assert first["score"] > second["score"]  # Zoe above her twin Amy
    zoe = api.client.get(f"/api/v1/persons/{first['master_id']}", headers=api.auth(api.plain)).json()
    assert zoe["golden"]["given_name"] == "Zoe"


def test_search_respects_social_care_scope(api: Api) -> None:
    query = {"given_name": "Gwenllian", "family_name": "Pryce", "date_of_birth": "1938-05-17"}
    hidden = api.client.post("/api/v1/persons/search", json=query, headers=api.auth(api.plain)).json()
    assert hidden["candidates"] == []
    shown = api.client.post("/api/v1/persons/search", json=query, headers=api.auth(api.social)).json()
    assert shown["candidates"][0]["master_id"] == api.pryce


def test_search_problems_name_fields_not_values(api: Api) -> None:
    few = _is_problem(api.client.post("/api/v1/persons/search", json={"family_name": "Smith"},
                                      headers=api.auth(api.plain)), 422)
    assert "Smith" not in str(few)
    bad_date = _is_problem(api.client.post("/api/v1/persons/search", headers=api.auth(api.plain),
                                           json={"family_name": "Smith", "date_of_birth": "31/31/1961"}), 422)
    assert "31/31/1961" not in str(bad_date) and "date_of_birth" in bad_date["detail"]
    extra = _is_problem(api.client.post("/api/v1/persons/search", headers=api.auth(api.plain),
                                        json={**BILL, "shoe_size": "Smyth-9"}), 422)
    assert "Smyth" not in str(extra) and extra["errors"][0]["location"] == ["body", "shoe_size"]


def test_by_source_resolves_keys_and_hides_social_care(api: Api) -> None:
    ok = api.client.get("/api/v1/persons/by-source/housing/HT000001", headers=api.auth(api.plain))
    assert ok.status_code == 200 and ok.json()["master_id"] == api.william
    _is_problem(api.client.get("/api/v1/persons/by-source/socialcare/SC0000001", headers=api.auth(api.plain)), 404)
    sc = api.client.get("/api/v1/persons/by-source/socialcare/SC0000001", headers=api.auth(api.social))
    assert sc.json()["master_id"] == api.william
    _is_problem(api.client.get("/api/v1/persons/by-source/housing/HT999999", headers=api.auth(api.plain)), 404)


def test_change_feed_pages_with_a_cursor_and_hides_social_care_links(api: Api) -> None:
    from joinedup.mci.store import PersonEvent, session_factory

    with session_factory()() as session:
        total = len(session.scalars(select(PersonEvent)).all())
    everything = api.client.get("/api/v1/changes?limit=1000", headers=api.auth(api.social)).json()
    assert len(everything["events"]) == total and everything["has_more"] is False
    plain = api.client.get("/api/v1/changes?limit=1000", headers=api.auth(api.plain)).json()
    assert len(plain["events"]) == total - 3  # the social-care records' "linked" events; Pryce's "created"
    assert api.pryce in {e["master_id"] for e in everything["events"]}
    assert api.pryce not in {m for e in plain["events"] for m in (e["master_id"], e["other_master_id"])}
    for master_id in {e["master_id"] for e in plain["events"]}:  # every ID in the feed can be looked up
        assert api.client.get(f"/api/v1/persons/{master_id}", headers=api.auth(api.plain)).status_code == 200
    seen, cursor, pages = [], None, 0
    while True:
        url = "/api/v1/changes?limit=3&since=2000-01-01T00:00:00Z" + (f"&cursor={cursor}" if cursor else "")
        page = api.client.get(url, headers=api.auth(api.social)).json()
        seen += [e["id"] for e in page["events"]]
        cursor, pages = page["next_cursor"], pages + 1
        if not page["has_more"]:
            break
    assert seen == [e["id"] for e in everything["events"]] and pages >= 2
    assert api.client.get(f"/api/v1/changes?cursor={cursor}", headers=api.auth(api.social)).json()["events"] == []
    future = api.client.get("/api/v1/changes?since=2999-01-01T00:00:00", headers=api.auth(api.social)).json()
    assert future["events"] == []
    _is_problem(api.client.get("/api/v1/changes?since=yesterday", headers=api.auth(api.plain)), 422)


def test_change_feed_hides_a_social_care_only_person_merged_into_another(api: Api) -> None:
    """Merging a social-care-only person into a visible one must not reveal, to a caller
    without socialcare:read, that the absorbed master ID ever existed."""
    from joinedup.mci.store import Person, PersonEvent, SourceRecord, session_factory

    with session_factory()() as session:
        session.get(Person, api.pryce).status = "merged"
        session.get(Person, api.pryce).merged_into = api.william
        for record in session.scalars(select(SourceRecord).where(SourceRecord.master_id == api.pryce)):
            record.master_id = api.william
        session.add(PersonEvent(master_id=api.william, kind="merged", other_master_id=api.pryce, run_id="t"))
        session.commit()
    names = lambda feed: {m for e in feed["events"] for m in (e["master_id"], e["other_master_id"])}  # noqa: E731
    plain = api.client.get("/api/v1/changes?limit=1000", headers=api.auth(api.plain)).json()
    assert api.pryce not in names(plain) and api.william in names(plain)
    assert "merged" not in {e["kind"] for e in plain["events"]}
    full = api.client.get("/api/v1/changes?limit=1000", headers=api.auth(api.social)).json()
    assert api.pryce in names(full) and "merged" in {e["kind"] for e in full["events"]}


def test_a_social_care_person_later_known_elsewhere_appears_in_the_feed(api: Api) -> None:
    from joinedup.api.changes_feed import visible_master_ids
    from joinedup.mci.store import PersonEvent, SourceRecord, session_factory

    with session_factory()() as session:
        assert visible_master_ids(session, [api.pryce, api.william]) == {api.william}
        record = session.scalar(select(SourceRecord).where(SourceRecord.source_key == "500000009"))
        record.master_id = api.pryce  # a revenues account now linked to her
        session.add(PersonEvent(master_id=api.pryce, kind="linked", source_record_id=record.id, run_id="t"))
        session.commit()
    plain = api.client.get("/api/v1/changes?limit=1000", headers=api.auth(api.plain)).json()
    assert {"created", "linked"} <= {e["kind"] for e in plain["events"] if e["master_id"] == api.pryce}
    assert api.client.get(f"/api/v1/persons/{api.pryce}", headers=api.auth(api.plain)).status_code == 200


def test_merged_master_id_redirects_to_the_survivor(api: Api) -> None:
    from joinedup.api import refresh_search_keys
    from joinedup.mci.store import Person, SourceRecord, session_factory

    with session_factory()() as session:  # what a merge leaves behind (the matcher's job, here by hand)
        loser = session.scalar(select(SourceRecord).where(SourceRecord.source_key == "500000009")).master_id
        session.get(Person, loser).status = "merged"
        session.get(Person, loser).merged_into = api.william
        refresh_search_keys(session, [loser])
        session.commit()
    moved = api.client.get(f"/api/v1/persons/{loser}", headers=api.auth(api.plain), follow_redirects=False)
    assert moved.status_code == 308
    assert moved.headers["location"] == f"/api/v1/persons/{api.william}"
    assert moved.json()["survivor_master_id"] == api.william
    followed = api.client.get(f"/api/v1/persons/{loser}", headers=api.auth(api.plain))
    assert followed.status_code == 200 and followed.json()["master_id"] == api.william
    gone = api.client.post("/api/v1/persons/search", headers=api.auth(api.plain),
                           json={"family_name": "O'Brien", "date_of_birth": "1944-08-07"}).json()
    assert loser not in [c["master_id"] for c in gone["candidates"]]  # its keys went with the merge


def test_reads_are_audited_without_personal_values(api: Api) -> None:
    from joinedup.steward.models import AuditEntry
    from joinedup.mci.store import session_factory

    key_id = api.plain.split(".")[0]
    api.client.get(f"/api/v1/persons/{api.william}", headers=api.auth(api.plain))
    api.client.post("/api/v1/persons/search", json=BILL, headers=api.auth(api.plain))
    api.client.get("/api/v1/persons/by-source/revenues/500000001", headers=api.auth(api.plain))
    api.client.get("/api/v1/changes", headers=api.auth(api.plain))
    api.client.get("/api/v1/changes")  # refused: not a read, not audited
    with session_factory()() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(r.username, r.action, r.master_id) for r in rows] == [
        (f"api:{key_id}", "view_person", api.william), (f"api:{key_id}", "search", None),
        (f"api:{key_id}", "view_person", api.william), (f"api:{key_id}", "read_changes", None)]
    assert rows[1].detail["results"] >= 1
    text = " ".join(str((r.detail, r.master_id, r.username)) for r in rows)
    for value in ("Smith", "Smyth", "Bill", "1961", "AB12", "500000001", "HT000001"):
        assert value not in text


def test_rate_limit_answers_429_with_retry_after(mci_db: str) -> None:
    build_index()
    api = _make_api(rate_per_second=0.01, burst=2)
    for _ in range(2):
        assert api.client.get("/api/v1/changes", headers=api.auth(api.plain)).status_code == 200
    limited = _is_problem(api.client.get("/api/v1/changes", headers=api.auth(api.plain)), 429)
    assert limited["type"].endswith("rate-limited")
    assert int(api.client.get("/api/v1/changes", headers=api.auth(api.plain)).headers["retry-after"]) >= 1
    assert api.client.get("/api/v1/changes", headers=api.auth(api.social)).status_code == 200  # per key


def test_revoked_key_is_refused_and_secrets_are_stored_hashed(api: Api) -> None:
    from joinedup.api.keys import revoke_key
    from joinedup.api.models import ApiKey
    from joinedup.mci.store import session_factory

    key_id, secret = api.plain.split(".")
    with session_factory()() as session:
        stored = session.get(ApiKey, key_id)
        assert secret not in (stored.secret_hash, stored.salt) and len(stored.secret_hash) == 64
        revoke_key(session, key_id)
        session.commit()
    _is_problem(api.client.get("/api/v1/changes", headers=api.auth(api.plain)), 401)


def test_openapi_document_is_served(api: Api) -> None:
    doc = api.client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/persons/{master_id}", "/api/v1/persons/search", "/api/v1/persons/by-source/{system}/{key}",
            "/api/v1/changes"} <= set(doc["paths"])
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
