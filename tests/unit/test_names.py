"""Name parsing, normalisation, variants, Soundex and display case."""
from __future__ import annotations

import pytest

from joinedup import names
from joinedup.names import ParsedName


@pytest.mark.parametrize("raw,expected", [
    ("Mr John A. Smith", ParsedName("Mr", "John", "A.", "Smith")),
    ("SMITH, John", ParsedName(None, "John", None, "SMITH")),
    ("Smith, Mr John Andrew", ParsedName("Mr", "John", "Andrew", "Smith")),
    ("Dr. Siân Lloyd-Jones", ParsedName("Dr", "Siân", None, "Lloyd-Jones")),
    ("Juan de la Cruz", ParsedName(None, "Juan", None, "de la Cruz")),
    ("Dafydd ap Gwilym", ParsedName(None, "Dafydd", None, "ap Gwilym")),
    ("Mrs Mary Jane O’Brien", ParsedName("Mrs", "Mary", "Jane", "O’Brien")),
    ("John Smith Jr", ParsedName(None, "John", None, "Smith")),
    ("  rev   gwilym   ap   rhys  ", ParsedName("Rev", "gwilym", None, "ap rhys")),
    ("Smith", ParsedName(None, None, None, "Smith")),
    ("", ParsedName(None, None, None, None)),
    (None, ParsedName(None, None, None, None)),
])
def test_parse_full_name(raw, expected):
    assert names.parse_full_name(raw) == expected


def test_normalise_title():
    assert names.normalise_title("MR.") == "Mr"
    assert names.normalise_title("revd") == "Rev"
    assert names.normalise_title("Viscount") == "Viscount"
    assert names.normalise_title(" ") is None


@pytest.mark.parametrize("raw,expected", [
    ("Siôn", "SION"),
    ("Gwenllïan", "GWENLLIAN"),
    ("O'Brien", "OBRIEN"),
    ("O’Brien", "OBRIEN"),  # Windows-1252 curly apostrophe
    ("OBRIEN", "OBRIEN"),
    ("Lloyd-Jones", "LLOYD JONES"),
    ("Lloyd  Jones", "LLOYD JONES"),
    ("Zoë", "ZOE"),
    ("Łukasz", "LUKASZ"),
    ("Strauß", "STRAUSS"),
    ("SiÃ´n", "SION"),  # UTF-8 read as Windows-1252
    ("José", "JOSE"),
    ("McDonald", "MCDONALD"),
    ("MacDonald", "MACDONALD"),
    ("J.", "J"),
    ("123", None),
    ("  ", None),
    (None, None),
])
def test_normalise_name(raw, expected):
    assert names.normalise_name(raw) == expected


def test_mc_and_mac_are_distinct_but_comparable():
    assert names.normalise_name("McDonald") != names.normalise_name("MacDonald")
    assert names.soundex("McDonald") == names.soundex("MacDonald") == "M235"


def test_fix_mojibake_leaves_good_text_alone():
    assert names.fix_mojibake("Siôn") == "Siôn"
    assert names.fix_mojibake("Ã…ngstrÃ¶m") == "Ångström"
    assert names.fix_mojibake("Ãlvaro") == "Ãlvaro"  # not a clean round-trip: kept


@pytest.mark.parametrize("raw,expected", [
    ("Lloyd-Jones", ["LLOYD", "JONES"]),
    ("Lloyd Jones", ["LLOYD", "JONES"]),
    ("de la Cruz", ["CRUZ"]),
    ("van der Berg", ["BERG"]),
    ("Smith", ["SMITH"]),
    (None, []),
])
def test_split_family_name(raw, expected):
    assert names.split_family_name(raw) == expected


def test_family_name_parts_include_previous_names():
    assert names.family_name_parts("Lloyd-Jones", "Evans|de la Cruz") == [
        "CRUZ", "DELACRUZ", "EVANS", "JONES", "LLOYD", "LLOYDJONES"]
    assert names.family_name_parts("Smith") == ["SMITH"]
    assert names.family_name_parts(None, "Evans") == ["EVANS"]
    assert names.family_name_parts(None) == []
    # hyphenated and unhyphenated spellings share their parts
    assert set(names.family_name_parts("Lloyd Jones")) == set(names.family_name_parts("LLOYD-JONES"))


@pytest.mark.parametrize("a,b", [
    ("Dafydd", "David"), ("Dai", "Dafydd"), ("Dave", "Dai"), ("Siôn", "John"), ("Sion", "Jack"),
    ("Ieuan", "Evan"), ("Gwilym", "William"), ("Gwilym", "Bill"), ("Peggy", "Margaret"),
    ("Bill", "William"), ("Jack", "John"), ("Harry", "Henry"), ("Sandy", "Alexander"),
    ("Huw", "Hugh"), ("Bethan", "Elizabeth"), ("Will", "Bill"), ("Nick", "Nicholas"),
])
def test_name_variants_share_a_root(a, b):
    assert names.name_roots(a) & names.name_roots(b), (a, b)


@pytest.mark.parametrize("a,b", [("John", "Mary"), ("David", "William"), ("Evan", "Ian"),
                                 ("Sarah", "Susan"), ("Owen", "Evan")])
def test_different_names_do_not_share_a_root(a, b):
    assert not names.name_roots(a) & names.name_roots(b), (a, b)


def test_name_roots_contains_itself_normalised():
    assert "SION" in names.name_roots("Siôn")
    assert names.name_roots("Zebedee-Quux") == frozenset({"ZEBEDEE"})
    assert names.name_roots("Mary Ann") >= {"MARY"}
    assert names.name_roots("") == frozenset()
    assert names.name_roots(None) == frozenset()


@pytest.mark.parametrize("raw,expected", [
    ("Robert", "R163"), ("Rupert", "R163"), ("Ashcraft", "A261"), ("Tymczak", "T522"),
    ("Pfister", "P236"), ("Honeyman", "H555"), ("Lee", "L000"), ("O'Brien", "O165"),
    ("Lloyd-Jones", "L325"), ("Smith", "S530"), ("Schmidt", "S530"), (None, None), ("", None),
])
def test_soundex(raw, expected):
    assert names.soundex(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("MCDONALD", "McDonald"),
    ("macdonald", "MacDonald"),
    ("MACK", "Mack"),
    ("MACHIN", "Machin"),
    ("o'brien", "O'Brien"),
    ("O’BRIEN", "O'Brien"),
    ("D'ARCY", "D'Arcy"),
    ("LLOYD-JONES", "Lloyd-Jones"),
    ("DE LA CRUZ", "de la Cruz"),
    ("DAFYDD AP GWILYM", "Dafydd ap Gwilym"),
    ("SIÔN", "Siôn"),
    ("gwenllïan", "Gwenllïan"),
    ("MacKenzie", "MacKenzie"),  # mixed case is the source's spelling
    ("Mackenzie", "Mackenzie"),
    ("  JOHN   SMITH ", "John Smith"),
    ("SiÃ´n", "Siôn"),
    ("", None),
    (None, None),
])
def test_title_case_name(raw, expected):
    assert names.title_case_name(raw) == expected


def test_pandas_na_is_not_a_name():
    import pandas as pd

    assert names.normalise_name(pd.NA) is None
    assert names.title_case_name(pd.NA) is None
    assert names.parse_full_name(pd.NA) == ParsedName(None, None, None, None)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_normalise_name_is_idempotent_and_plain(text):
    once = names.normalise_name(text)
    assert names.normalise_name(once) == once
    if once is not None:
        assert once == once.strip() and "  " not in once
        assert all(ch == " " or "A" <= ch <= "Z" for ch in once)
