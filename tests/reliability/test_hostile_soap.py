"""A hostile or broken SOAP service: the real housing simulator behind a rewriting HTTP proxy on
loopback that alters each answer (entity tricks, unexpected types and shapes, a 10 MB value, a
NUL, HTML instead of XML). The SOAP adapter must either hand over the records exactly as sent
or stop the source with a FatalSourceError / RetriableSourceError whose message names the
source and shows no value; never a crash of another type, never a file read from disk."""
from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from joinedup.adapters.base import FatalSourceError, RetriableSourceError
from joinedup.adapters.config import SourceConfig
from joinedup.adapters.soap import SoapAdapter, SoapOptions
from joinedup.simulators.housing_soap import HOUSING_FIELDS, HousingSoapOptions, HousingSoapServer

USER, PASSWORD = "housing-sync", "s3cret-pass"
SECRET = "Gwenllïan"
FAST = {"retries": 0, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05, "jitter_seconds": 0.01,
        "connect_timeout_seconds": 2, "read_timeout_seconds": 10}
Rewrite = Callable[[bytes], bytes]


class RewritingProxy(http.server.ThreadingHTTPServer):
    """Forwards every request to the upstream server and passes each POST answer through
    ``rewrite`` (status and content type kept unless the rewrite says otherwise)."""

    def __init__(self, upstream: int, rewrite: Rewrite, content_type: str | None = None) -> None:
        self.upstream, self.rewrite, self.content_type = upstream, rewrite, content_type
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RewritingProxy

    def log_message(self, *args) -> None:  # noqa: ANN002 - quiet
        pass

    def _forward(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        answer = requests.request(method, f"http://127.0.0.1:{self.server.upstream}{self.path}", data=body,
                                  headers=headers, timeout=10)
        content = answer.content if method == "GET" else self.server.rewrite(answer.content)
        self.send_response(answer.status_code)
        self.send_header("Content-Type", self.server.content_type or answer.headers.get("content-type", "text/xml"))
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def do_GET(self) -> None:  # noqa: N802
        self._forward("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._forward("POST")


@contextmanager
def hostile_housing(rewrite: Rewrite, content_type: str | None = None) -> Iterator[int]:
    record = dict.fromkeys(HOUSING_FIELDS)
    record.update(TenantRef="HT000001", Forename=SECRET, Surname="O'Brien", DateOfBirth="1970-01-31",
                  NINumber="AB123456C", LastModified="2024-03-01T10:00:00")
    options = HousingSoapOptions(username=USER, password=PASSWORD)
    with HousingSoapServer([record], options=options) as upstream:
        proxy = RewritingProxy(upstream.port, rewrite, content_type)
        thread = threading.Thread(target=proxy.serve_forever, daemon=True)
        thread.start()
        try:
            yield proxy.server_address[1]
        finally:
            proxy.shutdown()
            proxy.server_close()


def adapter(monkeypatch: pytest.MonkeyPatch, port: int) -> SoapAdapter:
    monkeypatch.setenv("JOINEDUP_CONN_HOUSING_HOSTILE", f"soap://{USER}:{PASSWORD}@127.0.0.1:{port}/housing/service")
    raw = {"operation": "GetTenantsChangedSince", "records_path": "Tenants.Tenant", "page_size": 10,
           "wsdl": "sources/housing.wsdl", "wsdl_cache_seconds": 0,
           "paging": {"size_param": "pageSize", "token_param": "pageToken", "next_token_field": "nextPageToken"},
           "incremental": {"param": "since", "field": "LastModified", "key_field": "TenantRef"},
           "operation_timeout_seconds": 10, "http": FAST}
    config = SourceConfig(name="housing", kind="soap", mapping="housing.yaml", connection_id="housing_hostile",
                          options=raw)
    return SoapAdapter(config, SoapOptions.model_validate(raw))


def _sub(pattern: str, replacement: str, count: int = 1) -> Rewrite:
    def rewrite(body: bytes) -> bytes:
        text, n = re.subn(pattern, replacement, body.decode("utf-8"), count=count, flags=re.S)
        assert n, f"the simulator's answer no longer matches {pattern!r}: update this test"
        return text.encode("utf-8")
    return rewrite


def _doctype(decl: str, forename: str) -> Rewrite:
    def rewrite(body: bytes) -> bytes:
        text = re.sub(r"^<\?xml[^>]*\?>", "", body.decode("utf-8")).lstrip()
        root = re.match(r"<([\w:.-]+)", text).group(1)
        text = f'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE {root} [{decl}]>\n' + text
        return _sub(r"(<(?:\w+:)?Forename>)[^<]*", r"\g<1>" + forename)(text.encode("utf-8"))
    return rewrite


LAUGHS = '<!ENTITY l0 "lol">' + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
ATTACKS: dict[str, tuple[Rewrite, str | None]] = {
    "xxe": (_doctype('<!ENTITY xxe SYSTEM "file:///etc/passwd">', "&xxe;"), None),
    "billion_laughs": (_doctype(LAUGHS, "&l9;"), None),
    "parameter_entity": (_doctype('<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;', SECRET), None),
    "nested_element_for_a_string": (_sub(r"(<(?:\w+:)?Forename>)[^<]*", r"\g<1><b>" + SECRET + "</b>"), None),
    "unknown_element_in_a_record": (_sub(r"(<(?:\w+:)?Forename>)", r"<Shoe>" + SECRET + r"</Shoe>\g<1>"), None),
    "xsi_type_int_on_a_string": (_sub(r"<((?:\w+:)?Forename)>", r'<\g<1> xmlns:xsi="http://www.w3.org/2001/'
                                      r'XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" '
                                      r'xsi:type="xs:int">'), None),
    "text_where_records_belong": (_sub(r"<((?:\w+:)?Tenants)>.*</\1>", r"<\g<1>>" + SECRET + r"</\g<1>>"), None),
    "page_size_as_text": (_sub(r"(<(?:\w+:)?Tenants>)", r"<nextPageToken><x>1</x></nextPageToken>\g<1>"), None),
    "huge_value": (_sub(r"(<(?:\w+:)?Forename>)[^<]*", r"\g<1>" + "A" * (10 * 1024 * 1024 + 10)), None),
    "nul_reference": (_sub(r"(<(?:\w+:)?Forename>)[^<]*", r"\g<1>Gwen&#0;llian"), None),
    "html_not_xml": (lambda body: f"<html><body>{SECRET} error</body></html>".encode(), "text/html"),
    "empty_body": (lambda body: b"", None),
    "truncated": (lambda body: body[: len(body) // 2], None),
    "latin1_bytes_in_utf8": (lambda body: body.replace(SECRET.encode("utf-8"), SECRET.encode("latin-1")), None),
}


# Defects found here, in joinedup/adapters/soap.py (being rebuilt by its owner: reported, not fixed).
KNOWN_DEFECTS: dict[str, str] = {}  # attack -> why it still fails (xfail, strict); none today


@pytest.mark.parametrize("attack", [
    pytest.param(a, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[a])) if a in KNOWN_DEFECTS else a
    for a in sorted(ATTACKS)])
def test_a_hostile_answer_stops_the_source_cleanly_or_passes_values_intact(
        monkeypatch: pytest.MonkeyPatch, project: Path, attack: str) -> None:
    rewrite, content_type = ATTACKS[attack]
    with hostile_housing(rewrite, content_type) as port:
        soap = adapter(monkeypatch, port)
        try:
            pages = list(soap.extract(None))
        except (FatalSourceError, RetriableSourceError) as exc:
            message = str(exc)
            assert message.startswith("source housing:"), message
            assert SECRET not in message and "root:" not in message and "AAAAAAAAAA" not in message
            assert PASSWORD not in message and len(message) < 400
            if attack in ("xxe", "billion_laughs", "parameter_entity"):
                assert "refused" in message and isinstance(exc, FatalSourceError)
            if attack == "text_where_records_belong":  # not "no changes": the page is called malformed
                assert "malformed" in message and isinstance(exc, FatalSourceError)
            return
    # Passed: then the values are exactly what was sent, nothing read from disk, nothing expanded.
    records = [r for p in pages for r in p.records]
    assert [r["TenantRef"] for r in records] == ["HT000001"], attack
    values = " ".join(str(v) for v in records[0].values())
    assert "root:" not in values and "lollol" not in values
    assert attack not in ("xxe", "billion_laughs", "parameter_entity", "nul_reference", "huge_value"), \
        f"{attack}: expected a refusal, got records"


def test_the_proxy_passes_a_clean_answer_through(monkeypatch: pytest.MonkeyPatch, project: Path) -> None:
    """The harness itself: without a rewrite the records arrive as the simulator sent them."""
    with hostile_housing(lambda body: body) as port:
        [page] = list(adapter(monkeypatch, port).extract(None))
    assert page.records[0]["Forename"] == SECRET and page.records[0]["NINumber"] == "AB123456C"
