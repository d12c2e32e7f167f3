"""The synthetic council's systems on loopback: the plumbing every simulated server shares, and
``start_council_servers``, which brings the whole council up (and down) in one ``with`` block.

Why plumbing of our own rather than a framework: the simulators must start and stop in
milliseconds inside a test, must be able to misbehave on purpose (latency, a connection dropped
after N requests, HTTP 500, a port that refuses connections), and must not pin the product's
Python version (spyne does not import on Python 3.12+). ``http.server.ThreadingHTTPServer`` in
a daemon thread does all of that with the standard library.

Connection URIs (what ``RunningCouncil.credentials`` hands out, one per connection id, to be
exported as ``JOINEDUP_CONN_<ID>``). They follow Airflow's connection-URI shape,
``conn-type://login:password@host:port/path?extra`` with login and password percent-encoded:

- ``HOUSING_SOAP``: ``soap://USER:PASSWORD@127.0.0.1:PORT/housing/service?wsdl``;
  the WSDL URL is the same with ``http`` for ``soap`` (``https`` for ``soaps``); login and
  password go into a WS-Security UsernameToken (PasswordText).
- ``REVENUES_REST``: ``rest://CLIENT_ID:CLIENT_SECRET@127.0.0.1:PORT/api/v1?auth=oauth2&token_url=/oauth/token``;
  base URL ``http://127.0.0.1:PORT/api/v1`` (``rests`` for https); OAuth2 client credentials.
- ``REVENUES_REST_APIKEY``: ``rest://:API_KEY@127.0.0.1:PORT/api/v1?auth=api_key&header=X-API-Key``;
  the same API authenticated with an API key header instead.
- ``SOCIALCARE_XML``: ``file:///DROP/DIR?pattern=socialcare_*.xml``.
- ``HR_FIXED_WIDTH``: ``file:///DROP/DIR?pattern=hr_*.dat``.
"""
from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO
from urllib.parse import quote

if TYPE_CHECKING:
    from joinedup.simulators.housing_soap import HousingSoapOptions, HousingSoapServer
    from joinedup.simulators.revenues_rest import RevenuesRestOptions, RevenuesRestServer

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
SYSTEMS = ("housing", "revenues", "socialcare", "hr")


# --------------------------------------------------------------------------------------------
# Failure injection shared by the HTTP simulators
# --------------------------------------------------------------------------------------------
@dataclass
class FailurePlan:
    """How a simulated server misbehaves, so adapters' retry and resume logic can be tested.

    latency_seconds: sleep before answering every request.
    fail_after_n_requests: answer the first N counted requests, then fail every later one
        (a server that dies mid-run). None = never.
    failure: how a failed request fails: "drop" closes the connection without a byte of
        answer (the client sees a connection error), "http500" answers HTTP 500 with a
        plain-text body.
    down: the port refuses connections (nothing listens on it) from the start.
    """

    latency_seconds: float = 0.0
    fail_after_n_requests: int | None = None
    failure: Literal["drop", "http500"] = "drop"
    down: bool = False

    def __post_init__(self) -> None:
        if self.failure not in ("drop", "http500"):
            raise ValueError(f"FailurePlan.failure must be 'drop' or 'http500', not {self.failure!r}")
        if self.latency_seconds < 0:
            raise ValueError("FailurePlan.latency_seconds must be >= 0")
        if self.fail_after_n_requests is not None and self.fail_after_n_requests < 0:
            raise ValueError("FailurePlan.fail_after_n_requests must be >= 0 or None")


class _TrackingHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that remembers its open connections, so that stopping the
    server also cuts keep-alive connections (otherwise a pooled client connection would keep
    being served by a lingering handler thread after the 'server' went down)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: LoopbackService):
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address):  # type: ignore[override]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[override]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        """A client that hung up (timed out, was cut) is normal here; anything else is a bug."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("%s: client connection ended early (%s)", self.app.name, type(error).__name__)
            return
        log.exception("%s: error while handling a request", self.app.name)

    def cut_all_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()


class SimulatorRequestHandler(BaseHTTPRequestHandler):
    """Base request handler: HTTP/1.1 keep-alive, quiet logs (no request lines with query
    strings that may carry identifiers), and the failure injection of ``FailurePlan``."""

    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection frees its thread after this many seconds
    server: _TrackingHTTPServer

    @property
    def app(self) -> LoopbackService:
        return self.server.app

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.app.name, format % args)

    def read_body(self, limit: int) -> bytes | None:
        """The request body, or None after answering 413 when it is larger than ``limit``."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            self.send_text(413, f"request body of {length} bytes is over the {limit}-byte limit")
            return None
        return self.rfile.read(length) if length else b""

    def send_bytes(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_text(self, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_bytes(status, text.encode("utf-8"), "text/plain; charset=utf-8", headers)

    def injected_failure(self) -> bool:
        """Apply the service's FailurePlan to this request. True when the request has been
        consumed by a failure (the caller must then not answer it)."""
        plan = self.app.failures
        if plan.latency_seconds:
            time.sleep(plan.latency_seconds)
        served = self.app.count_request()
        if plan.fail_after_n_requests is None or served <= plan.fail_after_n_requests:
            return False
        if plan.failure == "http500":
            self.send_text(500, "Internal Server Error (simulated failure)", {"Connection": "close"})
            self.close_connection = True
            return True
        # "drop": close without answering; the client sees the connection go away.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        return True


class LoopbackService:
    """One simulated server: a handler class served on a free loopback port in a daemon
    thread. Start with ``start()`` or ``with``; ``stop()`` is idempotent and fast.

    ``go_down()`` makes the port refuse connections (the port stays reserved by a bound,
    non-listening socket so nobody else takes it) and ``come_up()`` serves it again.
    """

    handler_class: type[SimulatorRequestHandler] = SimulatorRequestHandler
    name = "simulator"

    def __init__(self, *, failures: FailurePlan | None = None, host: str = LOOPBACK, port: int = 0):
        self.failures = failures or FailurePlan()
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._httpd: _TrackingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._placeholder: socket.socket | None = None
        self._count_lock = threading.Lock()
        self._requests_counted = 0
        self._lifecycle = threading.Lock()

    # -- counters -----------------------------------------------------------------------------
    def count_request(self) -> int:
        with self._count_lock:
            self._requests_counted += 1
            return self._requests_counted

    @property
    def requests_counted(self) -> int:
        """Requests that went through failure injection so far (see each server for which)."""
        return self._requests_counted

    def reset_request_count(self) -> None:
        with self._count_lock:
            self._requests_counted = 0

    # -- addresses ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.name} simulator has not been started; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._httpd is not None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> LoopbackService:
        with self._lifecycle:
            if self._port is not None:
                return self
            if self.failures.down:
                self._hold_port(self._requested_port)
            else:
                self._serve(self._requested_port)
        log.info("%s simulator started on %s:%d (up=%s)", self.name, self.host, self._port, self.is_up)
        return self

    def stop(self) -> None:
        with self._lifecycle:
            self._stop_serving()
            self._release_port()
            self._port = None

    def go_down(self) -> None:
        """Stop answering: connections to the port are refused until ``come_up()``."""
        with self._lifecycle:
            if self._httpd is None:
                return
            port = self.port
            self._stop_serving()
            self._hold_port(port)

    def come_up(self) -> None:
        with self._lifecycle:
            if self._httpd is not None:
                return
            port = self.port
            self._release_port()
            self._serve(port)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _serve(self, port: int) -> None:
        httpd = _TrackingHTTPServer((self.host, port), self.handler_class, self)
        self._port = httpd.server_address[1]
        thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"{self.name}-simulator-{self._port}", daemon=True,
        )
        thread.start()
        self._httpd, self._thread = httpd, thread

    def _stop_serving(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.cut_all_connections()
        if thread is not None:
            thread.join(timeout=5)

    def _hold_port(self, port: int) -> None:
        placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        placeholder.bind((self.host, port))  # bound, never listening: connects are refused
        self._placeholder = placeholder
        self._port = placeholder.getsockname()[1]

    def _release_port(self) -> None:
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None


# --------------------------------------------------------------------------------------------
# Records in a system's layout, and the keyset-ordered store the HTTP simulators page through
# --------------------------------------------------------------------------------------------
def check_layout(record: dict, index: int, fields: Sequence[str], system: str,
                 optional: Sequence[str] = ()) -> None:
    """A record must carry exactly its system's fields (named by position, never by value).

    ``optional`` fields were added to the layout later (schema evolution): a record written
    before they existed may leave them out, and is served/written with them empty."""
    if set(record) != set(fields) and not (set(fields) - set(optional) <= set(record) <= set(fields)):
        missing = [f for f in fields if f not in record and f not in optional]
        extra = [k for k in record if k not in fields]
        raise ValueError(f"{system} record #{index} does not match the {system} layout: missing {missing}, "
                         f"unexpected {extra}; expected exactly {list(fields)}")


@dataclass(frozen=True)
class Snapshot:
    """Records sorted once by (last modified, key); ``keys`` parallel ``records`` for bisecting."""

    keys: list[tuple[datetime, str]]
    records: list[dict]


def sorted_snapshot(records: Sequence[dict], system: str, fields: Sequence[str], key_field: str,
                    stamp_field: str, to_utc: Callable[[datetime], datetime],
                    optional: Sequence[str] = ()) -> Snapshot:
    rows: list[tuple[tuple[datetime, str], dict]] = []
    for index, record in enumerate(records):
        check_layout(record, index, fields, system, optional)
        if len(record) != len(fields):
            record = {name: record.get(name) for name in fields}
        ref = record[key_field]
        if not ref:
            raise ValueError(f"{system} record #{index} has no {key_field}; every record needs one")
        try:
            modified = to_utc(datetime.fromisoformat(record[stamp_field]))
        except (TypeError, ValueError):
            raise ValueError(f"{system} record {ref}: {stamp_field} is not an ISO datetime like 2024-05-01T09:30:00") from None
        rows.append(((modified, ref), record))
    rows.sort(key=lambda row: row[0])
    return Snapshot(keys=[k for k, _ in rows], records=[r for _, r in rows])


# --------------------------------------------------------------------------------------------
# The whole council
# --------------------------------------------------------------------------------------------
@dataclass
class CouncilOptions:
    """Options for ``start_council_servers``. Unset credentials are generated at random per
    run (they are exposed through ``RunningCouncil.credentials``)."""

    housing: HousingSoapOptions | None = None
    revenues: RevenuesRestOptions | None = None
    extract_date: date | None = None  # the file drops' extract date; default: today
    host: str = LOOPBACK
    hr_system_name: str = "COUNCIL PAYROLL"


@dataclass
class RunningCouncil:
    """The four systems of the synthetic council, up. Use as a context manager (or call
    ``stop()``): leaving the block stops both servers; the drop files stay."""

    housing: HousingSoapServer
    revenues: RevenuesRestServer
    drop_dir: Path
    socialcare_file: Path
    hr_file: Path
    extract_date: date
    hr_system_name: str = "COUNCIL PAYROLL"
    _stopped: bool = field(default=False, repr=False)

    @property
    def housing_wsdl_url(self) -> str:
        return self.housing.wsdl_url

    @property
    def housing_endpoint_url(self) -> str:
        return self.housing.endpoint_url

    @property
    def revenues_base_url(self) -> str:
        """The API root, e.g. http://127.0.0.1:PORT (paths /oauth/token and /api/v1/...)."""
        return self.revenues.base_url

    @property
    def credentials(self) -> dict[str, str]:
        """Connection URIs by connection id (see this module's docstring for their shape)."""
        h, r = self.housing, self.revenues
        ho, ro = h.options, r.options
        return {
            "HOUSING_SOAP": f"soap://{_q(ho.username)}:{_q(ho.password)}@{h.host}:{h.port}/housing/service?wsdl",
            "REVENUES_REST": (
                f"rest://{_q(ro.client_id)}:{_q(ro.client_secret)}@{r.host}:{r.port}"
                "/api/v1?auth=oauth2&token_url=/oauth/token"
            ),
            "REVENUES_REST_APIKEY": f"rest://:{_q(ro.api_key)}@{r.host}:{r.port}/api/v1?auth=api_key&header=X-API-Key",
            "SOCIALCARE_XML": f"{self.drop_dir.resolve().as_uri()}?pattern=socialcare_*.xml",
            "HR_FIXED_WIDTH": f"{self.drop_dir.resolve().as_uri()}?pattern=hr_*.dat",
        }

    def env(self) -> dict[str, str]:
        """``credentials`` as environment variables JOINEDUP_CONN_<ID>."""
        return {f"JOINEDUP_CONN_{conn_id}": uri for conn_id, uri in self.credentials.items()}

    def next_night(self, records_by_system: Mapping[str, list[dict]], extract_date: date) -> None:
        """Serve the next night's records and drop that night's extracts (new file names, as
        the date is in them); systems missing from the mapping keep what they had."""
        from joinedup.simulators.file_drops import write_hr_extract, write_socialcare_extract

        _check_system_names(records_by_system)
        if "housing" in records_by_system:
            self.housing.set_records(records_by_system["housing"])
        if "revenues" in records_by_system:
            self.revenues.set_records(records_by_system["revenues"])
        if "socialcare" in records_by_system:
            self.socialcare_file = write_socialcare_extract(records_by_system["socialcare"], self.drop_dir, extract_date)
        if "hr" in records_by_system:
            self.hr_file = write_hr_extract(
                records_by_system["hr"], self.drop_dir, extract_date, system_name=self.hr_system_name
            )
        self.extract_date = extract_date

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.housing.stop()
        self.revenues.stop()
        log.info("synthetic council stopped")

    def __enter__(self) -> RunningCouncil:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_council_servers(
    records_by_system: Mapping[str, list[dict]],
    drop_dir: Path,
    *,
    options: CouncilOptions | None = None,
) -> RunningCouncil:
    """Start housing (SOAP) and revenues (REST) on free loopback ports and drop the social
    care XML and HR fixed-width extracts into ``drop_dir``.

    ``records_by_system`` maps "housing", "revenues", "socialcare", "hr" to native records
    (see the preamble's layouts); a missing system is served empty. Returns a RunningCouncil,
    to be used as a context manager so that everything stops on exit.
    """
    from joinedup.simulators.file_drops import write_hr_extract, write_socialcare_extract
    from joinedup.simulators.housing_soap import HousingSoapOptions, HousingSoapServer
    from joinedup.simulators.revenues_rest import RevenuesRestOptions, RevenuesRestServer

    _check_system_names(records_by_system)
    options = options or CouncilOptions()
    extract_date = options.extract_date or date.today()
    drop_dir = Path(drop_dir)
    drop_dir.mkdir(parents=True, exist_ok=True)

    socialcare_file = write_socialcare_extract(records_by_system.get("socialcare", []), drop_dir, extract_date)
    hr_file = write_hr_extract(
        records_by_system.get("hr", []), drop_dir, extract_date, system_name=options.hr_system_name
    )
    housing = HousingSoapServer(records_by_system.get("housing", []),
                                options=options.housing or HousingSoapOptions(), host=options.host)
    revenues = RevenuesRestServer(records_by_system.get("revenues", []),
                                  options=options.revenues or RevenuesRestOptions(), host=options.host)
    housing.start()
    try:
        revenues.start()
    except BaseException:
        housing.stop()
        raise
    log.info("synthetic council up: housing port %d, revenues port %d, drops in %s",
             housing.port, revenues.port, drop_dir)
    return RunningCouncil(
        housing=housing, revenues=revenues, drop_dir=drop_dir, socialcare_file=socialcare_file,
        hr_file=hr_file, extract_date=extract_date, hr_system_name=options.hr_system_name,
    )


def serve_forever(
    records_by_system: Mapping[str, list[dict]],
    drop_dir: Path,
    *,
    options: CouncilOptions | None = None,
    out: TextIO | None = None,
    stop_event: threading.Event | None = None,
) -> None:
    """Run the synthetic council in the foreground for a person (``joinedup simulate serve``):
    print where everything is and the ``export`` lines for the JOINEDUP_CONN_* variables
    (synthetic, per-run credentials), then wait until Ctrl-C or ``stop_event`` is set."""
    out = out or sys.stdout
    stop_event = stop_event or threading.Event()
    with start_council_servers(records_by_system, drop_dir, options=options) as council:
        print("JoinedUp synthetic council is up (Ctrl-C to stop)", file=out)
        print(f"  housing SOAP WSDL : {council.housing_wsdl_url}", file=out)
        print(f"  revenues REST API : {council.revenues_base_url}/api/v1/customers", file=out)
        print(f"  social care drop  : {council.socialcare_file}", file=out)
        print(f"  HR drop           : {council.hr_file}", file=out)
        print("  # synthetic per-run credentials for the adapters:", file=out)
        for name, value in council.env().items():
            print(f"export {name}='{value}'", file=out)
        out.flush()
        try:
            while not stop_event.wait(0.5):
                pass
        except KeyboardInterrupt:
            print("stopping the synthetic council", file=out)


def _q(value: str) -> str:
    return quote(value, safe="")


def _check_system_names(records_by_system: Mapping[str, list[dict]]) -> None:
    unknown = sorted(set(records_by_system) - set(SYSTEMS))
    if unknown:
        raise ValueError(f"unknown system name(s) {unknown} in records_by_system; known: {list(SYSTEMS)}")
