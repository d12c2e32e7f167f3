"""The named mapping transforms, on the edge cases councils' data really has."""
from __future__ import annotations

import pandas as pd
import pytest

from joinedup.mapping.transforms import TRANSFORMS, UnknownTransform, get_transform


def run(name: str, values: list, **params) -> list:
    out = get_transform(name)(pd.Series(values, dtype=object), **params)
    assert len(out) == len(values)
    assert out.dtype == object
    return [None if v is None or (isinstance(v, float) and pd.isna(v)) else v for v in out]


def test_registry_lists_the_new_transforms():
    for name in ["parse_date", "parse_datetime", "normalise_postcode", "normalise_nino",
                 "normalise_nhs_number", "normalise_uprn", "title_case_name", "normalise_title",
                 "code_lookup", "split_name", "digits_only", "normalise_phone", "normalise_email",
                 "trim", "upper", "lower"]:
        assert name in TRANSFORMS
    with pytest.raises(UnknownTransform, match="known: .*parse_date"):
        get_transform("parse_nin")


def test_transform_keeps_the_index():
    s = pd.Series(["sw1a1aa", None], index=[10, 20], dtype=object)
    out = get_transform("normalise_postcode")(s)
    assert list(out.index) == [10, 20]
    assert out[10] == "SW1A 1AA" and out[20] is None


def test_parse_date():
    assert run("parse_date", ["03/04/1980", "31/12/1999", "1980-04-03", "31/02/1980", "", None, " 01/01/1900 "],
               formats=["%d/%m/%Y"]) == ["1980-04-03", "1999-12-31", None, None, None, None, "1900-01-01"]
    assert run("parse_date", ["19800403", "1980-04-03"], formats=["%Y%m%d", "%Y-%m-%d"]) == [
        "1980-04-03", "1980-04-03"]
    assert run("parse_date", ["19800403"], formats="%Y%m%d") == ["1980-04-03"]
    with pytest.raises(TypeError, match="formats"):
        run("parse_date", ["x"], formats=[])


def test_parse_datetime():
    assert run("parse_datetime", ["2024-05-01T10:11:12Z", "20240501101112", "nope"],
               formats=["%Y-%m-%dT%H:%M:%S%z", "%Y%m%d%H%M%S"]) == [
        "2024-05-01T10:11:12+00:00", "2024-05-01T10:11:12", None]


def test_normalise_postcode_specials():
    assert run("normalise_postcode", ["gir0aa", "bfpo 105", "BFPO1234", "zz99 3vz", "cf10\u00a01ep", "x"]) == [
        "GIR 0AA", "BFPO 105", "BFPO 1234", "ZZ99 3VZ", "CF10 1EP", "X"]


def test_normalise_nino_keeps_invalid_values_tidied():
    assert run("normalise_nino", ["ab 12 34 56 c", "QQ 12 34 56 C", "TN 01 01 80 M", "n/a", "  "]) == [
        "AB123456C", "QQ123456C", "TN010180M", "NA", None]


def test_normalise_nhs_and_uprn():
    assert run("normalise_nhs_number", ["943 476 5919", "943-476-5871"]) == ["9434765919", "9434765871"]
    assert run("normalise_uprn", ["000100023336956", "100023336956.0", "12 34"]) == [
        "100023336956", "100023336956", "1234"]


def test_title_case_name_edge_cases():
    assert run("title_case_name", ["MCDONALD", "o'brien", "O’BRIEN", "LLOYD-JONES", "DE LA CRUZ",
                                   "SIÔN", "GWENLLÏAN", "JOSÉ", "MacKenzie", "", None]) == [
        "McDonald", "O'Brien", "O'Brien", "Lloyd-Jones", "de la Cruz", "Siôn", "Gwenllïan", "José",
        "MacKenzie", None, None]


def test_title_case_name_on_windows_1252_text():
    raw = "SIÔN O’BRIEN-RENÉ".encode("cp1252").decode("cp1252")  # what an HR extract gives
    assert run("title_case_name", [raw]) == ["Siôn O'Brien-René"]


def test_normalise_title():
    assert run("normalise_title", ["MR.", "mrs", "Revd", "Dr", "Viscount"]) == ["Mr", "Mrs", "Rev", "Dr", "Viscount"]


def test_code_lookup():
    codes = {1: "M", "2": "F", "9": "U"}  # YAML may give int keys
    assert run("code_lookup", ["1", "2", " 9 ", "7", None], codes=codes) == ["M", "F", "U", None, None]
    assert run("code_lookup", ["7"], codes=codes, default="U") == ["U"]
    assert run("code_lookup", ["male", "FEMALE"], codes={"Male": "M", "Female": "F"}) == ["M", "F"]
    with pytest.raises(TypeError, match="codes"):
        run("code_lookup", ["1"], codes=[])


@pytest.mark.parametrize("part,expected", [
    ("title", ["Mr", None, "Dr", None]),
    ("given", ["John", "John", "Siân", "Dafydd"]),
    ("middle", ["A.", None, None, None]),
    ("family", ["Smith", "SMITH", "Lloyd-Jones", "ap Gwilym"]),
])
def test_split_name(part, expected):
    assert run("split_name", ["Mr John A. Smith", "SMITH, John", "Dr. Siân Lloyd-Jones", "Dafydd ap Gwilym"],
               part=part) == expected


def test_split_name_rejects_unknown_part():
    with pytest.raises(TypeError, match="part must be one of"):
        run("split_name", ["John Smith"], part="surname")


def test_digits_only():
    assert run("digits_only", ["HT-001234", "abc", "０１２"]) == ["001234", None, None]


def test_normalise_phone():
    assert run("normalise_phone", ["+44 (0)20 7946 0958", "0044 20 7946 0958", "020-7946-0958",
                                   "07700 900123", "+447700900123", "020 7946 0958 ext 12",
                                   "+33 1 42 68 53 00", "7946 0958", "n/k"]) == [
        "02079460958", "02079460958", "02079460958", "07700900123", "07700900123",
        "02079460958", "+33142685300", "79460958", None]


def test_normalise_email():
    assert run("normalise_email", ["  John.Smith@Example.ORG ", "mailto:A@B.CO.UK", "<x@y.z>"]) == [
        "john.smith@example.org", "a@b.co.uk", "x@y.z"]


def test_pandas_missing_markers_become_none():
    s = pd.Series(["ab123456c", pd.NA, float("nan"), None, "  "], dtype=object)
    assert run("normalise_nino", list(s)) == ["AB123456C", None, None, None, None]
    assert run("title_case_name", [pd.NA]) == [None]
