"""The XML and fixed-width adapters on the files the simulator drops: good files, and every
broken variant it can make, each rejected whole with a reason that shows no personal data."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from joinedup.adapters import build_adapter, load_source
from joinedup.simulators import file_drops as fd
from joinedup.simulators.council import build_council

DAY = date(2024, 5, 1)


@pytest.fixture(scope="module")
def council():
    return build_council(1500, 11)


def folder(project: Path, source: str) -> Path:
    """The drop folder the council's source configuration names (shared by the file drops)."""
    path = project / "var" / load_source(project / "adapters" / f"{source}.yaml").options["drop_folder"]
    path.mkdir(parents=True, exist_ok=True)
    return path


def adapter(project: Path, source: str):
    return build_adapter(load_source(project / "adapters" / f"{source}.yaml"))


def run(project: Path, source: str) -> list:
    """Extract and acknowledge every page, as the pipeline does."""
    a = adapter(project, source)
    pages = []
    for page in a.extract(None):
        a.acknowledge(page)
        pages.append(page)
    return pages


def reason(project: Path, source: str, name: str) -> str:
    path = folder(project, source) / "rejected" / (name + ".reason.txt")
    assert (folder(project, source) / "rejected" / name).exists(), "the file itself must be kept in rejected/"
    return path.read_text(encoding="utf-8")


def accented(records: list[dict], fields: tuple[str, ...], n: int = 4) -> list[dict]:
    out = [dict(r) for r in records]
    for r in out[:n]:
        for f in fields:
            r[f] = "Siân Ó Müller"[: 30]
    return out


# -- social care XML ---------------------------------------------------------------------------
def test_socialcare_file_is_streamed_validated_and_moved(project, council) -> None:
    records = council.records["socialcare"]
    path = fd.write_socialcare_extract(records, folder(project, "socialcare"), DAY)
    pages = run(project, "socialcare")
    assert len(pages) == 1 and pages[0].origin == path.name
    assert [r["ClientId"] for r in pages[0].records] == [r["ClientId"] for r in records]
    assert pages[0].records == [{k: (v or None) for k, v in r.items()} for r in records]  # absent element = None
    assert not path.exists() and (path.parent / "processed" / path.name).exists()


@pytest.mark.parametrize("breaker, expected", [
    (fd.corrupt_malformed_xml, "not well-formed XML at line"),
    (fd.corrupt_truncate, "not well-formed XML at line"),
    (lambda p: p.write_text(p.read_text(encoding="utf-8").replace('recordCount="', 'recordCount="9'), encoding="utf-8"),
     "recordCount says 9"),
])
def test_broken_socialcare_files_are_rejected_with_a_reason(project, council, breaker, expected) -> None:
    path = fd.write_socialcare_extract(council.records["socialcare"], folder(project, "socialcare"), DAY)
    breaker(path)
    assert run(project, "socialcare") == []
    text = reason(project, "socialcare", path.name)
    assert expected in text


def test_xsd_violation_is_rejected_without_showing_the_value(project, council) -> None:
    records = [dict(r) for r in council.records["socialcare"]]
    records[2]["NHSNumber"] = "12345X7890"
    path = fd.write_socialcare_extract(records, folder(project, "socialcare"), DAY, validate=False)
    assert run(project, "socialcare") == []
    text = reason(project, "socialcare", path.name)
    assert "does not satisfy the XSD" in text and "NHSNumber" in text and "12345X7890" not in text


def test_mixed_encoding_xml_is_rejected(project, council) -> None:
    records = accented(council.records["socialcare"], ("GivenName",))
    path = fd.write_socialcare_extract(records, folder(project, "socialcare"), DAY)
    fd.corrupt_mixed_encoding(path)
    assert run(project, "socialcare") == []
    assert "Invalid bytes" in reason(project, "socialcare", path.name)


@pytest.mark.parametrize("attack", [fd.write_xxe_attack, fd.write_billion_laughs_attack])
def test_xxe_and_entity_bombs_are_refused_unexpanded(project, attack) -> None:
    path = attack(folder(project, "socialcare"), DAY)
    assert run(project, "socialcare") == []
    assert "DOCTYPE" in reason(project, "socialcare", path.name)
    landing = project / "var" / "landing"
    assert not landing.exists() or not any(landing.rglob("*.jsonl"))


def test_xml_memory_stays_bounded(project, council) -> None:
    """Records are cleared as they are read: the parser's tree never holds them all."""
    from lxml import etree

    path = fd.write_socialcare_extract(council.records["socialcare"] * 20, folder(project, "socialcare"), DAY,
                                       validate=False)
    a = adapter(project, "socialcare")
    a.options.count_attribute = None
    seen = []
    original = etree.iterparse

    def spy(*args, **kwargs):
        context = original(*args, **kwargs)
        for event, elem in context:
            if event == "end" and etree.QName(elem).localname == "Client":
                seen.append(sum(1 for _ in elem.itersiblings(preceding=True)))
            yield event, elem

    etree.iterparse = spy
    try:
        records = a.read_file(path)
    finally:
        etree.iterparse = original
    assert len(records) == len(council.records["socialcare"]) * 20
    assert max(seen) <= 1  # records already read were dropped from the tree (the parser reads ahead, not back)


# -- HR fixed width ----------------------------------------------------------------------------------
def test_hr_file_in_windows_1252_is_read_exactly(project, council) -> None:
    records = accented(council.records["hr"], ("SURNAME", "FORENAMES"))
    path = fd.write_hr_extract(records, folder(project, "hr"), DAY)
    raw = path.read_bytes()
    assert "Siân".encode("cp1252") in raw and "Siân".encode("utf-8") not in raw
    pages = run(project, "hr")
    got = pages[0].records
    assert len(got) == len(records)
    assert got[0]["SURNAME"] == "Siân Ó Müller" and got[0]["FORENAMES"] == "Siân Ó Müller"
    for mine, theirs in zip(got, records):
        assert mine == {k: (v.strip() or None) if v else None for k, v in theirs.items()}
    assert (path.parent / "processed" / path.name).exists()


@pytest.mark.parametrize("breaker, expected", [
    (fd.corrupt_truncate, "truncated"),
    (fd.corrupt_hr_trailer_count, "trailer says"),
    (lambda p: fd.corrupt_hr_trailer_count(p, delta=-1), "trailer says"),
    (fd.corrupt_mixed_encoding, "text in another encoding"),
])
def test_broken_hr_files_are_rejected_with_a_reason(project, council, breaker, expected) -> None:
    records = accented(council.records["hr"], ("SURNAME",), n=6)
    path = fd.write_hr_extract(records, folder(project, "hr"), DAY)
    breaker(path)
    assert run(project, "hr") == []
    text = reason(project, "hr", path.name)
    assert expected in text
    assert "Siân" not in text


def test_a_short_line_is_rejected(project, council) -> None:
    path = fd.write_hr_extract(council.records["hr"], folder(project, "hr"), DAY)
    lines = path.read_bytes().split(b"\r\n")
    lines[3] = lines[3][:100]
    path.write_bytes(b"\r\n".join(lines))
    assert run(project, "hr") == []
    assert "line 4 is 100 characters long" in reason(project, "hr", path.name)


def test_good_and_bad_files_in_one_drop(project, council) -> None:
    good = fd.write_hr_extract(council.records["hr"], folder(project, "hr"), date(2024, 5, 2))
    bad = fd.write_hr_extract(council.records["hr"], folder(project, "hr"), date(2024, 5, 3))
    fd.corrupt_hr_trailer_count(bad)
    pages = run(project, "hr")
    assert [p.origin for p in pages] == [good.name]
    assert (good.parent / "processed" / good.name).exists() and (bad.parent / "rejected" / bad.name).exists()
