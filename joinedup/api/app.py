"""The citizen lookup API for the CRM front office: ``create_api()``, served under /api/v1.

Routes: GET /persons/{master_id}, POST /persons/search, GET /persons/by-source/{system}/{key},
GET /changes. Every route needs a bearer API key with ``person:read``; social-care records
need ``socialcare:read`` too. Only ``PUBLIC_PATHS`` (the OpenAPI document, its docs page and
/health, none of which holds personal data) answer without a key; a test enumerates the
routes and fails on any other route without the key check. Every response carries the
security headers of ``joinedup.api.headers`` (no caching, no sniffing, no framing). Every read is written to the audit log (key id, action, master
ID, counts; never values); each key has a token-bucket rate limit; every error is an RFC 9457
problem document.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path as PathParam, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from joinedup.api import problems
from joinedup.api.api_audit import audit_read
from joinedup.api.changes_feed import events_for_caller
from joinedup.api.headers import SecurityHeaders
from joinedup.api.keys import Caller, verify_token
from joinedup.api.models import ApiKey, PersonSearchKey
from joinedup.api.persons import person_view, survivor_of
from joinedup.api.problems import Problem
from joinedup.api.ratelimit import TokenBuckets, retry_after_header
from joinedup.api.search import QueryError, Weights, load_weights, search
from joinedup.api.search_keys import build_search_keys, index_is_empty
from joinedup.mci.schema import upgrade
from joinedup.mci.store import Person, PersonEvent, SourceRecord, get_engine

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
MASTER_ID = r"^[A-Z0-9]{1,20}$"
MAX_FEED = 1000
OPENAPI_PATH, DOCS_PATH, HEALTH_PATH = f"{PREFIX}/openapi.json", f"{PREFIX}/docs", f"{PREFIX}/health"
# the only routes that answer without an API key: none of them holds personal data
PUBLIC_PATHS = frozenset({OPENAPI_PATH, DOCS_PATH, HEALTH_PATH})

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key id>.<secret>`")


# --- request and response bodies --------------------------------------------------------------

class SearchRequest(BaseModel):
    """Any details the caller has; at least two of them, or one of NI number, e-mail, phone."""

    model_config = ConfigDict(extra="forbid")
    given_name: str | None = Field(None, max_length=100)
    family_name: str | None = Field(None, max_length=100)
    date_of_birth: str | None = Field(None, max_length=20, description="YYYY-MM-DD or DD/MM/YYYY")
    postcode: str | None = Field(None, max_length=10)
    ni_number: str | None = Field(None, max_length=13)
    phone: str | None = Field(None, max_length=20)
    email: str | None = Field(None, max_length=254)
    limit: int = Field(10, ge=1, le=50)


class Reason(BaseModel):
    field: str
    level: str
    weight: float


class CandidateOut(BaseModel):
    master_id: str
    score: float = Field(description="total match weight in bits (log2 of the likelihood ratio)")
    match_probability: float
    reasons: list[Reason]


class SearchResponse(BaseModel):
    candidates: list[CandidateOut]
    model_version: str | None


class SourceRecordOut(BaseModel):
    source_system: str
    source_key: str
    last_updated: str | None
    held_by_source: bool = Field(
        True, description="false when the source system no longer holds the record (gone from its full extract)")
    gone_from_source_at: str | None = Field(None, description="when JoinedUp first found the record gone from its source")


class InvolvementOut(BaseModel):
    service: str
    description: str
    source_system: str
    source_key: str
    current: bool = Field(True, description="false when the record behind it is gone from its source system")


class PersonOut(BaseModel):
    master_id: str
    status: str
    golden: dict[str, Any]
    golden_sources: dict[str, Any]
    source_records: list[SourceRecordOut]
    involvements: list[InvolvementOut]
    restricted_records_withheld: bool = Field(
        description="true when special-category records exist that this key may not see")
    updated_at: str


class SourceLookupOut(BaseModel):
    master_id: str
    source_system: str
    source_key: str


class EventOut(BaseModel):
    id: int
    master_id: str
    kind: str
    other_master_id: str | None
    at: str


class ChangesOut(BaseModel):
    events: list[EventOut]
    next_cursor: str | None = Field(description="pass as `cursor` to read on (also after the last page, "
                                    "to poll for new events); null only when no event was ever read")
    has_more: bool


class HealthOut(BaseModel):
    status: str


class ProblemOut(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "content": {problems.PROBLEM_JSON: {}}}
    for code in (401, 403, 404, 422, 429)
}


# --- the app ----------------------------------------------------------------------------------

def create_api(url: str | None = None, *, rate_per_second: float = 50.0, burst: int = 100,
               weights: Weights | None = None, build_index: bool = True) -> FastAPI:
    """The lookup API over the MCI at ``url`` (default: JOINEDUP_DB_URL or var/mci.sqlite).

    Creates its own tables if missing and, when the search-key index is empty, builds it.
    """
    from joinedup.steward import models as _steward_models  # noqa: F401 - the audit_log table

    engine = get_engine(url)
    upgrade(engine)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    if build_index:
        with sessions() as session:
            if index_is_empty(session):
                build_search_keys(session)
                session.commit()
    app = FastAPI(title="JoinedUp citizen lookup API", version="1.0.0",
                  openapi_url=OPENAPI_PATH, docs_url=DOCS_PATH, redoc_url=None,
                  swagger_ui_oauth2_redirect_url=None)
    app.state.sessions = sessions
    app.state.buckets = TokenBuckets(rate_per_second, burst)
    app.state.weights = weights or load_weights()
    problems.install(app)
    app.include_router(_router(), prefix=PREFIX)
    _with_security_headers(app)
    return app


def _with_security_headers(app: FastAPI) -> None:
    """Security headers outside every other layer, so that even the 500 answer of Starlette's
    ServerErrorMiddleware (outside ``add_middleware``'s reach) carries them."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: SecurityHeaders(build(), docs_path=DOCS_PATH)  # type: ignore[method-assign]


def _session(request: Request):  # noqa: ANN202 - generator dependency
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]


def _caller(request: Request, session: SessionDep,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    challenge = {"WWW-Authenticate": 'Bearer realm="joinedup"'}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "not-authenticated", "send `Authorization: Bearer <key id>.<secret>`; "
                      "an administrator creates keys with `joinedup api keys create`", headers=challenge)
    caller = verify_token(session, credentials.credentials)
    if caller is None:
        raise Problem(401, "invalid-key", "the API key is unknown, revoked or wrong; ask for a new one",
                      headers=challenge)
    wait = request.app.state.buckets.take(caller.key_id)
    if wait > 0:
        raise Problem(429, "rate-limited", "this key has sent too many requests; retry after the "
                      "number of seconds in Retry-After", headers={"Retry-After": retry_after_header(wait)})
    if "person:read" not in caller.scopes:
        raise Problem(403, "missing-scope", "this key lacks the person:read scope", required_scope="person:read")
    return caller


CallerDep = Annotated[Caller, Depends(_caller)]


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/health", response_model=HealthOut, summary="Liveness for load balancers (no key, no data)")
    def health() -> Any:
        return {"status": "ok"}

    @router.get("/persons/{master_id}", response_model=PersonOut, responses={**ERRORS, 308: {"model": ProblemOut}},
                summary="A person's golden record, linked source records and council services")
    def get_person(master_id: Annotated[str, PathParam(pattern=MASTER_ID, max_length=20)],
                   caller: CallerDep, session: SessionDep) -> Any:
        person = session.get(Person, master_id)
        if person is None:
            raise Problem(404, "person-not-found", f"no person {master_id} in the index")
        if person.status != "active":
            survivor = survivor_of(session, person)
            audit_read(session, caller, "view_person", master_id=master_id, detail={"redirected": True})
            session.commit()
            if survivor is None:
                raise Problem(404, "person-not-found", f"{master_id} was merged and has no active survivor")
            return JSONResponse(
                {"type": problems.TYPE_BASE + "person-merged", "title": "Person merged", "status": 308,
                 "detail": f"{master_id} was merged into {survivor}; use the survivor's master ID",
                 "instance": f"{PREFIX}/persons/{master_id}", "survivor_master_id": survivor},
                status_code=308, headers={"Location": f"{PREFIX}/persons/{survivor}"},
                media_type=problems.PROBLEM_JSON)
        view = person_view(session, person, socialcare=caller.socialcare)
        if not view["source_records"] and view["restricted_records_withheld"]:
            # known only to social care: for this caller the person does not exist
            raise Problem(404, "person-not-found", f"no person {master_id} in the index")
        audit_read(session, caller, "view_person", master_id=master_id,
                   detail={"records": len(view["source_records"])})
        session.commit()
        return view

    @router.post("/persons/search", response_model=SearchResponse, responses=ERRORS,
                 summary="Candidates for partial, misspelt details, ranked with score and reasons")
    def search_persons(body: SearchRequest, request: Request, caller: CallerDep, session: SessionDep) -> Any:
        query = body.model_dump(exclude={"limit"})
        given = [k for k, v in query.items() if v is not None and str(v).strip()]
        strong = {"ni_number", "phone", "email"} & set(given)
        if len(given) < 2 and not strong:
            raise Problem(422, "too-few-details", "give at least two details (e.g. family name and date of birth) "
                          "or one of NI number, phone, e-mail", fields_given=len(given))
        weights: Weights = request.app.state.weights
        try:
            found = search(session, query, weights, socialcare=caller.socialcare, limit=body.limit)
        except QueryError as exc:
            raise Problem(422, "invalid-request", str(exc)) from None
        audit_read(session, caller, "search", detail={"results": len(found)})
        session.commit()
        return {"candidates": [c.__dict__ for c in found], "model_version": weights.model_version}

    @router.get("/persons/by-source/{system}/{key}", response_model=SourceLookupOut, responses=ERRORS,
                summary="The master ID of a back-office record")
    def by_source(system: Annotated[str, PathParam(max_length=40)], key: Annotated[str, PathParam(max_length=200)],
                  caller: CallerDep, session: SessionDep) -> Any:
        row = session.execute(select(SourceRecord.master_id, SourceRecord.special_category)
                              .where(SourceRecord.source_system == system, SourceRecord.source_key == key)).first()
        # a restricted record is reported as unknown: its existence is itself special-category
        if row is None or row.master_id is None or (row.special_category and not caller.socialcare):
            raise Problem(404, "source-record-not-found",
                          "no linked record with that system and key (or it is not yet matched)")
        person = session.get(Person, row.master_id)
        master_id = row.master_id
        if person is not None and person.status != "active":
            master_id = survivor_of(session, person) or master_id
        audit_read(session, caller, "view_person", master_id=master_id, detail={"by_source": True})
        session.commit()
        return {"master_id": master_id, "source_system": system, "source_key": key}

    @router.get("/changes", response_model=ChangesOut, responses=ERRORS,
                summary="Master-ID events (created, linked, merged, split, golden changed), oldest first")
    def changes(caller: CallerDep, session: SessionDep,
                since: Annotated[datetime | None, Query(description="ISO 8601; events at or after")] = None,
                cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$", description="next_cursor of the previous page")] = None,
                limit: Annotated[int, Query(ge=1, le=MAX_FEED)] = 100) -> Any:
        query = select(PersonEvent).order_by(PersonEvent.id).limit(limit + 1)
        if cursor is not None:
            query = query.where(PersonEvent.id > int(cursor))
        if since is not None:
            if since.tzinfo is not None:
                since = since.astimezone(timezone.utc).replace(tzinfo=None)
            query = query.where(PersonEvent.at >= since)
        events = list(session.scalars(query))
        more = len(events) > limit
        events = events[:limit]
        out = [{"id": e.id, "master_id": e.master_id, "kind": e.kind, "other_master_id": e.other_master_id,
                "at": e.at.replace(tzinfo=timezone.utc).isoformat(timespec="seconds")}
               for e in events_for_caller(session, events, socialcare=caller.socialcare)]
        audit_read(session, caller, "read_changes", detail={"events": len(out)})
        session.commit()
        next_cursor = str(events[-1].id) if events else cursor
        return {"events": out, "next_cursor": next_cursor, "has_more": more}

    return router
