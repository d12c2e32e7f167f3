"""The social care XML and HR fixed-width drops, their broken variants, and the whole synthetic
council started by ``start_council_servers`` (it writes these drops)."""
from __future__ import annotations

import datetime as dt
import io
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import requests
from lxml import etree
from zeep import Client
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from joinedup.simulators.file_drops import (
    HR_FIELDS,
    SOCIALCARE_FIELDS,
    SOCIALCARE_NS,
    SOCIALCARE_XSD,
    corrupt_hr_trailer_count,
    corrupt_malformed_xml,
    corrupt_mixed_encoding,
    corrupt_truncate,
    read_hr_layout,
    write_billion_laughs_attack,
    write_hr_extract,
    write_socialcare_extract,
    write_xxe_attack,
)
from joinedup.simulators.housing_soap import HOUSING_FIELDS, HousingSoapOptions
from joinedup.simulators.revenues_rest import REVENUES_FIELDS
from joinedup.simulators.servers import CouncilOptions, serve_forever, start_council_servers

NIGHT = dt.date(2024, 5, 2)
NS = {"s": SOCIALCARE_NS}


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


def client(i: int, **overrides) -> dict:
    record = dict.fromkeys(SOCIALCARE_FIELDS)
    record.update(ClientId=f"SC{i:07d}", GivenName="Zoë", FamilyName="O’Sullivan", BirthDate="1990-02-30",
                  NHSNumber="9434765919", Gender=("1", "2", "9")[i % 3], CaseStatus="open",
                  LastUpdated="2024-05-01T22:15:00Z")
    record.update(overrides)
    return record


def employee(i: int, **overrides) -> dict:
    record = dict.fromkeys(HR_FIELDS)
    record.update(EMPNO=f"E{i:07d}", SURNAME="Brontë’s", FORENAMES="Renée Anne", DOB="19800101", SEX="F",
                  NINO="QQ123456C", TOWN="Abertawe", POSTCODE="SA1 1AA", START_DATE="20200601",
                  LAST_CHANGED="20240501083000")
    record.update(overrides)
    return record


# --- social care XML ---------------------------------------------------------------------------
def test_socialcare_extract_validates_against_the_xsd_and_carries_every_record(tmp_path):
    records = [client(i) for i in range(12)] + [client(99, PreferredName=None, NHSNumber=None, Gender=None)]
    path = write_socialcare_extract(records, tmp_path, NIGHT)
    assert path.name == "socialcare_20240502.xml"
    schema = etree.XMLSchema(etree.parse(str(SOCIALCARE_XSD), safe_parser()))
    tree = etree.parse(str(path), safe_parser())
    schema.assertValid(tree)
    root = tree.getroot()
    assert root.get("extractDate") == "2024-05-02"
    assert root.get("recordCount") == "13" == str(len(root.findall("s:Client", NS)))
    last = root.findall("s:Client", NS)[-1]
    assert last.findtext("s:ClientId", namespaces=NS) == "SC0000099"
    assert last.find("s:NHSNumber", NS) is None  # absent, not empty, when the system holds nothing
    assert root.find("s:Client/s:FamilyName", NS).text == "O’Sullivan"


def test_the_xsd_really_constrains_codes_and_keys(tmp_path):
    schema = etree.XMLSchema(etree.parse(str(SOCIALCARE_XSD), safe_parser()))
    good = etree.parse(str(write_socialcare_extract([client(1)], tmp_path, NIGHT)), safe_parser())
    gender = good.getroot().find("s:Client/s:Gender", NS)
    gender.text = "M"
    assert not schema.validate(good)


def test_a_record_the_xsd_rejects_publishes_nothing_and_names_no_data(tmp_path):
    with pytest.raises(ValueError, match="would not validate") as caught:
        write_socialcare_extract([client(1), client(2, ClientId="Smith")], tmp_path, NIGHT)
    assert "Smith" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # neither the extract nor its temporary file


# --- HR fixed width ----------------------------------------------------------------------------
def hr_lines(path: Path) -> list[str]:
    text = path.read_bytes().decode("cp1252")
    assert text.endswith("\r\n")
    return text[:-2].split("\r\n")


def test_hr_extract_is_cp1252_fixed_width_with_header_and_trailer_count(tmp_path):
    records = [employee(i) for i in range(7)] + [employee(8, ADDR1=None, TOWN="Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch")]
    path = write_hr_extract(records, tmp_path, NIGHT, system_name="PAYROLL PLUS")
    assert path.name == "hr_20240502.dat"
    layout = read_hr_layout()
    lines = hr_lines(path)
    assert all(len(line) == layout.record_length == 247 for line in lines)
    header, details, trailer = lines[0], lines[1:-1], lines[-1]
    assert header[:9] == "H20240502" and header[9:39].rstrip() == "PAYROLL PLUS"
    assert trailer[0] == "T" and trailer[1:10] == "000000008" and int(trailer[1:10]) == len(details) == 8
    surname = layout.field("detail", "SURNAME")
    assert {line[surname.slice].rstrip() for line in details} == {"Brontë’s"}
    assert b"Bront\xeb\x92s" in path.read_bytes()  # é and ’ as single Windows-1252 bytes
    town = layout.field("detail", "TOWN")
    assert details[-1][town.slice] == "Llanfairpwllgwyngyllgogerychwy"  # cut to 30, as payroll does
    assert details[-1][layout.field("detail", "ADDR1").slice] == " " * 40


def test_hr_characters_outside_cp1252_arrive_as_question_marks(tmp_path):
    path = write_hr_extract([employee(1, SURNAME="Łukasiewicz")], tmp_path, NIGHT)
    assert hr_lines(path)[1][9:20] == "?ukasiewicz"


def test_layout_file_is_contiguous_and_matches_the_native_fields():
    layout = read_hr_layout()
    assert [f.name for f in layout.detail][1:] == list(HR_FIELDS)
    assert sum(f.width for f in layout.detail) == layout.record_length
    assert layout.encoding == "cp1252"


def test_drops_leave_no_temporary_files(tmp_path):
    write_hr_extract([employee(1)], tmp_path, NIGHT)
    write_socialcare_extract([client(1)], tmp_path, NIGHT)
    write_hr_extract([employee(2)], tmp_path, NIGHT)  # rewritten in place, atomically
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hr_20240502.dat", "socialcare_20240502.xml"]


# --- broken variants ---------------------------------------------------------------------------
def test_records_written_before_the_leavers_fields_existed_are_still_accepted(tmp_path):
    """Schema evolution: the fields added later (deaths, leavers) may be absent; they are
    written empty, while any other missing field is still refused."""
    from joinedup.simulators.file_drops import HR_OPTIONAL, SOCIALCARE_OPTIONAL

    old_hr = {k: v for k, v in employee(1).items() if k not in HR_OPTIONAL}
    dead_hr = employee(2, LEAVE_DATE="20240430", LEAVE_REASON="DEC", DATE_OF_DEATH="20240430",
                       RECORD_STATUS="L")
    path = write_hr_extract([old_hr, dead_hr], tmp_path, NIGHT)
    lines = path.read_bytes().decode("cp1252").split("\r\n")[:-1]
    assert lines[1][227:].strip() == ""
    assert lines[2][227:] == "20240430DEC20240430L"
    old_sc = {k: v for k, v in client(1).items() if k not in SOCIALCARE_OPTIONAL}
    xml = write_socialcare_extract([old_sc, client(2, CaseStatus="closed", DateOfDeath="2024-04-29")],
                                   tmp_path, NIGHT)
    tree = etree.parse(str(xml), safe_parser())
    etree.XMLSchema(etree.parse(str(SOCIALCARE_XSD), safe_parser())).assertValid(tree)
    assert [e.text for e in tree.iter("{*}DateOfDeath")] == ["2024-04-29"]
    broken = {k: v for k, v in employee(3).items() if k != "SURNAME"}
    with pytest.raises(ValueError, match="SURNAME"):
        write_hr_extract([broken], tmp_path, NIGHT)


def test_truncated_hr_file_has_no_trailer_and_ends_mid_record(tmp_path):
    path = corrupt_truncate(write_hr_extract([employee(i) for i in range(10)], tmp_path, NIGHT))
    text = path.read_bytes().decode("cp1252")
    lines = text.split("\r\n")
    assert not any(line.startswith("T") for line in lines)
    assert len(lines[-1]) < 247 and not text.endswith("\r\n")


def test_truncated_xml_is_not_well_formed(tmp_path):
    path = corrupt_truncate(write_socialcare_extract([client(i) for i in range(10)], tmp_path, NIGHT), keep_fraction=0.7)
    with pytest.raises(etree.XMLSyntaxError):
        etree.parse(str(path), safe_parser())


def test_trailer_count_that_disagrees(tmp_path):
    path = corrupt_hr_trailer_count(write_hr_extract([employee(i) for i in range(4)], tmp_path, NIGHT), delta=3)
    lines = hr_lines(path)
    assert all(len(line) == 247 for line in lines)  # still looks well-formed
    assert int(lines[-1][1:10]) == 7 and len(lines) - 2 == 4


def test_malformed_xml(tmp_path):
    path = corrupt_malformed_xml(write_socialcare_extract([client(1), client(2)], tmp_path, NIGHT))
    with pytest.raises(etree.XMLSyntaxError):
        etree.parse(str(path), safe_parser())


def test_xxe_file_leaks_a_local_file_to_a_careless_parser_and_not_to_a_safe_one(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    drop = tmp_path / "drop"
    path = write_xxe_attack(drop, NIGHT, target=secret.as_uri())
    careless = etree.parse(str(path), etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=True))
    assert "TOP-SECRET-MARKER" in careless.getroot().findtext("s:Client/s:GivenName", namespaces=NS)
    safe = etree.parse(str(path), safe_parser())
    assert "TOP-SECRET-MARKER" not in etree.tostring(safe).decode()
    declared = {e.name: e.system_url for e in safe.docinfo.internalDTD.iterentities()}
    assert declared == {"xxe": secret.as_uri()}


def test_billion_laughs_file_declares_the_nested_entity_bomb(tmp_path):
    path = write_billion_laughs_attack(tmp_path, NIGHT, levels=10)
    text = path.read_text(encoding="utf-8")
    assert text.count("<!ENTITY lol") == 10
    assert '<!ENTITY lol9 "' + "&lol8;" * 10 + '">' in text  # ten times the level below: 10^9 in all
    assert "<GivenName>&lol9;</GivenName>" in text
    try:  # a safe parser refuses the bomb (today's libxml2) or leaves it unexpanded
        tree = etree.parse(str(path), safe_parser())
    except etree.XMLSyntaxError as refused:
        assert "amplification" in str(refused)
    else:
        assert "lol" not in (tree.getroot().findtext("s:Client/s:GivenName", namespaces=NS) or "")


def test_mixed_encoding_hr_file(tmp_path):
    path = corrupt_mixed_encoding(write_hr_extract([employee(i) for i in range(4)], tmp_path, NIGHT))
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # some lines are still Windows-1252 ...
    lines = raw.decode("cp1252").split("\r\n")
    assert sum("Ã«" in line for line in lines) == 2  # ... and others UTF-8 (ë read as Ã«)
    assert sorted({len(line) for line in lines[1:5]}) == [247, 251]


def test_mixed_encoding_xml_file(tmp_path):
    path = corrupt_mixed_encoding(write_socialcare_extract([client(1), client(2)], tmp_path, NIGHT))
    raw = path.read_bytes()
    assert b"Zo\xc3\xab<" in raw  # UTF-8 lines remain ...
    assert b"O\x92Sullivan<" in raw  # ... beside Windows-1252 ones
    with pytest.raises(etree.XMLSyntaxError, match="(?i)encoding|utf-8"):
        etree.fromstring(raw, safe_parser())  # (lxml raises OSError instead when given the file name)


# --- the whole council -------------------------------------------------------------------------
def tenants(n: int) -> list[dict]:
    out = []
    for i in range(n):
        record = dict.fromkeys(HOUSING_FIELDS)
        record.update(TenantRef=f"HT{i:06d}", Surname="Jones", LastModified=f"2024-05-01T0{i % 10}:00:00")
        out.append(record)
    return out


def customers(n: int) -> list[dict]:
    out = []
    for i in range(n):
        record = dict.fromkeys(REVENUES_FIELDS)
        record.update(customer_ref=f"5{i:08d}", last_name="Jones", modified_at=f"2024-05-01T0{i % 10}:00:00Z")
        out.append(record)
    return out


def council_records() -> dict[str, list[dict]]:
    return {"housing": tenants(15), "revenues": customers(25),
            "socialcare": [client(i) for i in range(3)], "hr": [employee(i) for i in range(4)]}


def test_council_starts_serves_through_its_connection_uris_and_stops(tmp_path):
    opts = CouncilOptions(housing=HousingSoapOptions(username="h user", password="p@ss:word/1"), extract_date=NIGHT)
    with start_council_servers(council_records(), tmp_path / "drop", options=opts) as council:
        env = council.env()
        assert set(env) == {"JOINEDUP_CONN_HOUSING_SOAP", "JOINEDUP_CONN_REVENUES_REST",
                            "JOINEDUP_CONN_REVENUES_REST_APIKEY", "JOINEDUP_CONN_SOCIALCARE_XML",
                            "JOINEDUP_CONN_HR_FIXED_WIDTH"}
        # Housing, as an adapter would read the URI: credentials percent-encoded in it.
        soap = urlsplit(env["JOINEDUP_CONN_HOUSING_SOAP"])
        assert soap.scheme == "soap" and soap.query == "wsdl"
        wsdl_url = f"http://{soap.hostname}:{soap.port}{soap.path}?wsdl"
        assert wsdl_url == council.housing_wsdl_url
        zeep_client = Client(wsdl_url, wsse=UsernameToken(unquote(soap.username), unquote(soap.password)),
                             transport=Transport(timeout=5, operation_timeout=5))
        reply = zeep_client.service.GetTenantsChangedSince(since=dt.datetime(2000, 1, 1), pageSize=100)
        assert len(reply.Tenants.Tenant) == 15
        # Revenues via OAuth2 client credentials from the URI.
        rest = urlsplit(env["JOINEDUP_CONN_REVENUES_REST"])
        base = f"http://{rest.hostname}:{rest.port}"
        assert base == council.revenues_base_url
        token = requests.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                              auth=(unquote(rest.username), unquote(rest.password)), timeout=5).json()["access_token"]
        listing = requests.get(f"{base}{rest.path}/customers", params={"limit": 100},
                               headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
        assert len(listing["data"]) == 25
        key = unquote(urlsplit(env["JOINEDUP_CONN_REVENUES_REST_APIKEY"]).password)
        assert requests.get(f"{base}/api/v1/customers", headers={"X-API-Key": key}, timeout=5).ok
        # Files, where the file URIs say.
        drop = Path(urlsplit(env["JOINEDUP_CONN_SOCIALCARE_XML"]).path)
        assert sorted(p.name for p in drop.iterdir()) == ["hr_20240502.dat", "socialcare_20240502.xml"]
        assert council.hr_file == drop / "hr_20240502.dat"
    for url in (wsdl_url, f"{base}/api/v1/customers"):
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url, timeout=5)


def test_next_night_serves_new_records_and_drops_new_files(tmp_path):
    with start_council_servers(council_records(), tmp_path, options=CouncilOptions(extract_date=NIGHT)) as council:
        council.next_night({"housing": tenants(20), "hr": [employee(i) for i in range(6)]}, NIGHT + dt.timedelta(days=1))
        assert council.housing.record_count == 20 and council.revenues.record_count == 25
        assert council.hr_file.name == "hr_20240503.dat"
        assert hr_lines(council.hr_file)[-1][1:10] == "000000006"
        assert (tmp_path / "hr_20240502.dat").exists()  # last night's file is left for the adapter


def test_unknown_system_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown system name"):
        start_council_servers({"housing": [], "payroll": []}, tmp_path)


def test_serve_forever_prints_exports_and_stops_on_request(tmp_path):
    out, stop = io.StringIO(), threading.Event()
    runner = threading.Thread(target=serve_forever, args=(council_records(), tmp_path),
                              kwargs={"out": out, "stop_event": stop}, daemon=True)
    runner.start()
    deadline = time.monotonic() + 60  # four simulators started in a thread: slow on a loaded machine
    while "export JOINEDUP_CONN_HR_FIXED_WIDTH" not in out.getvalue() and time.monotonic() < deadline:
        stop.wait(0.05)
    assert "export JOINEDUP_CONN_HR_FIXED_WIDTH" in out.getvalue(), "the simulators did not start within 60 s"
    wsdl_line = next(line for line in out.getvalue().splitlines() if "housing SOAP WSDL" in line)
    wsdl_url = wsdl_line.split(": ", 1)[1].strip()
    assert requests.get(wsdl_url, timeout=5).status_code == 200
    stop.set()
    runner.join(timeout=10)
    assert not runner.is_alive()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(wsdl_url, timeout=5)
