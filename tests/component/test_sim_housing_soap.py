"""The housing SOAP simulator, driven with zeep (as the adapter does) and raw requests (for the
requests zeep would never send)."""
from __future__ import annotations

import datetime as dt

import pytest
import requests
from lxml import etree
from zeep import Client
from zeep.exceptions import Fault, TransportError
from zeep.plugins import HistoryPlugin
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from joinedup.simulators.housing_soap import (
    HOUSING_FIELDS,
    SOAP11_ENV,
    SOAP12_ENV,
    HousingSoapOptions,
    HousingSoapServer,
)
from joinedup.simulators.servers import FailurePlan

USER, PASSWORD = "housing-sync", "correct horse"
EPOCH = dt.datetime(2000, 1, 1)


def tenant(i: int, modified: str) -> dict:
    record = dict.fromkeys(HOUSING_FIELDS)
    record.update(TenantRef=f"HT{i:06d}", Forename="Zoë", Surname="O’Connor-Ap Rhys",
                  DateOfBirth="1985-13-02", PostCode="CF10 1AA", LastModified=modified)
    return record


def many_tenants(n: int) -> list[dict]:
    # Several tenants share a LastModified, so ordering must fall back on TenantRef.
    return [tenant(i, f"2024-05-{1 + (i * 7) % 28:02d}T10:{i % 3:02d}:00") for i in range(n)]


def transport(**kw) -> Transport:
    return Transport(timeout=5, operation_timeout=kw.pop("operation_timeout", 5), **kw)


def zeep_client(server: HousingSoapServer, user=USER, password=PASSWORD, **kw) -> Client:
    wsse = UsernameToken(user, password, **kw) if user is not None else None
    return Client(server.wsdl_url, wsse=wsse, transport=transport())


def options(**kw) -> HousingSoapOptions:
    return HousingSoapOptions(username=USER, password=PASSWORD, **kw)


@pytest.fixture
def server():
    with HousingSoapServer(many_tenants(57), options=options()) as running:
        yield running


def fetch_all(service, since, page_size: int) -> tuple[list[str], int]:
    refs, pages, token = [], 0, None
    while True:
        reply = service.GetTenantsChangedSince(since=since, pageToken=token, pageSize=page_size)
        pages += 1
        refs += [t.TenantRef for t in (reply.Tenants.Tenant if reply.Tenants else [])]
        token = reply.nextPageToken
        if token is None:
            return refs, pages
        assert pages < 100, "paging did not end"


def expected_order(records: list[dict], since: str = "") -> list[str]:
    chosen = [r for r in records if r["LastModified"] >= since]
    return [r["TenantRef"] for r in sorted(chosen, key=lambda r: (r["LastModified"], r["TenantRef"]))]


def test_served_wsdl_has_both_bindings_pointing_at_this_server(server):
    client = zeep_client(server)
    ports = client.wsdl.services["HousingService"].ports
    assert set(ports) == {"HousingServiceSoap11", "HousingServiceSoap12"}
    assert {p.binding_options["address"] for p in ports.values()} == {server.endpoint_url}
    assert type(ports["HousingServiceSoap12"].binding).__name__ == "Soap12Binding"


def test_pages_to_the_end_and_gets_every_record_once_in_order(server):
    records = many_tenants(57)
    refs, pages = fetch_all(zeep_client(server).service, EPOCH, page_size=10)
    assert refs == expected_order(records)
    assert len(set(refs)) == 57
    assert pages == 6


def test_a_page_carries_the_native_fields_as_sent(server):
    reply = zeep_client(server).service.GetTenantsChangedSince(since=EPOCH, pageSize=1)
    first = reply.Tenants.Tenant[0]
    original = next(r for r in many_tenants(57) if r["TenantRef"] == first.TenantRef)
    assert {f: first[f] for f in HOUSING_FIELDS} == original  # None stays None, é and ’ survive


def test_last_page_exactly_full_has_no_next_token():
    with HousingSoapServer(many_tenants(20), options=options()) as server:
        refs, pages = fetch_all(zeep_client(server).service, EPOCH, page_size=10)
    assert len(refs) == 20 and pages == 2


def test_since_is_inclusive_and_filters(server):
    records = many_tenants(57)
    since = "2024-05-15T10:01:00"
    refs, _ = fetch_all(zeep_client(server).service, dt.datetime.fromisoformat(since), page_size=7)
    assert refs == expected_order(records, since)
    assert 0 < len(refs) < 57
    assert any(r["LastModified"] == since for r in records if r["TenantRef"] in refs)


def test_since_with_a_zone_is_read_in_utc(server):
    records = many_tenants(57)
    refs, _ = fetch_all(zeep_client(server).service, "2024-05-15T11:01:00+01:00", page_size=50)
    assert refs == expected_order(records, "2024-05-15T10:01:00")


def test_soap12_binding_works_and_really_speaks_soap12(server):
    history = HistoryPlugin()
    client = Client(server.wsdl_url, wsse=UsernameToken(USER, PASSWORD), transport=transport(), plugins=[history])
    service = client.bind("HousingService", "HousingServiceSoap12")
    refs, _ = fetch_all(service, EPOCH, page_size=25)
    assert refs == expected_order(many_tenants(57))
    assert history.last_sent["envelope"].tag == f"{{{SOAP12_ENV}}}Envelope"
    assert history.last_received["envelope"].tag == f"{{{SOAP12_ENV}}}Envelope"


def test_bad_password_is_a_client_fault(server):
    with pytest.raises(Fault) as caught:
        zeep_client(server, password="wrong").service.GetTenantsChangedSince(since=EPOCH, pageSize=10)
    assert caught.value.code == "soap:Client"
    assert "authentication failed" in caught.value.message


def test_bad_password_on_soap12_is_a_sender_fault(server):
    service = zeep_client(server, password="wrong").bind("HousingService", "HousingServiceSoap12")
    with pytest.raises(Fault) as caught:
        service.GetTenantsChangedSince(since=EPOCH, pageSize=10)
    assert caught.value.code == "soap:Sender"
    assert [q.localname for q in caught.value.subcodes] == ["FailedAuthentication"]


def test_missing_username_token_is_a_fault_that_says_so(server):
    with pytest.raises(Fault) as caught:
        zeep_client(server, user=None).service.GetTenantsChangedSince(since=EPOCH, pageSize=10)
    assert caught.value.code == "soap:Client"
    assert "UsernameToken missing" in caught.value.message


def test_password_digest_is_accepted_too(server):
    reply = zeep_client(server, use_digest=True).service.GetTenantsChangedSince(since=EPOCH, pageSize=5)
    assert len(reply.Tenants.Tenant) == 5


@pytest.mark.parametrize("page_size", [0, 1001, -5])
def test_page_size_out_of_range_is_a_fault(server, page_size):
    with pytest.raises(Fault) as caught:
        zeep_client(server).service.GetTenantsChangedSince(since=EPOCH, pageSize=page_size)
    assert caught.value.code == "soap:Client"
    assert "pageSize" in caught.value.message


def test_foreign_page_token_is_a_fault(server):
    service = zeep_client(server).service
    with pytest.raises(Fault, match="pageToken is not one this service issued"):
        service.GetTenantsChangedSince(since=EPOCH, pageToken="bm90LWEtdG9rZW4", pageSize=10)
    token = service.GetTenantsChangedSince(since=EPOCH, pageSize=10).nextPageToken
    with pytest.raises(Fault, match="different 'since'"):
        service.GetTenantsChangedSince(since=dt.datetime(2024, 5, 2), pageToken=token, pageSize=10)


def test_paging_is_stable_when_records_change_between_pages(server):
    service = zeep_client(server).service
    first = service.GetTenantsChangedSince(since=EPOCH, pageSize=20)
    seen = [t.TenantRef for t in first.Tenants.Tenant]
    # The next night lands mid-sync: one tenant seen already is edited (moves to the end),
    # and a new tenant appears. Nobody unseen is skipped; the edited one comes again, later.
    records = many_tenants(57)
    edited = next(r for r in records if r["TenantRef"] == seen[0])
    edited["LastModified"] = "2024-06-01T00:00:00"
    records.append(tenant(999, "2024-06-02T00:00:00"))
    server.set_records(records)
    token, rest = first.nextPageToken, []
    while token:
        reply = service.GetTenantsChangedSince(since=EPOCH, pageToken=token, pageSize=20)
        rest += [t.TenantRef for t in reply.Tenants.Tenant]
        token = reply.nextPageToken
    assert set(seen) | set(rest) == {r["TenantRef"] for r in records}
    assert rest[-2:] == [seen[0], "HT000999"]
    assert len(rest) == len(set(rest))


# --- requests zeep would not send --------------------------------------------------------------
def raw_envelope(body: str, version: str = SOAP11_ENV, user: str = USER, password: str = PASSWORD,
                 prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{prolog}'
        f'<soap:Envelope xmlns:soap="{version}" '
        'xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" '
        'xmlns:h="http://housing.council.example/tenants/v1">'
        f"<soap:Header><wsse:Security><wsse:UsernameToken><wsse:Username>{user}</wsse:Username>"
        f"<wsse:Password>{password}</wsse:Password></wsse:UsernameToken></wsse:Security></soap:Header>"
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode("utf-8")


def post_raw(server, payload: bytes, content_type="text/xml; charset=utf-8") -> tuple[int, str]:
    response = requests.post(server.endpoint_url, data=payload, headers={"Content-Type": content_type}, timeout=5)
    fault = etree.fromstring(response.content).find(".//{*}Fault")
    assert fault is not None, "expected a SOAP fault"
    return response.status_code, " ".join(fault.itertext())


def test_unknown_operation_is_a_fault(server):
    status, text = post_raw(server, raw_envelope("<h:DeleteAllTenants/>"))
    assert status == 500
    assert "unknown operation" in text and "GetTenantsChangedSince" in text


def test_bad_datetime_is_a_fault(server):
    status, text = post_raw(server, raw_envelope(
        "<h:GetTenantsChangedSince><h:since>yesterday</h:since><h:pageSize>10</h:pageSize></h:GetTenantsChangedSince>"))
    assert status == 500
    assert "soap:Client" in text and "not an xsd:dateTime" in text


def test_soap12_sender_fault_is_http_400(server):
    status, text = post_raw(server, raw_envelope("<h:Nope/>", version=SOAP12_ENV),
                            content_type="application/soap+xml; charset=utf-8")
    assert status == 400
    assert "soap:Sender" in text


def test_entity_declaration_in_a_request_is_refused_not_expanded(server):
    prolog = '<!DOCTYPE soap:Envelope [<!ENTITY secret SYSTEM "file:///etc/hostname"><!ENTITY pw "' + PASSWORD + '">]>'
    status, text = post_raw(server, raw_envelope(
        "<h:GetTenantsChangedSince><h:since>2000-01-01T00:00:00</h:since><h:pageSize>10</h:pageSize>"
        "</h:GetTenantsChangedSince>", password="&pw;", prolog=prolog))
    assert status == 500
    assert "DOCTYPE" in text
    assert "Tenant" not in text  # nothing was served, the entity did not stand in for the password


def test_not_well_formed_xml_is_a_fault(server):
    status, text = post_raw(server, b"<soap:Envelope xmlns:soap='x'><oops></soap:Envelope>")
    assert status == 500 and "not well-formed" in text


# --- failure modes ----------------------------------------------------------------------------
def test_fail_after_n_requests_drops_the_connection():
    plan = FailurePlan(fail_after_n_requests=2, failure="drop")
    with HousingSoapServer(many_tenants(30), options=options(failures=plan)) as server:
        service = zeep_client(server).service  # fetching the WSDL is not counted
        reply = service.GetTenantsChangedSince(since=EPOCH, pageSize=10)
        service.GetTenantsChangedSince(since=EPOCH, pageToken=reply.nextPageToken, pageSize=10)
        with pytest.raises(requests.exceptions.ConnectionError):
            service.GetTenantsChangedSince(since=EPOCH, pageSize=10)


def test_fail_after_n_requests_with_http_500():
    plan = FailurePlan(fail_after_n_requests=0, failure="http500")
    with HousingSoapServer(many_tenants(3), options=options(failures=plan)) as server:
        with pytest.raises(TransportError) as caught:
            zeep_client(server).service.GetTenantsChangedSince(since=EPOCH, pageSize=10)
    assert caught.value.status_code == 500


def test_latency_longer_than_the_client_timeout_times_out():
    with HousingSoapServer(many_tenants(3), options=options(failures=FailurePlan(latency_seconds=1.0))) as server:
        client = Client(server.wsdl_url, wsse=UsernameToken(USER, PASSWORD),
                        transport=transport(operation_timeout=0.2))
        with pytest.raises(requests.exceptions.Timeout):
            client.service.GetTenantsChangedSince(since=EPOCH, pageSize=10)


def test_down_server_refuses_connections_and_can_come_back():
    with HousingSoapServer(many_tenants(3), options=options(failures=FailurePlan(down=True))) as server:
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(server.wsdl_url, timeout=5)
        server.come_up()
        client = zeep_client(server)
        assert len(client.service.GetTenantsChangedSince(since=EPOCH, pageSize=10).Tenants.Tenant) == 3
        server.go_down()  # mid-run: even the client's pooled keep-alive connection is cut
        with pytest.raises(requests.exceptions.ConnectionError):
            client.service.GetTenantsChangedSince(since=EPOCH, pageSize=10)


def test_records_not_in_the_housing_layout_are_refused_by_position_not_content():
    bad = tenant(1, "2024-05-01T00:00:00")
    del bad["Surname"]
    with pytest.raises(ValueError, match=r"record #0 .*missing \['Surname'\]") as caught:
        HousingSoapServer([bad], options=options())
    assert "Zoë" not in str(caught.value)


def test_an_ended_tenancy_and_an_old_layout_record_both_arrive_through_the_wsdl():
    """v1.1 fields (TenancyEnd, TenancyEndReason, DateOfDeath) reach zeep through the
    published WSDL; a record from before they existed is served with them nil."""
    from joinedup.simulators.housing_soap import HOUSING_OPTIONAL

    ended = tenant(1, "2024-05-02T10:00:00")
    ended.update(TenancyEnd="2024-05-01", TenancyEndReason="DECEASED", DateOfDeath="2024-04-30")
    old = {k: v for k, v in tenant(2, "2024-05-01T10:00:00").items() if k not in HOUSING_OPTIONAL}
    with HousingSoapServer([ended, old], options=options()) as running:
        reply = zeep_client(running).service.GetTenantsChangedSince(since=EPOCH, pageSize=10)
    got = {t.TenantRef: t for t in reply.Tenants.Tenant}
    assert (got["HT000001"].TenancyEndReason, got["HT000001"].DateOfDeath) == ("DECEASED", "2024-04-30")
    assert [got["HT000002"][f] for f in HOUSING_OPTIONAL] == [None, None, None]
