"""REST/JSON sources (kind ``rest``): authenticated, paged, incremental, polite.

    kind: rest
    connection_id: revenues_rest          # base URL and secrets come from the connection
    options:
      path: customers                     # joined to the connection's URL (.../api/v1/customers)
      records_path: data                  # where the list of records is in each JSON answer
      page_size: 500
      paging: {style: cursor, cursor_param: cursor, next_cursor_path: next_cursor, size_param: limit}
      incremental: {param: modified_since, field: modified_at, key_field: customer_ref}
      auth: oauth2                        # or api_key, basic, none; default: the connection's `auth`
      http: {rate_limit_per_second: 5, retries: 5}

The incremental cursor is the largest ``field`` value seen (with ``key_field``, the pair
``timestamp|key``): the next run asks for records changed since then. Servers treat "since" as
inclusive, so with a ``key_field`` the records at or before the stored position are dropped
client-side (nothing fetched twice), and without one the records of that last second come
again (harmless: staging sees them unchanged).

Paginators remember every token/URL they have seen: an API that sends the same one twice
would page forever, so that is a ``FatalSourceError``, as is going past ``max_pages``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urljoin, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field

from joinedup.adapters.base import FatalSourceError, Health, Page, RetriableSourceError
from joinedup.adapters.config import SourceConfig
from joinedup.adapters.credentials import ConnectedAdapter, Connection
from joinedup.adapters.http import HttpSettings, RateLimiter, make_session

log = logging.getLogger(__name__)

CURSOR_KEY_SEPARATOR = "|"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- options --------------------------------------------------------------------------------
class CursorPaging(Strict):
    """The answer names the next page's token (``next_cursor_path``); absent/null = last page."""

    style: Literal["cursor"]
    cursor_param: str = "cursor"
    next_cursor_path: str = "next_cursor"
    size_param: str | None = "limit"


class PagePaging(Strict):
    """``?page=N&page_size=M``; a page shorter than page_size (or empty) is the last."""

    style: Literal["page"]
    page_param: str = "page"
    size_param: str = "page_size"
    first_page: int = Field(1, ge=0)


class OffsetPaging(Strict):
    """``?offset=N&limit=M``; a page shorter than the limit (or empty) is the last."""

    style: Literal["offset"]
    offset_param: str = "offset"
    size_param: str = "limit"


class LinkPaging(Strict):
    """RFC 8288 ``Link: <url>; rel="next"`` headers; no next link = last page."""

    style: Literal["link"]
    size_param: str | None = "page_size"


class NoPaging(Strict):
    """One request returns everything."""

    style: Literal["none"]


Paging = Annotated[CursorPaging | PagePaging | OffsetPaging | LinkPaging | NoPaging, Field(discriminator="style")]


class Incremental(Strict):
    param: str = Field(description="Query parameter that asks for records changed since the cursor, e.g. modified_since.")
    field: str = Field(description="Record field holding the last-change timestamp, e.g. modified_at.")
    key_field: str | None = Field(None, description="Record key the API orders by after the timestamp; makes the cursor exact.")
    initial: str | None = Field(None, description="Cursor for the very first run (None: everything).")


class RestOptions(Strict):
    base_url: str | None = Field(None, description="API root; default: the connection's URL.")
    path: str = Field(description="Listing path, relative to the API root (or absolute URL).")
    records_path: str = Field("data", description="Dotted path to the list of records in each answer ('' = the answer is the list).")
    params: dict[str, str] = Field(default_factory=dict, description="Fixed query parameters sent on every first request.")
    page_size: int = Field(100, ge=1, le=100_000)
    paging: Paging = Field(default_factory=lambda: CursorPaging(style="cursor"))
    incremental: Incremental | None = None
    auth: Literal["from_connection", "none", "api_key", "basic", "oauth2"] = "from_connection"
    api_key_header: str | None = Field(None, description="Header carrying the API key; default: the connection's `header` extra, else X-API-Key.")
    token_url: str | None = Field(None, description="OAuth2 token endpoint; default: the connection's `token_url` extra.")
    scope: str | None = None
    max_pages: int = Field(100_000, ge=1, description="A run that needs more pages than this is stopped as a probable loop.")
    http: HttpSettings = Field(default_factory=HttpSettings)


# -- small helpers ----------------------------------------------------------------------------
def dig(data: Any, dotted: str) -> Any:
    """``data['a']['b']`` for ``'a.b'``; '' is ``data`` itself; a missing step is None."""
    for part in [p for p in dotted.split(".") if p]:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def parse_instant(text: str) -> datetime | None:
    """An ISO timestamp as an aware UTC datetime (no zone = UTC); None when not one."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except (AttributeError, ValueError):
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


class Watermark:
    """The incremental cursor: the largest (timestamp, key) seen, as ``timestamp[|key]``."""

    def __init__(self, cursor: str | None, with_key: bool) -> None:
        self.with_key = with_key
        self.text = cursor
        self.since, self.key = split_cursor(cursor)
        self.position = (parse_instant(self.since), self.key or "") if self.since else None
        self.unparseable = 0
        self.skipped = 0

    def keep_new(self, records: list[dict[str, Any]], field: str, key_field: str | None) -> list[dict[str, Any]]:
        """The records after the stored position, advancing it; those at or before it (the
        source's "since" is inclusive) are counted in ``skipped``, not landed twice."""
        fresh = []
        for record in records:
            stamp = record.get(field)
            key = record.get(key_field) if key_field else None
            if self.seen_before(stamp, key):
                self.skipped += 1
                continue
            self.advance(stamp, key)
            fresh.append(record)
        return fresh

    def seen_before(self, stamp: str | None, key: str | None) -> bool:
        """True for a record at or before the stored position (already landed last time)."""
        if not self.with_key or self.position is None or self.position[0] is None or stamp is None:
            return False
        moment = parse_instant(stamp)
        return moment is not None and (moment, key or "") <= self.position

    def advance(self, stamp: str | None, key: str | None) -> None:
        moment = parse_instant(stamp) if stamp else None
        if moment is None:
            self.unparseable += 1
            return
        position = (moment, key or "")
        if self.position is None or self.position[0] is None or position > self.position:
            self.position = position
            self.since, self.key = stamp, key
            self.text = f"{stamp}{CURSOR_KEY_SEPARATOR}{key}" if self.with_key and key else stamp


def split_cursor(cursor: str | None) -> tuple[str | None, str | None]:
    if not cursor:
        return None, None
    stamp, sep, key = cursor.partition(CURSOR_KEY_SEPARATOR)
    return stamp, (key if sep else None)


def parse_link_next(header: str | None) -> str | None:
    """The ``rel="next"`` target of an RFC 8288 Link header (requests' parser)."""
    if not header:
        return None
    for link in requests.utils.parse_header_links(header):
        if "next" in (link.get("rel") or "").split():
            return link.get("url")
    return None


# -- auth ------------------------------------------------------------------------------------
class OAuth2ClientCredentials:
    """A bearer token from the client-credentials grant, fetched when first needed, refreshed
    shortly before it expires and whenever the API answers 401 (``invalidate``)."""

    SKEW_SECONDS = 30

    def __init__(self, session: requests.Session, token_url: str, conn: Connection, scope: str | None,
                 timeout: tuple[float, float], source: str) -> None:
        self.session, self.token_url, self.conn, self.scope = session, token_url, conn, scope
        self.timeout, self.source = timeout, source
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.fetched = 0

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def header(self) -> dict[str, str]:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._fetch()
            return {"Authorization": f"Bearer {self._token}"}

    def _fetch(self) -> None:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        where = f"source {self.source}: token endpoint {urlsplit(self.token_url).path}"
        try:
            response = self.session.post(self.token_url, data=form, auth=(self.conn.login, self.conn.password),
                                         timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RetriableSourceError(f"{where} could not be reached ({type(exc).__name__})") from None
        if response.status_code in (400, 401, 403):
            raise FatalSourceError(
                f"{where} refused the client credentials of connection {self.conn.conn_id} "
                f"(HTTP {response.status_code} {_error_code(response)}); check the client id and secret in "
                f"the connection {self.conn.conn_id}")
        if response.status_code != 200:
            raise RetriableSourceError(f"{where} answered HTTP {response.status_code}; try again later")
        try:
            body = response.json()
            token = body["access_token"]
            ttl = float(body.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise FatalSourceError(f"{where} did not answer an OAuth2 token (no access_token in JSON)") from None
        self._token = token
        self._expires = time.monotonic() + max(1.0, ttl - min(self.SKEW_SECONDS, ttl / 2))
        self.fetched += 1


def _error_code(response: requests.Response) -> str:
    """The API's short error code, if it sent one (never the whole body: it may echo data)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    code = body.get("error") if isinstance(body, dict) else None
    return str(code)[:60] if isinstance(code, str) else ""


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        text = body.get("error_description") or body.get("message") or body.get("error") or ""
        return str(text)[:200]
    return ""


# -- the adapter -------------------------------------------------------------------------------
class RestAdapter(ConnectedAdapter):
    """A paged JSON listing behind one of the usual auth schemes."""

    Options: ClassVar[type[RestOptions]] = RestOptions

    def __init__(self, config: SourceConfig, options: RestOptions, session: requests.Session | None = None) -> None:
        self.config, self.options = config, options
        self.session = session or make_session(options.http, methods=("GET", "HEAD", "POST"))
        self.limiter = RateLimiter(options.http.rate_limit_per_second)
        self._oauth: OAuth2ClientCredentials | None = None
        self.requests_sent = 0

    # -- where and how ----------------------------------------------------------------------------

    def endpoint(self) -> str:
        base = self.options.base_url
        if base is None:
            conn = self.connection()
            if conn is None:
                raise FatalSourceError(f"source {self.name}: give options.base_url or a connection_id")
            base = conn.http_url()
        return urljoin(base.rstrip("/") + "/", self.options.path.lstrip("/")) if "://" not in self.options.path else self.options.path

    def auth_scheme(self) -> str:
        if self.options.auth != "from_connection":
            return self.options.auth
        conn = self.connection()
        return str(conn.extra.get("auth", "none")) if conn else "none"

    def _auth_headers(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        scheme = self.auth_scheme()
        conn = self.connection()
        if scheme == "none":
            return {}, None
        if conn is None:
            raise FatalSourceError(f"source {self.name}: auth {scheme} needs a connection_id")
        if scheme == "api_key":
            header = self.options.api_key_header or conn.extra.get("header") or "X-API-Key"
            return {header: conn.password}, None
        if scheme == "basic":
            return {}, (conn.login, conn.password)
        if scheme == "oauth2":
            if self._oauth is None:
                token_url = self.options.token_url or conn.extra.get("token_url")
                if not token_url:
                    raise FatalSourceError(f"source {self.name}: OAuth2 needs options.token_url or a token_url "
                                           f"in connection {conn.conn_id}")
                self._oauth = OAuth2ClientCredentials(self.session, urljoin(conn.http_base() + "/", token_url),
                                                      conn, self.options.scope, self.options.http.timeout, self.name)
            return self._oauth.header(), None
        raise FatalSourceError(f"source {self.name}: unknown auth {scheme!r} (from connection "
                               f"{conn.conn_id}); known: none, api_key, basic, oauth2")

    # -- one request ------------------------------------------------------------------------------
    def get_json(self, url: str, params: dict[str, Any] | None) -> tuple[Any, requests.Response]:
        """GET and decode; HTTP trouble becomes Fatal/RetriableSourceError with a clear message."""
        path = urlsplit(url).path
        refreshed = False
        cut_bodies = 0
        while True:
            headers, basic = self._auth_headers()
            self.limiter.wait()
            self.requests_sent += 1
            try:
                response = self.session.get(url, params=params, headers=headers, auth=basic,
                                            timeout=self.options.http.timeout)
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
                # The connection broke while the body was arriving: urllib3's retries stop at the
                # headers, so the page is asked for again here, with the same backoff.
                cut_bodies += 1
                if cut_bodies > self.options.http.retries:
                    raise RetriableSourceError(
                        f"source {self.name}: GET {path} was cut off mid-answer {cut_bodies} times "
                        f"({type(exc).__name__}); try again later") from None
                http = self.options.http
                time.sleep(min(http.backoff_max_seconds, http.backoff_seconds * 2 ** (cut_bodies - 1)))
                continue
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise RetriableSourceError(
                    f"source {self.name}: GET {path} failed after {self.options.http.retries} retries "
                    f"({type(exc).__name__}); the server is unreachable or dropped the connection - try again later"
                ) from None
            except requests.TooManyRedirects:
                raise FatalSourceError(f"source {self.name}: GET {path} redirects in a loop") from None
            status = response.status_code
            if status in (401, 403) and self._oauth is not None and not refreshed:
                self._oauth.invalidate()  # expired or revoked: one fresh token, one more try
                refreshed = True
                continue
            if status in (401, 403):
                conn_id = self.config.connection_id or "(none)"
                raise FatalSourceError(
                    f"source {self.name}: GET {path} refused with HTTP {status} {_error_code(response)} using "
                    f"connection {conn_id}; check its credentials (JOINEDUP_CONN_{conn_id.upper()} or Airflow)")
            if status == 429 or status >= 500:
                raise RetriableSourceError(
                    f"source {self.name}: GET {path} still answered HTTP {status} after "
                    f"{self.options.http.retries} retries; try again later")
            if status != 200:
                raise FatalSourceError(f"source {self.name}: GET {path} answered HTTP {status}: "
                                       f"{_error_text(response) or 'no description'}")
            try:
                return response.json(), response
            except ValueError:
                raise FatalSourceError(f"source {self.name}: GET {path} did not answer JSON "
                                       f"(Content-Type {response.headers.get('Content-Type')})") from None

    # -- the Adapter protocol -----------------------------------------------------------------------
    def extract(self, cursor: str | None) -> Iterator[Page]:
        opts = self.options
        inc = opts.incremental
        watermark = Watermark(cursor or (inc.initial if inc else None), with_key=bool(inc and inc.key_field))
        params: dict[str, Any] = dict(opts.params)
        if inc and watermark.since:
            params[inc.param] = watermark.since
        paginator = _paginator(opts, self.name)
        url, query = paginator.first(self.endpoint(), params)
        number = 0
        while url is not None:
            number += 1
            if number > opts.max_pages:
                raise FatalSourceError(f"source {self.name}: more than max_pages={opts.max_pages} pages; "
                                       "the API is probably looping (raise max_pages if not)")
            body, response = self.get_json(url, query)
            records = dig(body, opts.records_path)
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise FatalSourceError(f"source {self.name}: page {number} has no list of records at "
                                       f"records_path {opts.records_path!r}; check options.records_path")
            fresh = watermark.keep_new(records, inc.field, inc.key_field) if inc else list(records)
            if fresh:
                yield Page(records=fresh, cursor=watermark.text, origin=f"GET {urlsplit(url).path} page {number}",
                           meta={"page": number})
            url, query = paginator.next(response, body, records, url, query)
        if watermark.skipped or watermark.unparseable:
            log.info("source %s: %d record(s) at or before the cursor skipped, %d without a usable %s",
                     self.name, watermark.skipped, watermark.unparseable, inc.field if inc else "cursor field")

    def acknowledge(self, page: Page) -> None:
        """Nothing to tell the API: the cursor is stored by the framework once landed."""

    def health(self) -> Health:
        try:
            paginator = _paginator(self.options, self.name)
            url, query = paginator.first(self.endpoint(), dict(self.options.params))
            body, _ = self.get_json(url, query)
        except (FatalSourceError, RetriableSourceError) as exc:
            return Health(False, str(exc))
        records = dig(body, self.options.records_path)
        if not isinstance(records, list):
            return Health(False, f"answer has no list at records_path {self.options.records_path!r}")
        return Health(True, f"GET {urlsplit(url).path} answered with {len(records)} record(s) on the first page "
                            f"(auth {self.auth_scheme()})")


# -- paginators --------------------------------------------------------------------------------------
class Paginator:
    """Works out the next request; remembers what it has seen so a loop fails loudly."""

    def __init__(self, options: RestOptions, source: str) -> None:
        self.options, self.source = options, source
        self._seen: set[str] = set()
        self._last_digest: str | None = None

    def remember(self, marker: str, what: str) -> None:
        if marker in self._seen:
            raise FatalSourceError(f"source {self.source}: the API sent the same {what} twice; it is "
                                   "paging in a loop. Stopped rather than fetch forever.")
        self._seen.add(marker)

    def same_page_again(self, records: list[dict]) -> None:
        """Page/offset APIs have no token: a non-empty page identical to the previous one is a loop."""
        if not records:
            return
        digest = hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).hexdigest()
        if digest == self._last_digest:
            raise FatalSourceError(f"source {self.source}: two consecutive pages were identical; the API "
                                   "ignores the paging parameters. Stopped rather than fetch forever.")
        self._last_digest = digest

    def first(self, url: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def next(self, response: requests.Response, body: Any, records: list[dict], url: str,
             params: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        raise NotImplementedError


class _CursorPaginator(Paginator):
    def first(self, url, params):
        paging: CursorPaging = self.options.paging  # type: ignore[assignment]
        if paging.size_param:
            params = {**params, paging.size_param: self.options.page_size}
        return url, params

    def next(self, response, body, records, url, params):
        paging: CursorPaging = self.options.paging  # type: ignore[assignment]
        token = dig(body, paging.next_cursor_path)
        if token in (None, ""):
            return None, None
        self.remember(str(token), "next-page cursor")
        return url, {**params, paging.cursor_param: token}


class _PagePaginator(Paginator):
    def first(self, url, params):
        paging: PagePaging = self.options.paging  # type: ignore[assignment]
        return url, {**params, paging.page_param: paging.first_page, paging.size_param: self.options.page_size}

    def next(self, response, body, records, url, params):
        paging: PagePaging = self.options.paging  # type: ignore[assignment]
        self.same_page_again(records)
        if len(records) < self.options.page_size:
            return None, None
        return url, {**params, paging.page_param: int(params[paging.page_param]) + 1}


class _OffsetPaginator(Paginator):
    def first(self, url, params):
        paging: OffsetPaging = self.options.paging  # type: ignore[assignment]
        return url, {**params, paging.offset_param: 0, paging.size_param: self.options.page_size}

    def next(self, response, body, records, url, params):
        paging: OffsetPaging = self.options.paging  # type: ignore[assignment]
        self.same_page_again(records)
        if len(records) < self.options.page_size:
            return None, None
        return url, {**params, paging.offset_param: int(params[paging.offset_param]) + len(records)}


class _LinkPaginator(Paginator):
    def first(self, url, params):
        paging: LinkPaging = self.options.paging  # type: ignore[assignment]
        if paging.size_param:
            params = {**params, paging.size_param: self.options.page_size}
        self.remember(requests.Request("GET", url, params=params).prepare().url or url, "page URL")
        return url, params

    def next(self, response, body, records, url, params):
        target = parse_link_next(response.headers.get("Link"))
        if not target:
            return None, None
        target = urljoin(response.url, target)
        self.remember(target, "next-page link")
        return target, None  # the link carries every parameter


class _NoPaginator(Paginator):
    def first(self, url, params):
        return url, params

    def next(self, response, body, records, url, params):
        return None, None


_PAGINATORS: dict[str, type[Paginator]] = {
    "cursor": _CursorPaginator, "page": _PagePaginator, "offset": _OffsetPaginator,
    "link": _LinkPaginator, "none": _NoPaginator,
}


def _paginator(options: RestOptions, source: str) -> Paginator:
    return _PAGINATORS[options.paging.style](options, source)
