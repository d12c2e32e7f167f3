"""The housing system's SOAP service, simulated: tenants changed since a date, page by page.

It serves the checked-in WSDL (``schemas/sources/housing.wsdl``; document/literal wrapped,
SOAP 1.1 and 1.2 bindings at one address) at ``/housing/service?wsdl`` and answers
``GetTenantsChangedSince`` at ``/housing/service`` with a small lxml responder, because spyne
(the usual Python SOAP server) does not import on Python 3.12+ and a test server must not cap
the product's Python version.

Behaviour the adapters can rely on (and are tested against):
- Every request needs a WS-Security UsernameToken (PasswordText, or PasswordDigest); a missing
  or wrong one is a Client/Sender fault that says so.
- ``since`` is inclusive (LastModified >= since, to the second). LastModified values have no
  zone and are read as UTC; a ``since`` with a zone is converted to UTC.
- Records come ordered by (LastModified, TenantRef). ``nextPageToken`` is a keyset position
  (the last record's key, signed), so paging is stable even if records change between pages;
  it is absent on the last page. A token only works with the ``since`` it was issued for.
- ``pageSize`` must be 1..1000. Unknown operations, a bad dateTime, a bad token, XML that is
  not well-formed and any DOCTYPE / entity declaration are faults; entities are never expanded.
- ``FailurePlan`` (latency, fail after N SOAP requests by dropping the connection or with HTTP
  500, down) applies to SOAP POSTs; fetching the WSDL is never counted.
"""
from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

from joinedup.simulators.servers import FailurePlan, LoopbackService, SimulatorRequestHandler, sorted_snapshot

log = logging.getLogger(__name__)

HOUSING_FIELDS: tuple[str, ...] = (
    "TenantRef", "Title", "Forename", "Surname", "DateOfBirth", "NINumber", "PropertyUPRN",
    "AddressLine1", "AddressLine2", "Town", "PostCode", "Phone", "Email", "TenancyStart",
    "LastModified", "TenancyEnd", "TenancyEndReason", "DateOfDeath",
)
HOUSING_OPTIONAL: tuple[str, ...] = ("TenancyEnd", "TenancyEndReason", "DateOfDeath")
"""Added in layout v1.1 (tenancies end, tenants die): records from before may leave them out."""
SERVICE_PATH = "/housing/service"
TNS = "http://housing.council.example/tenants/v1"
OPERATION = "GetTenantsChangedSince"
MAX_PAGE_SIZE = 1000
MAX_REQUEST_BYTES = 1_000_000

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
PASSWORD_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"

DEFAULT_WSDL = Path(__file__).resolve().parents[2] / "schemas" / "sources" / "housing.wsdl"

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_NOT_XML_CHAR = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def safe_xml_parser() -> etree.XMLParser:
    """A parser that never expands entities, never loads a DTD, never touches the network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                           load_dtd=False, dtd_validation=False, remove_comments=True)


@dataclass
class HousingSoapOptions:
    """Configuration of the housing simulator. Unset credentials are random per instance."""

    username: str = field(default_factory=lambda: "housing-" + secrets.token_hex(3))
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    failures: FailurePlan = field(default_factory=FailurePlan)
    wsdl_path: Path = DEFAULT_WSDL


class SoapFault(Exception):
    """A fault to send back. ``sender`` = the client's fault (Client / Sender), else Server /
    Receiver. ``subcode`` is a (namespace, local name) used as the SOAP 1.2 Subcode."""

    def __init__(self, reason: str, *, sender: bool = True, subcode: tuple[str, str] | None = None,
                 code_override: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.sender = sender
        self.subcode = subcode
        self.code_override = code_override  # e.g. "MustUnderstand", "VersionMismatch"


def _to_utc_naive(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


class HousingSoapServer(LoopbackService):
    """The housing SOAP service on a free loopback port; ``with HousingSoapServer(records,
    options=...) as server: server.wsdl_url``."""

    name = "housing-soap"

    def __init__(self, records: Sequence[dict], *, options: HousingSoapOptions | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        self.options = options or HousingSoapOptions()
        super().__init__(failures=self.options.failures, host=host, port=port)
        self.handler_class = _HousingHandler
        self._snapshot = sorted_snapshot(records, "housing", HOUSING_FIELDS, "TenantRef", "LastModified", _to_utc_naive,
                                         HOUSING_OPTIONAL)
        self._token_key = secrets.token_bytes(16)
        self._wsdl_template = self.options.wsdl_path.read_bytes()
        self._wsdl_cache: tuple[int, bytes] | None = None
        self._wsdl_lock = threading.Lock()

    # -- data ---------------------------------------------------------------------------------
    def set_records(self, records: Sequence[dict]) -> None:
        """Replace the tenants served (the next night's state). Tokens issued before stay
        valid: they are positions in (LastModified, TenantRef) order, not offsets."""
        self._snapshot = sorted_snapshot(records, "housing", HOUSING_FIELDS, "TenantRef", "LastModified", _to_utc_naive,
                                         HOUSING_OPTIONAL)

    @property
    def record_count(self) -> int:
        return len(self._snapshot.records)

    # -- addresses ----------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"{self.base_url}{SERVICE_PATH}"

    @property
    def wsdl_url(self) -> str:
        return f"{self.endpoint_url}?wsdl"

    def wsdl_bytes(self) -> bytes:
        """The checked-in WSDL with both soap:address locations set to this server."""
        with self._wsdl_lock:
            if self._wsdl_cache and self._wsdl_cache[0] == self.port:
                return self._wsdl_cache[1]
            root = etree.fromstring(self._wsdl_template, safe_xml_parser())
            for address in root.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address",
                                     "{http://schemas.xmlsoap.org/wsdl/soap12/}address"):
                address.set("location", self.endpoint_url)
            body = etree.tostring(root, xml_declaration=True, encoding="utf-8")
            self._wsdl_cache = (self.port, body)
            return body

    # -- the operation ------------------------------------------------------------------------
    def get_tenants_changed_since(self, since: datetime, page_size: int,
                                  page_token: str | None) -> tuple[list[dict], str | None]:
        """One page of tenants and the token of the next page (None on the last page)."""
        snapshot = self._snapshot
        since = _to_utc_naive(since)
        start = bisect.bisect_left(snapshot.keys, (since, ""))
        if page_token:
            after = self._read_token(page_token, since)
            start = max(start, bisect.bisect_right(snapshot.keys, after))
        end = start + page_size
        page = snapshot.records[start:end]
        next_token = None
        if end < len(snapshot.records):
            next_token = self._issue_token(since, snapshot.keys[end - 1])
        return page, next_token

    def _issue_token(self, since: datetime, after: tuple[datetime, str]) -> str:
        payload = json.dumps([since.isoformat(), after[0].isoformat(), after[1]], separators=(",", ":")).encode()
        mac = hmac.new(self._token_key, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(mac + payload).decode("ascii").rstrip("=")

    def _read_token(self, token: str, since: datetime) -> tuple[datetime, str]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, payload = raw[:12], raw[12:]
            if not hmac.compare_digest(mac, hmac.new(self._token_key, payload, hashlib.sha256).digest()[:12]):
                raise ValueError("signature")
            token_since, after_modified, after_ref = json.loads(payload)
        except (ValueError, TypeError):
            raise SoapFault("pageToken is not one this service issued (or it was issued by an "
                            "earlier run of the server); start again without a pageToken") from None
        if token_since != since.isoformat():
            raise SoapFault("pageToken was issued for a different 'since'; send the same 'since' "
                            "on every page of one sync")
        return datetime.fromisoformat(after_modified), after_ref

    # -- authentication -----------------------------------------------------------------------
    def check_username_token(self, token: etree._Element | None) -> None:
        if token is None:
            raise SoapFault(
                "WS-Security UsernameToken missing: send a wsse:Security header with "
                "wsse:UsernameToken (Username and a PasswordText Password)",
                subcode=(WSSE, "InvalidSecurity"),
            )
        username = (token.findtext(f"{{{WSSE}}}Username") or "").strip()
        password_el = token.find(f"{{{WSSE}}}Password")
        if not username or password_el is None:
            raise SoapFault("WS-Security UsernameToken incomplete: it needs wsse:Username and wsse:Password",
                            subcode=(WSSE, "InvalidSecurity"))
        kind = password_el.get("Type", PASSWORD_TEXT)
        given = (password_el.text or "").strip()
        expected_user, expected_password = self.options.username, self.options.password
        if kind == PASSWORD_TEXT:
            ok_password = hmac.compare_digest(given.encode(), expected_password.encode())
        elif kind == PASSWORD_DIGEST:
            nonce_text = token.findtext(f"{{{WSSE}}}Nonce") or ""
            created = token.findtext(f"{{{WSU}}}Created") or ""
            try:
                nonce = base64.b64decode(nonce_text, validate=True)
            except ValueError:
                nonce = b""
            digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + expected_password.encode()).digest())
            ok_password = hmac.compare_digest(given.encode(), digest)
        else:
            raise SoapFault(f"WS-Security password Type {kind!r} is not supported; use PasswordText "
                            "or PasswordDigest", subcode=(WSSE, "UnsupportedSecurityToken"))
        ok_user = hmac.compare_digest(username.encode(), expected_user.encode())
        if not (ok_user and ok_password):
            log.info("housing-soap: authentication failed")
            raise SoapFault("WS-Security authentication failed: unknown username or wrong password",
                            subcode=(WSSE, "FailedAuthentication"))


# --------------------------------------------------------------------------------------------
# HTTP + SOAP envelope handling
# --------------------------------------------------------------------------------------------
class _HousingHandler(SimulatorRequestHandler):
    app: HousingSoapServer  # type: ignore[assignment]

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        if url.path == SERVICE_PATH and url.query.lower() in ("wsdl", "wsdl="):
            self.send_bytes(200, self.app.wsdl_bytes(), "text/xml; charset=utf-8")
        elif url.path == SERVICE_PATH:
            self.send_text(405, "POST SOAP requests here; the WSDL is at ?wsdl", {"Allow": "POST"})
        else:
            self.send_text(404, f"nothing at {url.path}; the service is at {SERVICE_PATH}")

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path != SERVICE_PATH:
            self.send_text(404, f"nothing at {urlsplit(self.path).path}; the service is at {SERVICE_PATH}")
            return
        body = self.read_body(MAX_REQUEST_BYTES)
        if body is None or self.injected_failure():
            return
        version = SOAP12_ENV if "application/soap+xml" in (self.headers.get("Content-Type") or "") else SOAP11_ENV
        try:
            envelope, version = _parse_envelope(body, version)
            _check_must_understand(envelope, version)
            header = envelope.find(f"{{{version}}}Header")
            token = None if header is None else header.find(f"{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
            self.app.check_username_token(token)
            request = _body_request(envelope, version)
            response = self._dispatch(request)
        except SoapFault as fault:
            self._send_envelope(_fault_envelope(fault, version), version,
                                status=400 if (fault.sender and version == SOAP12_ENV) else 500)
            return
        except Exception:  # a bug in the simulator: still answer like a SOAP server would
            log.exception("housing-soap: internal error")
            self._send_envelope(_fault_envelope(SoapFault("internal error in the housing service",
                                                          sender=False), version), version, status=500)
            return
        self._send_envelope(_envelope(response, version), version, status=200)

    def _dispatch(self, request: etree._Element) -> etree._Element:
        if request.tag != f"{{{TNS}}}{OPERATION}":
            name = etree.QName(request)
            raise SoapFault(f"unknown operation {{{name.namespace}}}{name.localname}; "
                            f"this service knows: {{{TNS}}}{OPERATION}")
        since = _parse_since(request.findtext(f"{{{TNS}}}since"))
        page_size = _parse_page_size(request.findtext(f"{{{TNS}}}pageSize"))
        page_token = (request.findtext(f"{{{TNS}}}pageToken") or "").strip() or None
        tenants, next_token = self.app.get_tenants_changed_since(since, page_size, page_token)
        return _response_element(tenants, next_token)

    def _send_envelope(self, envelope: etree._Element, version: str, status: int) -> None:
        content_type = ("application/soap+xml; charset=utf-8" if version == SOAP12_ENV
                        else "text/xml; charset=utf-8")
        self.send_bytes(status, etree.tostring(envelope, xml_declaration=True, encoding="utf-8"), content_type)


def _parse_envelope(body: bytes, guessed_version: str) -> tuple[etree._Element, str]:
    # A DOCTYPE has no business in SOAP (SOAP 1.1 section 3, SOAP 1.2 part 1 section 5):
    # refuse it outright rather than rely on the parser not expanding what it declares.
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise SoapFault("request refused: a SOAP message must not contain a DOCTYPE or entity declarations")
    try:
        root = etree.fromstring(body, safe_xml_parser())
    except etree.XMLSyntaxError as exc:
        raise SoapFault(f"request is not well-formed XML (line {exc.lineno}): {exc.msg}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise SoapFault("request refused: a SOAP message must not contain a DOCTYPE or entity declarations")
    name = etree.QName(root)
    if name.localname != "Envelope" or name.namespace not in (SOAP11_ENV, SOAP12_ENV):
        raise SoapFault(f"request is not a SOAP envelope (root element {{{name.namespace}}}{name.localname})",
                        code_override="VersionMismatch" if name.localname == "Envelope" else None)
    return root, name.namespace


def _check_must_understand(envelope: etree._Element, version: str) -> None:
    header = envelope.find(f"{{{version}}}Header")
    if header is None:
        return
    for block in header:
        if not isinstance(block.tag, str) or block.tag == f"{{{WSSE}}}Security":
            continue
        if block.get(f"{{{version}}}mustUnderstand") in ("1", "true"):
            raise SoapFault(f"header block {block.tag} is marked mustUnderstand and this service does not "
                            "understand it", code_override="MustUnderstand")


def _body_request(envelope: etree._Element, version: str) -> etree._Element:
    body = envelope.find(f"{{{version}}}Body")
    children = [] if body is None else [c for c in body if isinstance(c.tag, str)]
    if not children:
        raise SoapFault("the SOAP Body is empty; send a GetTenantsChangedSince element")
    return children[0]


def _parse_since(text: str | None) -> datetime:
    if text is None or not text.strip():
        raise SoapFault("'since' is required: an xsd:dateTime such as 2024-05-01T00:00:00Z")
    text = text.strip()
    try:
        if not _DATETIME.match(text):
            raise ValueError(text)
        return datetime.fromisoformat(text)
    except ValueError:
        raise SoapFault(f"'since' value {text[:40]!r} is not an xsd:dateTime such as 2024-05-01T00:00:00Z") from None


def _parse_page_size(text: str | None) -> int:
    try:
        size = int((text or "").strip())
    except ValueError:
        raise SoapFault(f"'pageSize' must be an integer from 1 to {MAX_PAGE_SIZE}; got {(text or '')[:20]!r}") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise SoapFault(f"'pageSize' must be from 1 to {MAX_PAGE_SIZE}; got {size}")
    return size


def _xml_text(value: str) -> str:
    return _NOT_XML_CHAR.sub("\ufffd", value)


def _response_element(tenants: list[dict], next_token: str | None) -> etree._Element:
    response = etree.Element(f"{{{TNS}}}{OPERATION}Response", nsmap={"h": TNS, "xsi": XSI})
    container = etree.SubElement(response, f"{{{TNS}}}Tenants")
    nil = f"{{{XSI}}}nil"
    for tenant in tenants:
        el = etree.SubElement(container, f"{{{TNS}}}Tenant")
        for name in HOUSING_FIELDS:
            child = etree.SubElement(el, f"{{{TNS}}}{name}")
            value = tenant.get(name)
            if value is None:
                child.set(nil, "true")
            else:
                try:
                    child.text = value
                except ValueError:  # control characters a legacy system let in
                    child.text = _xml_text(value)
    if next_token is not None:
        etree.SubElement(response, f"{{{TNS}}}nextPageToken").text = next_token
    return response


def _envelope(payload: etree._Element, version: str) -> etree._Element:
    envelope = etree.Element(f"{{{version}}}Envelope", nsmap={"soap": version})
    etree.SubElement(envelope, f"{{{version}}}Body").append(payload)
    return envelope


def _fault_envelope(fault: SoapFault, version: str) -> etree._Element:
    nsmap = {"soap": version}
    if fault.subcode:
        nsmap["wsse"] = fault.subcode[0]
    envelope = etree.Element(f"{{{version}}}Envelope", nsmap=nsmap)
    body = etree.SubElement(envelope, f"{{{version}}}Body")
    el = etree.SubElement(body, f"{{{version}}}Fault")
    if version == SOAP11_ENV:
        # faultcode/faultstring are unqualified in SOAP 1.1.
        code = fault.code_override or ("Client" if fault.sender else "Server")
        etree.SubElement(el, "faultcode").text = f"soap:{code}"
        etree.SubElement(el, "faultstring").text = fault.reason
    else:
        code_el = etree.SubElement(el, f"{{{version}}}Code")
        code = fault.code_override or ("Sender" if fault.sender else "Receiver")
        etree.SubElement(code_el, f"{{{version}}}Value").text = f"soap:{code}"
        if fault.subcode:
            sub = etree.SubElement(code_el, f"{{{version}}}Subcode")
            etree.SubElement(sub, f"{{{version}}}Value").text = f"wsse:{fault.subcode[1]}"
        reason = etree.SubElement(el, f"{{{version}}}Reason")
        text = etree.SubElement(reason, f"{{{version}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = fault.reason
    return envelope
