"""Fuzzing every parser and every mapping transform with hypothesis.

Each parser gets arbitrary (and arbitrarily damaged) input and may only answer with records or
with its documented error: ``RejectedFile`` for a dropped file (CSV, fixed width, XML),
``FatalSourceError`` / ``RetriableSourceError`` for a service (SOAP, REST). Every string value
in the generated input carries a marker; no error message may contain it (messages name files,
lines, fields and rules, never values). Bounded (max_examples <= 200, no deadline) so the suite
stays quick; the transport seam (a requests adapter answering canned bytes) keeps the SOAP and
REST adapters on their real code paths without a server per example."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joinedup.adapters.base import FatalSourceError, RetriableSourceError
from joinedup.adapters.config import SourceConfig
from joinedup.adapters.files import CsvAdapter, CsvOptions, RejectedFile, decode

MARK = "Zqx"  # every generated value carries it; a message that shows it leaked a value
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
values = st.text(max_size=20).map(lambda t: MARK + t)


def no_value_in(message: str) -> None:
    assert MARK not in message, f"a value leaked into: {message[:200]!r}"


# -- CSV ------------------------------------------------------------------------------------------
def _csv() -> CsvAdapter:
    options = {"drop_folder": "drops/fuzz", "file_pattern": "*.csv"}
    return CsvAdapter(SourceConfig(name="fuzz", kind="csv", mapping="revenues.yaml", options=options),
                      CsvOptions.model_validate(options))


CSV_ALPHABET = st.sampled_from([",", '"', "\r", "\n", "\x00", "a", "é", " ", "=", "'", "\t"])


@FUZZ
@given(header=st.lists(st.text(alphabet="abc_", min_size=1, max_size=5), min_size=1, max_size=4),
       rows=st.lists(st.lists(values, min_size=0, max_size=5), max_size=5),
       noise=st.lists(CSV_ALPHABET, max_size=8), at=st.integers(min_value=0))
def test_csv_parser_answers_records_or_rejected_file(header, rows, noise, at) -> None:  # noqa: ANN001
    text = ",".join(header) + "\r\n" + "".join(",".join(r) + "\r\n" for r in rows)
    cut = at % (len(text) + 1)
    text = text[:cut] + "".join(noise) + text[cut:]
    try:
        records = _csv().parse(text, "fuzz.csv")
    except RejectedFile as exc:
        no_value_in(str(exc))
        return
    assert all(isinstance(r, dict) for r in records)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["auto", "utf-8", "utf-8-sig", "cp1252"]))
def test_decoding_answers_text_or_rejected_file(data: bytes, encoding: str) -> None:
    try:
        assert isinstance(decode(MARK.encode() + data, encoding, "fuzz.csv"), str)  # type: ignore[arg-type]
    except RejectedFile as exc:
        no_value_in(str(exc))


# -- fixed width (the HR layout) --------------------------------------------------------------------
@pytest.fixture(scope="module")
def hr_adapter():  # noqa: ANN201
    from joinedup.adapters import build_adapter, load_source
    from joinedup.paths import project_root

    return build_adapter(load_source(project_root() / "adapters" / "hr.yaml"))


@FUZZ
@given(names=st.lists(values, min_size=1, max_size=4), noise=st.text(max_size=6), at=st.integers(min_value=0),
       count=st.integers(min_value=-1, max_value=6))
def test_fixed_width_parser_answers_records_or_rejected_file(hr_adapter, names, noise, at, count) -> None:  # noqa: ANN001
    layout = hr_adapter.layout
    width = layout.record_length
    lines = ["H" + "20240501".ljust(width - 1)[: width - 1]]
    for n in names:
        lines.append(("D" + "00000001" + n[:30].ljust(30)).ljust(width)[:width])
    lines.append(("T" + str(len(names) if count < 0 else count).zfill(8)).ljust(width)[:width])
    text = "\r\n".join(lines) + "\r\n"
    cut = at % (len(text) + 1)
    text = text[:cut] + noise + text[cut:]
    try:
        records = hr_adapter.parse(text, "hr_fuzz.dat")
    except RejectedFile as exc:
        no_value_in(str(exc))
        return
    assert all(isinstance(r, dict) for r in records)


# -- social care XML --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def xml_setup():  # noqa: ANN201
    from datetime import date

    from joinedup.adapters import build_adapter, load_source
    from joinedup.paths import project_root
    from joinedup.simulators import file_drops as fd
    from joinedup.simulators.council import build_council

    records = [dict(r) for r in build_council(300, 5).records["socialcare"][:3]]
    for r in records:
        r["GivenName"], r["FamilyName"] = MARK + "Siân", MARK + "Ó Müller"
    with tempfile.TemporaryDirectory() as tmp:
        path = fd.write_socialcare_extract(records, Path(tmp), date(2024, 5, 1))
        template = path.read_bytes()
        adapter = build_adapter(load_source(project_root() / "adapters" / "socialcare.yaml"))
        yield adapter, template, Path(tmp)


@FUZZ
@given(cut=st.integers(min_value=0), length=st.integers(min_value=0, max_value=12),
       insert=st.binary(max_size=12) | st.sampled_from([b"<", b"&", b"]]>", b"<!DOCTYPE x>", b"&#0;", b"<a:b>"]))
def test_xml_reader_answers_records_or_rejected_file(xml_setup, cut, length, insert) -> None:  # noqa: ANN001
    adapter, template, folder = xml_setup
    at = cut % (len(template) + 1)
    path = folder / "socialcare_fuzz.xml"
    path.write_bytes(template[:at] + insert + template[at + length:])
    try:
        records = adapter.read_file(path)
    except RejectedFile as exc:
        no_value_in(str(exc))
        return
    assert all(isinstance(r, dict) for r in records)


# -- the transport seam: canned answers for the SOAP and REST adapters -------------------------------
class Canned(requests.adapters.BaseAdapter):
    """Answers every request with ``body`` (HTTP 200 unless ``status`` says otherwise)."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.status, self.content_type = b"", 200, "application/json"

    def send(self, request, **kwargs):  # noqa: ANN001, ANN003, ANN201
        response = requests.Response()
        response.status_code, response._content = self.status, self.body
        response.headers["Content-Type"] = self.content_type
        response.url, response.request, response.encoding = request.url, request, "utf-8"
        return response

    def close(self) -> None:
        pass


def canned_session() -> tuple[requests.Session, Canned]:
    session, canned = requests.Session(), Canned()
    session.mount("http://", canned)
    return session, canned


json_leaf = values | st.integers() | st.none() | st.booleans() | st.floats(allow_nan=False)
json_any = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["data", "next_cursor", "customer_ref", "modified_at", "first_name", "x"]), inner, max_size=4),
    max_leaves=12)
page = st.fixed_dictionaries({"data": st.lists(st.dictionaries(
    st.sampled_from(["customer_ref", "modified_at", "first_name", "dob"]), json_leaf, max_size=4), max_size=4)},
    optional={"next_cursor": json_leaf})


@pytest.fixture(scope="module")
def rest():  # noqa: ANN201
    from joinedup.adapters.rest import RestAdapter, RestOptions

    raw = {"base_url": "http://127.0.0.1:9/api/v1", "path": "customers", "records_path": "data", "auth": "none",
           "page_size": 5, "max_pages": 5,
           "paging": {"style": "cursor", "cursor_param": "cursor", "next_cursor_path": "next_cursor",
                      "size_param": "limit"},
           "incremental": {"param": "modified_since", "field": "modified_at", "key_field": "customer_ref"},
           "http": {"retries": 0}}
    session, canned = canned_session()
    config = SourceConfig(name="revenues", kind="rest", mapping="revenues.yaml", options=raw)
    return RestAdapter(config, RestOptions.model_validate(raw), session=session), canned


@FUZZ
@given(body=json_any | page, raw=st.booleans(), junk=st.binary(max_size=20))
def test_rest_page_parsing_answers_pages_or_source_errors(rest, body, raw, junk) -> None:  # noqa: ANN001
    adapter, canned = rest
    canned.body = junk if raw else json.dumps(body).encode()
    try:
        pages = list(adapter.extract(None))
    except (FatalSourceError, RetriableSourceError) as exc:
        no_value_in(str(exc))
        return
    assert all(isinstance(r, dict) for p in pages for r in p.records)


class Recording(requests.adapters.HTTPAdapter):
    """A real HTTP adapter that keeps the last answer's body."""

    body = b""

    def send(self, request, **kwargs):  # noqa: ANN001, ANN003, ANN201
        response = super().send(request, **kwargs)
        Recording.body = response.content
        return response


@pytest.fixture(scope="module")
def soap():  # noqa: ANN201
    """The SOAP adapter on the checked-in WSDL, and a real answer of the housing simulator."""
    import os

    from joinedup.adapters.soap import SoapAdapter, SoapOptions
    from joinedup.simulators.housing_soap import HOUSING_FIELDS, HousingSoapOptions, HousingSoapServer

    record = dict.fromkeys(HOUSING_FIELDS)
    record.update(TenantRef="HT000001", Forename=MARK + "Siân", Surname=MARK + "Jones",
                  LastModified="2024-03-01T10:00:00")
    raw = {"operation": "GetTenantsChangedSince", "records_path": "Tenants.Tenant", "page_size": 10,
           "wsdl": "sources/housing.wsdl", "wsdl_cache_seconds": 0,
           "paging": {"size_param": "pageSize", "token_param": "pageToken", "next_token_field": "nextPageToken"},
           "incremental": {"param": "since", "field": "LastModified", "key_field": "TenantRef"},
           "operation_timeout_seconds": 5, "http": {"retries": 0}}
    config = SourceConfig(name="housing", kind="soap", mapping="housing.yaml", connection_id="housing_fuzz",
                          options=raw)
    with HousingSoapServer([record], options=HousingSoapOptions(username="u", password="p")) as server:
        os.environ["JOINEDUP_CONN_HOUSING_FUZZ"] = f"soap://u:p@127.0.0.1:{server.port}/housing/service"
        try:
            recording = requests.Session()
            recording.mount("http://", Recording())
            list(SoapAdapter(config, SoapOptions.model_validate(raw), session=recording).extract(None))
            session, canned = canned_session()
            adapter = SoapAdapter(config, SoapOptions.model_validate(raw), session=session)
            adapter.service()  # zeep reads the WSDL once, here
        finally:
            os.environ.pop("JOINEDUP_CONN_HOUSING_FUZZ", None)
    assert b"HT000001" in Recording.body
    return adapter, canned, Recording.body


@FUZZ
@given(cut=st.integers(min_value=0), length=st.integers(min_value=0, max_value=10),
       insert=st.binary(max_size=10) | st.sampled_from([b"<", b"&", b"<x>", b"&#0;", b"<!DOCTYPE x>", b"\xff"]))
def test_soap_envelope_handling_answers_pages_or_source_errors(soap, cut, length, insert) -> None:  # noqa: ANN001
    adapter, canned, template = soap
    at = cut % (len(template) + 1)
    canned.body, canned.content_type = template[:at] + insert + template[at + length:], "text/xml; charset=utf-8"
    try:
        pages = list(adapter.extract(None))
    except (FatalSourceError, RetriableSourceError) as exc:
        no_value_in(str(exc))
        return
    assert all(isinstance(r, dict) for p in pages for r in p.records)


# -- mapping transforms ---------------------------------------------------------------------------------
PARAMS = {"parse_date": {"formats": ["%d/%m/%Y", "%Y-%m-%d"]}, "parse_datetime": {"formats": ["%Y-%m-%dT%H:%M:%S%z"]},
          "split_name": {"part": "family"}, "code_lookup": {"codes": {"1": "M", "2": "F"}}}
raw_values = st.lists(st.none() | st.text(max_size=25) | st.sampled_from(
    ["  ", "31/02/2024", "00/00/0000", "9999-99-99", "ZZ99 3VZ", "AB 12 34 56 C", "+44 (0)20", "\x00", "٣٤٥"]),
    max_size=8)


def test_every_registered_transform_is_fuzzed() -> None:
    from joinedup.mapping.transforms import TRANSFORMS

    assert set(PARAMS) <= set(TRANSFORMS) and len(TRANSFORMS) >= 15


@pytest.mark.parametrize("name", sorted(__import__("joinedup.mapping.transforms", fromlist=["TRANSFORMS"]).TRANSFORMS))
@FUZZ
@given(items=raw_values)
def test_transform_never_crashes_and_keeps_length(name: str, items: list) -> None:
    from joinedup.mapping.transforms import get_transform

    series = pd.Series(items, dtype=object, index=range(10, 10 + len(items)))
    out = get_transform(name)(series, **PARAMS.get(name, {}))
    assert len(out) == len(series) and list(out.index) == list(series.index)
    for before, after in zip(items, out):
        if before is None or not str(before).strip():
            assert after is None or (isinstance(after, float) and pd.isna(after)), (name, before, after)
        else:
            assert after is None or isinstance(after, str), (name, before, type(after))
