"""SOAP sources (kind ``soap``): a WSDL operation called page by page with zeep.

    kind: soap
    connection_id: housing_soap        # soap://user:password@host:port/housing/service?wsdl
    options:
      operation: GetTenantsChangedSince
      records_path: Tenants.Tenant     # where the records are in the (serialised) response
      page_size: 500
      paging: {size_param: pageSize, token_param: pageToken, next_token_field: nextPageToken}
      incremental: {param: since, field: LastModified, key_field: TenantRef}

Why these settings: the WSDL is fetched once and cached (``BoundedWsdlCache``, a zeep
``SqliteCache`` under var/cache that keeps at most ``WSDL_CACHE_MAX_ENTRIES`` documents and
``WSDL_CACHE_MAX_BYTES`` in all, so a file that every night and every test adds to cannot grow
for ever) so a night does not depend on the WSDL URL answering; ``Transport(timeout, operation_timeout)`` is
always set because zeep's default is to wait for ever; the parser forbids DTDs, entities and
external references (a hostile or broken server cannot make us read local files or blow up
memory); WS-Security UsernameToken credentials come from the connection, never the YAML.

Faults are sorted by who is to blame: Client/Sender faults (bad credentials, bad request) are
fatal for tonight, Server/Receiver faults and transport trouble are retriable. Messages carry
the fault code and the service's reason, never record content.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import requests
from pydantic import BaseModel, ConfigDict, Field

from joinedup.adapters.base import FatalSourceError, Health, Page, RetriableSourceError
from joinedup.adapters.config import SourceConfig
from joinedup.adapters.credentials import ConnectedAdapter
from joinedup.adapters.http import HttpSettings, make_session
from joinedup.adapters.rest import Incremental, Watermark, dig, parse_instant
from joinedup.paths import project_root, var_dir

log = logging.getLogger(__name__)

WSDL_CACHE_MAX_ENTRIES = 32
WSDL_CACHE_MAX_BYTES = 32 * 1024 * 1024

SENDER_CODES = {"client", "sender", "versionmismatch", "mustunderstand", "dataencodingunknown"}
RECEIVER_CODES = {"server", "receiver"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SoapPaging(Strict):
    size_param: str | None = Field("pageSize", description="Request element holding the page size (None: no paging).")
    token_param: str | None = Field("pageToken", description="Request element carrying the next page's token.")
    next_token_field: str | None = Field("nextPageToken", description="Response element holding the next page's token.")


class SoapOptions(Strict):
    wsdl: str | None = Field(None, description="WSDL: a URL, or a file under schemas/ (e.g. sources/housing.wsdl); default: the connection's URL + ?wsdl.")
    endpoint: str | None = Field(None, description="Service address overriding the WSDL's; default: the connection's URL when the WSDL is a file.")
    binding: str | None = Field(None, description="Binding QName '{ns}Name' to use with 'endpoint' (default: the WSDL's first service port's).")
    operation: str = Field(description="The WSDL operation that lists records.")
    params: dict[str, Any] = Field(default_factory=dict, description="Fixed request elements sent on every call.")
    records_path: str = Field(description="Dotted path to the list of records in the serialised response.")
    page_size: int = Field(100, ge=1, le=100_000)
    paging: SoapPaging = Field(default_factory=SoapPaging)
    incremental: Incremental | None = None
    initial_since: str = Field("1900-01-01T00:00:00Z", description="The 'since' of the first run, for services where it is required.")
    operation_timeout_seconds: float = Field(120, gt=0, le=3600, description="Longest wait for one operation's answer.")
    wsdl_cache_seconds: int = Field(86_400, ge=0, le=30 * 86_400, description="How long a fetched WSDL is reused (0: no cache).")
    use_wsse: bool = Field(True, description="Send a WS-Security UsernameToken with the connection's login and password.")
    max_pages: int = Field(100_000, ge=1)
    http: HttpSettings = Field(default_factory=HttpSettings)


def bounded_wsdl_cache(path: Path, timeout_seconds: int, *, max_entries: int = WSDL_CACHE_MAX_ENTRIES,
                       max_bytes: int = WSDL_CACHE_MAX_BYTES):  # noqa: ANN201 - a zeep cache
    """A zeep ``SqliteCache`` with a size bound (zeep's own keeps every URL it ever fetched,
    and loopback test servers get a new port, so a new URL, every run).

    After each ``add`` the cache drops expired documents, then the oldest ones beyond
    ``max_entries`` documents or ``max_bytes`` of content. A document read by ``get`` counts as
    used: it moves to the young end of the queue (least recently used goes first)."""
    from zeep.cache import SqliteCache

    if max_entries < 1 or max_bytes < 1:
        raise ValueError("the WSDL cache needs max_entries >= 1 and max_bytes >= 1")

    class BoundedWsdlCache(SqliteCache):
        def __init__(self) -> None:
            super().__init__(path=str(path), timeout=timeout_seconds)
            with self.db_connection() as conn:  # the "last used" order, beside zeep's table
                conn.execute("CREATE TABLE IF NOT EXISTS joinedup_lru (url text PRIMARY KEY, used real)")
                conn.commit()
            self.max_entries, self.max_bytes = max_entries, max_bytes

        def _touch(self, conn, url: str) -> None:  # noqa: ANN001
            conn.execute("INSERT INTO joinedup_lru (url, used) VALUES (?, ?) "
                         "ON CONFLICT(url) DO UPDATE SET used = excluded.used", (url, time.time()))

        def add(self, url: str, content: bytes) -> None:
            super().add(url, content)
            from zeep.cache import _is_expired

            with self.db_connection() as conn:
                self._touch(conn, url)
                rows = conn.execute(
                    "SELECT r.url, r.created, length(r.content) FROM request r LEFT JOIN joinedup_lru l "
                    "ON l.url = r.url ORDER BY coalesce(l.used, 0) DESC, r.rowid DESC").fetchall()
                kept, total, dropped = 0, 0, []
                for row_url, created, size in rows:
                    size = size or 0
                    expired = bool(self._timeout) and _is_expired(created, self._timeout)
                    fits = kept < self.max_entries and (kept == 0 or total + size <= self.max_bytes)
                    if fits and not expired:  # the newest document is kept whatever its size
                        kept, total = kept + 1, total + size
                    else:
                        dropped.append(row_url)
                conn.executemany("DELETE FROM request WHERE url = ?", [(u,) for u in dropped])
                conn.execute("DELETE FROM joinedup_lru WHERE url NOT IN (SELECT url FROM request)")
                conn.commit()
            if dropped:
                log.debug("WSDL cache: %d old document(s) dropped to stay within its bound", len(dropped))

        def get(self, url: str):  # noqa: ANN201
            found = super().get(url)
            if found is not None:
                with self.db_connection() as conn:
                    self._touch(conn, url)
                    conn.commit()
            return found

        def urls(self) -> list[str]:
            """The cached documents' URLs, most recently used first (for tests and support)."""
            with self.db_connection() as conn:
                return [r[0] for r in conn.execute(
                    "SELECT r.url FROM request r LEFT JOIN joinedup_lru l ON l.url = r.url "
                    "ORDER BY coalesce(l.used, 0) DESC, r.rowid DESC")]

    return BoundedWsdlCache()


def to_plain(value: Any) -> Any:
    """zeep objects -> dicts/lists of str or None (a record's values are kept as text)."""
    from zeep.helpers import serialize_object

    return _texts(serialize_object(value, target_cls=dict))


def _texts(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _texts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_texts(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def declares_entities(content: bytes | None) -> bool:
    """Whether an answer zeep could not parse declares a DTD or entities (checked on its head)."""
    head = (content or b"")[:65536].upper()
    return b"<!DOCTYPE" in head or b"<!ENTITY" in head


class AnswerShape:
    """A zeep plugin that looks at each raw answer before zeep deserialises it, so the adapter can
    tell an empty page from a malformed one: zeep reads text where the list of records belongs,
    or record elements it cannot place, as "no records". It counts the record elements (the last
    step of ``records_path``) and notes text directly inside their container."""

    def __init__(self, records_path: str) -> None:
        steps = [p for p in records_path.split(".") if p]
        self.record_tag = steps[-1] if steps else ""
        self.container_tag = steps[-2] if len(steps) > 1 else ""
        self.record_elements: int | None = None
        self.container_text = False

    def ingress(self, envelope, http_headers, operation):  # noqa: ANN001, ANN201 - zeep's plugin hook
        from lxml import etree

        self.record_elements, self.container_text = 0, False
        for element in envelope.iter():
            if not isinstance(element.tag, str):
                continue
            local = etree.QName(element).localname
            if local == self.record_tag:
                self.record_elements += 1
            elif local == self.container_tag and (element.text or "").strip():
                self.container_text = True
        return envelope, http_headers

    def egress(self, envelope, http_headers, operation, binding_options):  # noqa: ANN001, ANN201
        return envelope, http_headers

    def disagrees_with(self, records_read: int) -> str | None:
        """Why the page zeep gave cannot be the page that was sent, or None."""
        if self.record_elements is None or not self.record_tag:
            return None
        if self.container_text:
            return f"text stands where the list of {self.record_tag} records belongs"
        if self.record_elements != records_read:
            return (f"it holds {self.record_elements} {self.record_tag} element(s) but {records_read} "
                    "record(s) could be read")
        return None


def fault_error(source: str, fault: Exception) -> FatalSourceError | RetriableSourceError:
    """A zeep Fault -> Fatal (the caller's fault) or Retriable (the server's)."""
    code = str(getattr(fault, "code", "") or "")
    local = code.rsplit("}", 1)[-1].rsplit(":", 1)[-1]
    subcodes = [str(getattr(s, "localname", s)).rsplit(":", 1)[-1] for s in (getattr(fault, "subcodes", None) or [])]
    reason = str(getattr(fault, "message", "") or "no reason given")[:200]
    detail = f"source {source}: SOAP fault {local or 'unknown'}{'/' + '/'.join(subcodes) if subcodes else ''}: {reason}"
    if local.lower() in RECEIVER_CODES:
        return RetriableSourceError(detail + " (the service's own fault; try again later)")
    if "authentication" in reason.lower() or any("Authentication" in s or "Security" in s for s in subcodes):
        return FatalSourceError(detail + " - check the login and password of the connection")
    return FatalSourceError(detail + " (the request was refused; check the adapter's options)")


class SoapAdapter(ConnectedAdapter):
    """One WSDL operation, called with (since, page size, page token) until the last page."""

    Options: ClassVar[type[SoapOptions]] = SoapOptions

    def __init__(self, config: SourceConfig, options: SoapOptions, session: requests.Session | None = None) -> None:
        self.config, self.options = config, options
        # A listing operation is a read: repeating its POST is safe. HTTP 500 is how SOAP 1.1
        # carries every fault, so it is not retried blindly here; the fault decides.
        self.session = session or make_session(options.http, methods=("GET", "POST"), statuses=(429, 502, 503, 504))
        self._client = None
        self._service = None
        self.calls = 0


    # -- zeep set-up ----------------------------------------------------------------------------
    def wsdl_location(self) -> str:
        wsdl = self.options.wsdl
        if wsdl:
            if "://" in wsdl:
                return wsdl
            path = (project_root() / "schemas" / wsdl).resolve()
            if not path.is_relative_to((project_root() / "schemas").resolve()) or not path.is_file():
                raise FatalSourceError(f"source {self.name}: WSDL file {wsdl} not found under schemas/")
            return str(path)
        conn = self.connection()
        if conn is None:
            raise FatalSourceError(f"source {self.name}: give options.wsdl or a connection_id")
        return conn.http_url() + "?wsdl"

    def service(self):  # noqa: ANN201 - a zeep ServiceProxy
        if self._service is not None:
            return self._service
        from zeep import Client, Settings
        from zeep.transports import Transport

        opts = self.options
        cache = None
        if opts.wsdl_cache_seconds:
            folder = var_dir() / "cache"
            folder.mkdir(exist_ok=True)
            cache = bounded_wsdl_cache(folder / "zeep-wsdl.sqlite", opts.wsdl_cache_seconds)
        transport = Transport(cache=cache, session=self.session, timeout=opts.http.read_timeout_seconds,
                              operation_timeout=opts.operation_timeout_seconds)
        settings = Settings(strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True,
                            forbid_external=True)
        wsse = None
        conn = self.connection()
        if opts.use_wsse:
            if conn is None or not conn.login:
                raise FatalSourceError(f"source {self.name}: WS-Security needs a connection with a login "
                                       f"(connection_id {self.config.connection_id or 'is not set'})")
            from zeep.wsse.username import UsernameToken

            wsse = UsernameToken(conn.login, conn.password)
        location = self.wsdl_location()
        self._shape = AnswerShape(opts.records_path)
        try:
            client = Client(location, transport=transport, settings=settings, wsse=wsse, plugins=[self._shape])
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RetriableSourceError(f"source {self.name}: the WSDL could not be fetched ({type(exc).__name__}); "
                                       "try again later") from None
        except Exception as exc:  # noqa: BLE001 - zeep raises many kinds for a bad WSDL
            raise FatalSourceError(f"source {self.name}: the WSDL could not be read ({type(exc).__name__}: "
                                   f"{str(exc)[:200]})") from None
        endpoint = opts.endpoint or (conn.http_url() if conn and "://" not in location else None)
        if endpoint:
            binding = opts.binding or next(iter(next(iter(client.wsdl.services.values())).ports.values())).binding.name
            self._service = client.create_service(binding, endpoint)
        else:
            self._service = client.service
        self._client = client
        if not hasattr(self._service, opts.operation):
            known = sorted(client.wsdl.bindings[next(iter(client.wsdl.bindings))]._operations)
            raise FatalSourceError(f"source {self.name}: the WSDL has no operation {opts.operation!r}; "
                                   f"known: {', '.join(known)}")
        return self._service

    # -- one call ----------------------------------------------------------------------------------
    def call(self, **request: Any) -> dict[str, Any]:
        from zeep.exceptions import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden, Fault, TransportError
        from zeep.exceptions import Error as ZeepError

        operation = getattr(self.service(), self.options.operation)
        self.calls += 1
        try:
            response = operation(**request)
        except Fault as fault:
            raise fault_error(self.name, fault) from None
        except TransportError as exc:  # its message quotes the body: keep only the status
            if declares_entities(exc.content):  # libxml2 stopped an entity bomb: hostile, not flaky
                raise FatalSourceError(f"source {self.name}: the answer contained a DTD/entity declaration, "
                                       "which is refused (possible XXE / entity bomb)") from None
            raise RetriableSourceError(f"source {self.name}: {self.options.operation} answered HTTP "
                                       f"{exc.status_code} without a SOAP answer; try again later") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RetriableSourceError(
                f"source {self.name}: {self.options.operation} failed after {self.options.http.retries} retries "
                f"({type(exc).__name__}); the service is unreachable or dropped the connection - try again later"
            ) from None
        except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden) as exc:
            raise FatalSourceError(f"source {self.name}: the answer contained a {type(exc).__name__.replace('Forbidden', '')} "
                                   "declaration, which is refused (possible XXE / entity bomb)") from None
        except ZeepError as exc:
            raise FatalSourceError(f"source {self.name}: {self.options.operation} answer not understood "
                                   f"({type(exc).__name__})") from None
        plain = to_plain(response)
        if not isinstance(plain, dict):
            plain = {"_value": plain}
        return plain

    # -- the Adapter protocol -------------------------------------------------------------------------
    def extract(self, cursor: str | None) -> Iterator[Page]:
        opts, paging, inc = self.options, self.options.paging, self.options.incremental
        watermark = Watermark(cursor, with_key=bool(inc and inc.key_field))
        base: dict[str, Any] = dict(opts.params)
        if inc:
            since = parse_instant(watermark.since or opts.initial_since)
            if since is None:
                raise FatalSourceError(f"source {self.name}: cursor/initial_since is not an ISO datetime")
            base[inc.param] = since
        if paging.size_param:
            base[paging.size_param] = opts.page_size
        token: str | None = None
        seen: set[str] = set()
        number = 0
        while True:
            number += 1
            if number > opts.max_pages:
                raise FatalSourceError(f"source {self.name}: more than max_pages={opts.max_pages} pages; "
                                       "the service is probably looping")
            request = dict(base)
            if token and paging.token_param:
                request[paging.token_param] = token
            answer = self.call(**request)
            records = dig(answer, opts.records_path)
            if records is None:
                records = []  # an empty ArrayOf... serialises to None
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise FatalSourceError(f"source {self.name}: page {number} has no list of records at "
                                       f"records_path {opts.records_path!r}")
            problem = self._shape.disagrees_with(len(records))
            if problem:  # zeep read something other than what was sent: never pass it as "no changes"
                raise FatalSourceError(f"source {self.name}: page {number} is malformed: {problem}")
            fresh = watermark.keep_new(records, inc.field, inc.key_field) if inc else list(records)
            if fresh:
                yield Page(records=fresh, cursor=watermark.text, origin=f"{opts.operation} page {number}",
                           meta={"page": number})
            token = answer.get(paging.next_token_field) if paging.next_token_field else None
            if not token:
                break
            if token in seen:
                raise FatalSourceError(f"source {self.name}: the service sent the same page token twice; it is "
                                       "paging in a loop. Stopped rather than fetch forever.")
            seen.add(token)
        if watermark.skipped:
            log.info("source %s: %d record(s) at or before the cursor skipped", self.name, watermark.skipped)

    def acknowledge(self, page: Page) -> None:
        """Nothing to tell the service: the cursor is stored by the framework once landed."""

    def health(self) -> Health:
        try:
            self.service()
            request: dict[str, Any] = dict(self.options.params)
            if self.options.incremental:
                request[self.options.incremental.param] = parse_instant(self.options.initial_since)
            if self.options.paging.size_param:
                request[self.options.paging.size_param] = 1
            answer = self.call(**request)
        except (FatalSourceError, RetriableSourceError) as exc:
            return Health(False, str(exc))
        records = dig(answer, self.options.records_path) or []
        return Health(True, f"{self.options.operation} answered ({len(records)} record(s) on a 1-record page)")


