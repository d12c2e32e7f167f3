"""The revenues & benefits (council tax) REST/JSON API, simulated.

Endpoints (all JSON; errors are ``{"error": code, "error_description": text}``):

- ``POST /oauth/token``: OAuth2 client credentials (``grant_type=client_credentials``; client
  id and secret in HTTP Basic auth or in the form). Answers ``{"access_token", "token_type":
  "Bearer", "expires_in"}``; tokens expire after ``token_ttl_seconds`` (short to test refresh).
- ``GET /api/v1/customers?modified_since=ISO&cursor=...&limit=N``: cursor paging,
  ``{"data": [...], "next_cursor": "..." | null}``; limit 1..1000, default 100.
- ``GET /api/v1/customers-paged?modified_since=ISO&page=P&page_size=N``: page paging,
  ``{"data": [...], "page", "page_size", "total_count"}`` and an RFC 8288 ``Link`` header with
  ``rel="next"`` while there are more pages.

Both listings authenticate with ``Authorization: Bearer <token>`` or ``X-API-Key: <key>``
(401 otherwise, with ``WWW-Authenticate``), order records by (modified_at, customer_ref), and
treat ``modified_since`` as inclusive (modified_at >= modified_since; no zone means UTC).
Cursors are signed keyset positions, stable when records change between pages, and valid only
with the ``modified_since`` they were issued for. Unknown query parameters are a 400 that lists
the known ones (a typo such as ``modifiedSince`` must not silently fetch everything).

Misbehaviour for tests, on ``/api/`` requests: a rate limit (more than N requests in any
one-second window is a 429 with ``Retry-After`` in whole seconds), injected 503s (every k-th
request and/or with a probability drawn from a seeded RNG, with ``Retry-After: 1``), and the
shared ``FailurePlan`` (latency, fail after N requests, down), which applies to every request.
"""
from __future__ import annotations

import base64
import binascii
import bisect
import collections
import hashlib
import hmac
import json
import logging
import math
import random
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlencode, urlsplit

from joinedup.simulators.servers import FailurePlan, LoopbackService, SimulatorRequestHandler, sorted_snapshot

log = logging.getLogger(__name__)

REVENUES_FIELDS: tuple[str, ...] = (
    "customer_ref", "title", "first_name", "last_name", "dob", "ni_no", "uprn", "addr_line1",
    "addr_line2", "addr_line3", "town", "postcode", "email", "phone_number", "account_opened",
    "modified_at", "account_closed", "closure_reason", "date_of_death",
)
REVENUES_OPTIONAL: tuple[str, ...] = ("account_closed", "closure_reason", "date_of_death")
"""Added in API v1.1 (accounts close on a move or a death): older records may leave them out."""
TOKEN_PATH = "/oauth/token"
CUSTOMERS_PATH = "/api/v1/customers"
CUSTOMERS_PAGED_PATH = "/api/v1/customers-paged"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_BODY_BYTES = 64_000
MAX_LIVE_TOKENS = 10_000


@dataclass
class RevenuesRestOptions:
    """Configuration of the revenues simulator. Unset credentials are random per instance.

    clock: seconds, monotonic; tests pass a fake one to expire tokens without sleeping.
    """

    client_id: str = field(default_factory=lambda: "revenues-" + secrets.token_hex(3))
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    token_ttl_seconds: float = 3600.0
    rate_limit_per_second: int | None = None
    error_503_every: int | None = None
    error_503_probability: float = 0.0
    seed: int = 0
    failures: FailurePlan = field(default_factory=FailurePlan)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if self.token_ttl_seconds <= 0:
            raise ValueError("token_ttl_seconds must be > 0")
        if self.rate_limit_per_second is not None and self.rate_limit_per_second < 1:
            raise ValueError("rate_limit_per_second must be >= 1 or None")
        if self.error_503_every is not None and self.error_503_every < 1:
            raise ValueError("error_503_every must be >= 1 or None")
        if not 0.0 <= self.error_503_probability <= 1.0:
            raise ValueError("error_503_probability must be between 0 and 1")


class ApiError(Exception):
    """An HTTP error answer: status, OAuth-style error code, human description, headers."""

    def __init__(self, status: int, error: str, description: str, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description
        self.headers = headers or {}


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


_EPOCH = datetime(1, 1, 1, tzinfo=timezone.utc)


class RevenuesRestServer(LoopbackService):
    """The revenues REST API on a free loopback port; ``with RevenuesRestServer(records,
    options=...) as server: server.base_url``."""

    name = "revenues-rest"

    def __init__(self, records: Sequence[dict], *, options: RevenuesRestOptions | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        self.options = options or RevenuesRestOptions()
        super().__init__(failures=self.options.failures, host=host, port=port)
        self.handler_class = _RevenuesHandler
        self._snapshot = sorted_snapshot(records, "revenues", REVENUES_FIELDS, "customer_ref", "modified_at", _as_utc,
                                         REVENUES_OPTIONAL)
        self._cursor_key = secrets.token_bytes(16)
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self._window: collections.deque[float] = collections.deque()
        self._rng = random.Random(self.options.seed)
        self._api_requests = 0
        self.injected_503s = 0
        self.rate_limited = 0

    def set_records(self, records: Sequence[dict]) -> None:
        """Replace the customers served (the next night's state)."""
        self._snapshot = sorted_snapshot(records, "revenues", REVENUES_FIELDS, "customer_ref", "modified_at", _as_utc,
                                         REVENUES_OPTIONAL)

    @property
    def record_count(self) -> int:
        return len(self._snapshot.records)

    @property
    def token_url(self) -> str:
        return f"{self.base_url}{TOKEN_PATH}"

    @property
    def customers_url(self) -> str:
        return f"{self.base_url}{CUSTOMERS_PATH}"

    @property
    def customers_paged_url(self) -> str:
        return f"{self.base_url}{CUSTOMERS_PAGED_PATH}"

    # -- OAuth2 -------------------------------------------------------------------------------
    def issue_token(self, client_id: str, client_secret: str, grant_type: str) -> dict:
        if grant_type != "client_credentials":
            raise ApiError(400, "unsupported_grant_type",
                           f"grant_type must be client_credentials, not {grant_type[:40]!r}")
        ok_id = hmac.compare_digest(client_id.encode(), self.options.client_id.encode())
        ok_secret = hmac.compare_digest(client_secret.encode(), self.options.client_secret.encode())
        if not (ok_id and ok_secret):
            raise ApiError(401, "invalid_client", "unknown client_id or wrong client_secret",
                           {"WWW-Authenticate": 'Basic realm="revenues"'})
        token = secrets.token_urlsafe(24)
        now = self.options.clock()
        with self._lock:
            if len(self._tokens) >= MAX_LIVE_TOKENS:  # bounded: forget expired tokens first
                self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
                while len(self._tokens) >= MAX_LIVE_TOKENS:
                    self._tokens.pop(next(iter(self._tokens)))
            self._tokens[token] = now + self.options.token_ttl_seconds
        return {"access_token": token, "token_type": "Bearer",
                "expires_in": max(1, round(self.options.token_ttl_seconds))}

    def expire_all_tokens(self) -> None:
        """Make every issued token expired now (for refresh tests with the real clock)."""
        with self._lock:
            self._tokens = {t: float("-inf") for t in self._tokens}

    def authenticate(self, authorization: str | None, api_key: str | None) -> None:
        if api_key is not None:
            if not hmac.compare_digest(api_key.encode(), self.options.api_key.encode()):
                raise ApiError(401, "invalid_api_key", "the X-API-Key is not valid for this API")
            return
        if not authorization:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <token> (from POST "
                           f"{TOKEN_PATH}) or an X-API-Key header", {"WWW-Authenticate": 'Bearer realm="revenues"'})
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer <token>'",
                           {"WWW-Authenticate": 'Bearer realm="revenues"'})
        with self._lock:
            expires = self._tokens.get(token.strip())
        if expires is None:
            raise ApiError(401, "invalid_token", "the access token is not one this API issued",
                           {"WWW-Authenticate": 'Bearer realm="revenues", error="invalid_token"'})
        if self.options.clock() >= expires:
            raise ApiError(401, "invalid_token", "the access token expired; fetch a new one",
                           {"WWW-Authenticate": 'Bearer realm="revenues", error="invalid_token", '
                                                'error_description="the access token expired"'})

    # -- misbehaviour -------------------------------------------------------------------------
    def throttle(self) -> None:
        """Rate limit, then injected 503s, for one /api/ request."""
        options = self.options
        with self._lock:
            if options.rate_limit_per_second is not None:
                now = options.clock()
                while self._window and self._window[0] <= now - 1.0:
                    self._window.popleft()
                if len(self._window) >= options.rate_limit_per_second:
                    self.rate_limited += 1
                    wait = max(1, math.ceil(self._window[0] + 1.0 - now))
                    raise ApiError(429, "rate_limited",
                                   f"more than {options.rate_limit_per_second} requests per second; "
                                   f"retry after {wait} s", {"Retry-After": str(wait)})
                self._window.append(now)
            self._api_requests += 1
            every = options.error_503_every
            unlucky = (every is not None and self._api_requests % every == 0) or (
                options.error_503_probability > 0 and self._rng.random() < options.error_503_probability)
            if unlucky:
                self.injected_503s += 1
                raise ApiError(503, "service_unavailable", "the revenues system is busy; retry shortly",
                               {"Retry-After": "1"})

    # -- listings -----------------------------------------------------------------------------
    def customers_after_cursor(self, modified_since: datetime | None, cursor: str | None,
                               limit: int) -> tuple[list[dict], str | None]:
        snapshot = self._snapshot
        since = modified_since or _EPOCH
        start = bisect.bisect_left(snapshot.keys, (since, ""))
        if cursor:
            start = max(start, bisect.bisect_right(snapshot.keys, self._read_cursor(cursor, since)))
        end = start + limit
        next_cursor = self._issue_cursor(since, snapshot.keys[end - 1]) if end < len(snapshot.keys) else None
        return snapshot.records[start:end], next_cursor

    def customers_page(self, modified_since: datetime | None, page: int, page_size: int) -> tuple[list[dict], int]:
        snapshot = self._snapshot
        start = bisect.bisect_left(snapshot.keys, (modified_since or _EPOCH, ""))
        total = len(snapshot.keys) - start
        offset = start + (page - 1) * page_size
        return snapshot.records[offset:offset + page_size], total

    def _issue_cursor(self, since: datetime, after: tuple[datetime, str]) -> str:
        payload = json.dumps([since.isoformat(), after[0].isoformat(), after[1]], separators=(",", ":")).encode()
        mac = hmac.new(self._cursor_key, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(mac + payload).decode("ascii").rstrip("=")

    def _read_cursor(self, cursor: str, since: datetime) -> tuple[datetime, str]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            mac, payload = raw[:12], raw[12:]
            if not hmac.compare_digest(mac, hmac.new(self._cursor_key, payload, hashlib.sha256).digest()[:12]):
                raise ValueError("signature")
            cursor_since, after_modified, after_ref = json.loads(payload)
        except (ValueError, TypeError, binascii.Error):
            raise ApiError(400, "invalid_cursor", "cursor is not one this API issued (or was issued by an "
                           "earlier run of the server); start again without a cursor") from None
        if cursor_since != since.isoformat():
            raise ApiError(400, "invalid_cursor", "cursor was issued for a different modified_since; send "
                           "the same modified_since on every page")
        return datetime.fromisoformat(after_modified), after_ref


class _RevenuesHandler(SimulatorRequestHandler):
    app: RevenuesRestServer  # type: ignore[assignment]

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        if self.injected_failure():
            return
        path = urlsplit(self.path).path
        body = self.read_body(MAX_BODY_BYTES)
        if body is None:
            return
        try:
            if path != TOKEN_PATH:
                raise ApiError(404, "not_found", f"no endpoint POST {path}; tokens are at POST {TOKEN_PATH}")
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
            client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
            basic = self.headers.get("Authorization") or ""
            if basic.lower().startswith("basic "):
                try:
                    decoded = base64.b64decode(basic[6:].strip(), validate=True).decode("utf-8")
                except (ValueError, UnicodeDecodeError):
                    raise ApiError(401, "invalid_client", "the Basic Authorization header is not base64 of "
                                   "client_id:client_secret") from None
                client_id, _, client_secret = decoded.partition(":")
            answer = self.app.issue_token(client_id, client_secret, form.get("grant_type", ""))
        except ApiError as error:
            self._send_error(error)
            return
        self._send_json(200, answer, {"Cache-Control": "no-store"})

    def do_GET(self) -> None:  # noqa: N802
        if self.injected_failure():
            return
        url = urlsplit(self.path)
        try:
            if url.path not in (CUSTOMERS_PATH, CUSTOMERS_PAGED_PATH):
                raise ApiError(404, "not_found", f"no endpoint GET {url.path}; known: {CUSTOMERS_PATH}, "
                               f"{CUSTOMERS_PAGED_PATH}")
            self.app.throttle()
            self.app.authenticate(self.headers.get("Authorization"), self.headers.get("X-API-Key"))
            query = _single_values(url.query)
            if url.path == CUSTOMERS_PATH:
                self._customers(query)
            else:
                self._customers_paged(query)
        except ApiError as error:
            self._send_error(error)

    def _customers(self, query: dict[str, str]) -> None:
        _only_known(query, ("modified_since", "cursor", "limit"))
        since = _parse_since(query.get("modified_since"))
        limit = _parse_int(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        data, next_cursor = self.app.customers_after_cursor(since, query.get("cursor") or None, limit)
        self._send_json(200, {"data": data, "next_cursor": next_cursor})

    def _customers_paged(self, query: dict[str, str]) -> None:
        _only_known(query, ("modified_since", "page", "page_size"))
        since = _parse_since(query.get("modified_since"))
        page = _parse_int(query, "page", 1, 1, 10**9)
        page_size = _parse_int(query, "page_size", DEFAULT_LIMIT, 1, MAX_LIMIT)
        data, total = self.app.customers_page(since, page, page_size)
        headers = {}
        if page * page_size < total:
            params = {"page": page + 1, "page_size": page_size}
            if query.get("modified_since"):
                params = {"modified_since": query["modified_since"], **params}
            headers["Link"] = f'<{self.app.customers_paged_url}?{urlencode(params)}>; rel="next"'
        self._send_json(200, {"data": data, "page": page, "page_size": page_size, "total_count": total}, headers)

    def _send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.send_bytes(status, body, "application/json; charset=utf-8", headers)

    def _send_error(self, error: ApiError) -> None:
        self._send_json(error.status, {"error": error.error, "error_description": error.description}, error.headers)


def _single_values(query: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, found in parse_qs(query, keep_blank_values=True).items():
        if len(found) > 1:
            raise ApiError(400, "invalid_parameter", f"query parameter {name!r} given {len(found)} times; give it once")
        values[name] = found[0]
    return values


def _only_known(query: dict[str, str], known: tuple[str, ...]) -> None:
    unknown = sorted(set(query) - set(known))
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown query parameter(s) {unknown}; known: {list(known)}")


def _parse_since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return _as_utc(datetime.fromisoformat(text.strip())).replace(microsecond=0)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"modified_since {text[:40]!r} is not an ISO 8601 datetime "
                       "such as 2024-05-01T00:00:00Z") from None


def _parse_int(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer from {low} to {high}; "
                       f"got {text[:20]!r}") from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be from {low} to {high}; got {value}")
    return value
