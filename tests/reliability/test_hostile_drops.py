"""Hostile and broken files in a drop folder, through the real drop adapters (CSV, social-care
XML, HR fixed width): entity tricks, NUL bytes, a 10 MB value, two encodings in one file,
links and traversal in names. Each file is refused whole into rejected/ with a reason that
names the file and the problem and shows no value; nothing is landed half, nothing vanishes."""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from joinedup.adapters import build_adapter, load_source
from joinedup.adapters.config import SourceConfig
from joinedup.adapters.files import CsvAdapter, CsvOptions
from joinedup.simulators import file_drops as fd

DAY = date(2024, 5, 1)
SECRET = "Gwenllïan"  # a value that must never appear in a reason
NS = fd.SOCIALCARE_NS
HUGE = 10 * 1024 * 1024


def drop(project: Path, source: str) -> Path:
    path = project / "var" / load_source(project / "adapters" / f"{source}.yaml").options["drop_folder"]
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(adapter) -> list:  # noqa: ANN001
    pages = []
    for page in adapter.extract(None):
        adapter.acknowledge(page)
        pages.append(page)
    return pages


def csv_adapter(project: Path, encoding: str = "auto") -> CsvAdapter:
    options = {"drop_folder": "drops/csv", "file_pattern": "*.csv", "encoding": encoding}
    (project / "var" / "drops" / "csv").mkdir(parents=True, exist_ok=True)
    config = SourceConfig(name="revenues_csv", kind="csv", mapping="revenues.yaml", options=options)
    return CsvAdapter(config, CsvOptions.model_validate(options))


def rejected(folder: Path, name: str) -> str:
    """The reason for ``name``; asserts that the file itself is kept beside it."""
    assert (folder / "rejected" / name).exists() or (folder / "rejected" / name).is_symlink(), \
        f"{name} must be kept in rejected/"
    reason = (folder / "rejected" / f"{name}.reason.txt").read_text(encoding="utf-8")
    assert name in reason and SECRET not in reason and "root:" not in reason
    return reason


def only_leftovers(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name not in ("rejected", "processed")}


def client_xml(given: str, *, doctype: str = "", extra: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}'
            f'<SocialCareExtract xmlns="{NS}" extractDate="2024-05-01" recordCount="1"{extra}>\n'
            f"  <Client><ClientId>SC0000001</ClientId><GivenName>{given}</GivenName>"
            "<LastUpdated>2024-01-01T00:00:00</LastUpdated></Client>\n</SocialCareExtract>\n").encode("utf-8")


# -- social care XML ------------------------------------------------------------------------------
XML_ATTACKS = {
    "xxe_file": client_xml("&xxe;", doctype='<!DOCTYPE S [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'),
    "xxe_parameter": client_xml("x", doctype='<!DOCTYPE S [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>\n'),
    "external_dtd": client_xml("x", doctype='<!DOCTYPE S SYSTEM "file:///etc/passwd">\n'),
    "billion_laughs": None,  # written by the simulator's own attack writer
    "quadratic_blowup": client_xml("&a;" * 2000, doctype='<!DOCTYPE S [<!ENTITY a "' + "A" * 5000 + '">]>\n'),
    "xinclude": client_xml('<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" '
                           'parse="text"/>'),
    "nul_byte": client_xml("Gwen\x00llïan"),
    "nul_char_reference": client_xml("Gwen&#0;llïan"),
    "huge_value": client_xml("A" * (HUGE + 10)),
    "cp1252_inside_utf8": client_xml("Gwenllïan").replace("ï".encode("utf-8"), "ï".encode("cp1252")),
}


@pytest.mark.parametrize("attack", sorted(XML_ATTACKS))
def test_hostile_socialcare_xml_is_rejected_with_a_reason(project: Path, attack: str) -> None:
    folder = drop(project, "socialcare")
    name = fd.socialcare_file_name(DAY)
    if XML_ATTACKS[attack] is None:
        fd.write_billion_laughs_attack(folder, DAY)
    else:
        (folder / name).write_bytes(XML_ATTACKS[attack])
    pages = run(build_adapter(load_source(project / "adapters" / "socialcare.yaml")))
    assert pages == []
    reason = rejected(folder, name)
    assert only_leftovers(folder) == set()
    landing = project / "var" / "landing"
    assert not landing.exists() or not any(landing.rglob("*.jsonl"))
    assert len(reason) < 600


def test_a_value_just_under_the_xml_text_limit_is_rejected_by_the_xsd_not_truncated(project: Path) -> None:
    """Text100 caps names at 100 characters: a 1 MB name fails the XSD, named by element only."""
    folder = drop(project, "socialcare")
    name = fd.socialcare_file_name(DAY)
    (folder / name).write_bytes(client_xml(SECRET * 100_000))
    assert run(build_adapter(load_source(project / "adapters" / "socialcare.yaml"))) == []
    assert "GivenName" in rejected(folder, name)


# -- CSV --------------------------------------------------------------------------------------------
HEADER = "customer_ref,first_name,last_name\r\n"
CSV_CASES = {
    "huge_value": (HEADER + "500000001," + "A" * HUGE + ",Jones\r\n").encode("utf-8"),
    "mixed_encodings": (HEADER + "500000001,Siân,Jones\r\n").encode("utf-8")
    + "500000002,Siân,Jones\r\n".encode("cp1252"),
    "unclosed_quote": (HEADER + f'500000001,"{SECRET},Jones\r\n').encode("utf-8"),
    "undecodable": HEADER.encode() + b"500000001,\x81\x8d\x8f,Jones\r\n",
    "truncated": (HEADER + "500000001,Ann,Jon").encode("utf-8"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_broken_csv_is_rejected_whole_with_a_reason(project: Path, case: str) -> None:
    adapter = csv_adapter(project)
    name = f"{case}.csv"
    (adapter.folder / name).write_bytes(CSV_CASES[case])
    (adapter.folder / "good.csv").write_bytes((HEADER + "500000009,Ann,Jones\r\n").encode("cp1252"))
    pages = run(adapter)
    assert [p.origin for p in pages] == ["good.csv"]  # the good file still loads
    reason = rejected(adapter.folder, name)
    assert "A" * 50 not in reason
    assert only_leftovers(adapter.folder) == set()


def test_a_nul_byte_is_carried_as_data_then_quarantined_by_the_mapping(project: Path) -> None:
    """Python 3.11's csv reads NUL; the adapter never transforms, so the mapping refuses the
    value (PostgreSQL cannot store NUL in text) and the row is quarantined naming the field."""
    from joinedup.mapping.engine import map_records
    from joinedup.mapping.spec import load_mapping
    from joinedup.simulators.housing_soap import HOUSING_FIELDS

    adapter = csv_adapter(project)
    (adapter.folder / "nul.csv").write_bytes((HEADER + f"500000001,{SECRET}\x00,Jones\r\n").encode("utf-8"))
    [page] = run(adapter)
    assert page.records[0]["first_name"] == SECRET + "\x00"  # landed as received: nothing lost
    record = dict.fromkeys(HOUSING_FIELDS)
    record.update(TenantRef="HT000001", Forename=SECRET + "\x00", Surname="Jo\x00nes", DateOfBirth="1970-01-31",
                  LastModified="2024-03-01T10:00:00")
    mapped = map_records([record], load_mapping(project / "mappings" / "housing.yaml"), "housing")
    assert set(mapped.at[0, "mapping_issues"].split("|")) == {"given_name", "family_name"}
    assert mapped.at[0, "given_name"] is None and mapped.at[0, "source_key"] == "HT000001"
    assert not any("\x00" in str(v) for v in mapped.iloc[0].to_numpy())


def test_mixed_encodings_are_named_as_such(project: Path) -> None:
    adapter = csv_adapter(project)
    (adapter.folder / "mixed.csv").write_bytes(CSV_CASES["mixed_encodings"])
    run(adapter)
    assert "mixed encodings" in rejected(adapter.folder, "mixed.csv")


def test_sql_metacharacters_in_every_field_are_plain_text(project: Path) -> None:
    payload = "'; DROP TABLE source_records; --"
    adapter = csv_adapter(project)
    (adapter.folder / "sql.csv").write_text(
        HEADER + f'"{payload}","Robert\'); DELETE FROM persons;--","x"" OR ""1""=""1"\r\n', encoding="utf-8")
    [page] = run(adapter)
    assert page.records == [{"customer_ref": payload, "first_name": "Robert'); DELETE FROM persons;--",
                             "last_name": 'x" OR "1"="1'}]


# -- file names and links -----------------------------------------------------------------------------
def test_a_symbolic_link_is_refused_not_followed(project: Path, tmp_path: Path) -> None:
    adapter = csv_adapter(project)
    outside = tmp_path / "outside.csv"
    outside.write_bytes((HEADER + f"500000001,{SECRET},Jones\r\n").encode("utf-8"))
    os.symlink(outside, adapter.folder / "link.csv")
    os.symlink("/etc/passwd", adapter.folder / "passwd.csv")
    assert run(adapter) == []
    assert "symbolic link" in rejected(adapter.folder, "link.csv")
    assert "symbolic link" in rejected(adapter.folder, "passwd.csv")
    assert outside.read_bytes().startswith(HEADER.encode())  # the target is untouched
    assert (adapter.folder / "rejected" / "link.csv").is_symlink()


@pytest.mark.parametrize("pattern", ["../../etc/*.xml", "/etc/*.xml", "../*", "sub/*.csv", "..\\*.csv"])
def test_a_file_pattern_cannot_leave_the_drop_folder(pattern: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="file name glob inside drop_folder"):
        CsvOptions.model_validate({"drop_folder": "drops/x", "file_pattern": pattern})


def test_odd_file_names_stay_inside_the_folder(project: Path) -> None:
    """Names with dots, spaces, newlines and quotes are just names: the file is read where it is,
    moved into processed/ (never above it) and named in the page's origin."""
    adapter = csv_adapter(project)
    names = ["..csv", "a b.csv", "x\ny.csv", "'; DROP TABLE x;--.csv", "..%2f..%2fetc%2fx.csv"]
    for name in names:
        (adapter.folder / name).write_text(HEADER + "500000001,Ann,Jones\r\n", encoding="utf-8")
    pages = run(adapter)
    assert sorted(p.origin for p in pages) == sorted(n for n in names if not n.startswith("."))
    assert {p.name for p in (adapter.folder / "processed").iterdir()} == {n for n in names if not n.startswith(".")}
    assert (adapter.folder / "..csv").exists()  # a dot file is left alone as "still being written"


def test_hr_fixed_width_with_nul_and_mixed_encoding_is_rejected(project: Path) -> None:
    from joinedup.simulators.council import build_council

    folder = drop(project, "hr")
    records = [dict(r) for r in build_council(300, 3).records["hr"][:6]]
    records[0]["FORENAMES"], records[1]["FORENAMES"] = "Siân", "Siân"
    path = fd.write_hr_extract(records, folder, DAY)
    data = path.read_bytes()
    nul = folder / "hr_20240502.dat"
    nul.write_bytes(data.replace(b"\xe2", b"\x00", 1))  # same length, a NUL in a name
    fd.corrupt_mixed_encoding(path)
    pages = run(build_adapter(load_source(project / "adapters" / "hr.yaml")))
    assert [p.origin for p in pages] == [nul.name] or pages == []
    rejected(folder, path.name)
    if pages:  # NUL kept as data: the mapping/gate decides; nothing was lost on the way
        assert any("\x00" in (v or "") for r in pages[0].records for v in r.values())
