"""The HTTP transport every web adapter shares: a ``requests.Session`` with bounded retries.

Why one factory: retry, backoff and timeout rules are the difference between a night that
survives a flaky legacy server and one that hangs or hammers it. urllib3's ``Retry`` on an
``HTTPAdapter`` retries connection errors, 429 and 5xx answers with exponential backoff plus
jitter, honours ``Retry-After`` (capped, so a server cannot park the night for hours), and then
hands back the last answer, which the adapter turns into a ``RetriableSourceError``. The
session is a seam: a test passes the adapter a session pointed at a loopback server.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Collection

import requests
from pydantic import BaseModel, ConfigDict, Field
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES: tuple[int, ...] = (429, 500, 502, 503, 504)
USER_AGENT = "JoinedUp-adapter/1 (+council integration hub)"


class HttpSettings(BaseModel):
    """Transport settings shared by the web adapters (the YAML's ``options.http`` block)."""

    model_config = ConfigDict(extra="forbid")
    connect_timeout_seconds: float = Field(10, gt=0, le=300, description="Time allowed to open a connection.")
    read_timeout_seconds: float = Field(60, gt=0, le=3600, description="Time allowed between bytes of an answer.")
    retries: int = Field(5, ge=0, le=20, description="Retries of one request (connection errors, 429, 5xx) before the source is given up for this run.")
    backoff_seconds: float = Field(0.5, ge=0, le=60, description="First backoff; doubles on every further retry.")
    backoff_max_seconds: float = Field(60, ge=0, le=3600, description="Longest single backoff.")
    jitter_seconds: float = Field(0.5, ge=0, le=60, description="Random extra wait added to each backoff, so clients do not retry in step.")
    retry_after_max_seconds: int = Field(300, ge=0, le=3600, description="Longest wait a server's Retry-After may ask for.")
    rate_limit_per_second: float | None = Field(None, gt=0, le=10_000, description="Client-side cap on requests per second (None: no cap).")
    use_environment_proxies: bool = Field(False, description="Honour HTTPS_PROXY/NO_PROXY (and .netrc) from the environment; off so nothing is picked up by accident.")

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout_seconds, self.read_timeout_seconds)


class RateLimiter:
    """At most ``per_second`` calls per second, spaced evenly (thread-safe).

    Spacing rather than bursting keeps us under a server's per-second window without having
    to know how the server counts."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until the next call may go; return the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        delay = start - now
        if delay > 0:
            time.sleep(delay)
        return delay


def make_retry(settings: HttpSettings, *, methods: Collection[str] = ("GET", "HEAD"),
               statuses: Collection[int] = RETRY_STATUSES) -> Retry:
    """The urllib3 retry policy: bounded, exponential backoff with jitter, Retry-After capped.

    ``raise_on_status=False``: once retries are spent the last answer is returned, so the
    adapter can say which status the source kept sending."""
    return Retry(
        total=settings.retries,
        connect=settings.retries,
        read=settings.retries,
        status=settings.retries,
        other=0,
        allowed_methods=frozenset(m.upper() for m in methods),
        status_forcelist=frozenset(statuses),
        backoff_factor=settings.backoff_seconds,
        backoff_max=settings.backoff_max_seconds,
        backoff_jitter=settings.jitter_seconds,
        respect_retry_after_header=True,
        retry_after_max=settings.retry_after_max_seconds,
        raise_on_status=False,
        raise_on_redirect=True,
        redirect=3,
    )


def make_session(settings: HttpSettings | None = None, *, methods: Collection[str] = ("GET", "HEAD"),
                 statuses: Collection[int] = RETRY_STATUSES, pool_size: int = 4) -> requests.Session:
    """A Session whose http:// and https:// requests retry per ``settings``.

    ``methods`` are the HTTP methods safe to repeat for this source (a SOAP read operation is
    a POST that may be repeated; a write never is). Timeouts are not a Session setting in
    requests: pass ``settings.timeout`` on every call."""
    settings = settings or HttpSettings()
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=make_retry(settings, methods=methods, statuses=statuses),
                          pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.trust_env = settings.use_environment_proxies  # no proxy or .netrc credentials by accident
    return session
