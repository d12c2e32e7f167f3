"""UK identifier rules, checked against the published test values in UK-REFERENCE.md."""
from __future__ import annotations

import random

import pytest
from stdnum.gb import nhs as stdnum_nhs
from stdnum.gb import upn as stdnum_upn

from joinedup import identifiers as ids


# --- NI number ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("ab 12 34 56 c", "AB123456C"),
    (" AB-123456-C ", "AB123456C"),
    ("AB123456", "AB123456"),
    ("", None),
    ("   ", None),
    (None, None),
    ("not a nino!", "NOTANINO!"),
])
def test_normalise_nino(raw, expected):
    assert ids.normalise_nino(raw) == expected


@pytest.mark.parametrize("value", ["AB123456C", "ab 12 34 56 d", "JG103759A", "CE123456", "PW999999B"])
def test_valid_ninos(value):
    assert ids.is_valid_nino(value)


@pytest.mark.parametrize("value", [
    "QQ123456C",  # the GOV.UK example: Q is never a first letter
    "BG123456A", "GB123456A", "KN123456A", "NK123456A", "NT123456A", "ZZ123456A",  # never issued
    "TN010180M",  # legacy temporary number (DDMMYY + sex)
    "TN010180F",
    "DA123456A", "FA123456A", "IA123456A", "UA123456A", "VA123456A",  # bad first letter
    "AO123456A", "AD123456A",  # bad second letter
    "AB123456E",  # suffix beyond D
    "AB12345C", "AB1234567C", "A1123456C", "", None,
])
def test_invalid_ninos(value):
    assert not ids.is_valid_nino(value)


def test_nino_key_ignores_suffix_and_refuses_invalid():
    assert ids.nino_key("AB 12 34 56 C") == "AB123456"
    assert ids.nino_key("AB123456") == "AB123456"
    assert ids.nino_key("AB123456C") == ids.nino_key("AB123456D")
    assert ids.nino_key("QQ123456C") is None
    assert ids.nino_key("TN010180M") is None


# --- NHS number --------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["9434765919", "9876543210", "943 476 5919", "943-476-5919"])
def test_valid_nhs_numbers(value):
    assert ids.is_valid_nhs_number(value)


@pytest.mark.parametrize("value", [
    "9434765871", "943476591", "94347659190", "94347659A9", "", None,
    *[str(d) * 10 for d in range(10)],
])
def test_invalid_nhs_numbers(value):
    assert not ids.is_valid_nhs_number(value)


def test_nhs_number_normalise_and_test_range():
    assert ids.normalise_nhs_number(" 943 476 5919 ") == "9434765919"
    assert ids.is_test_nhs_number("9990000018")
    assert not ids.is_test_nhs_number("9434765919")


def test_nhs_check_agrees_with_stdnum_except_repeated_digits():
    rng = random.Random(7)
    for _ in range(3000):
        n = f"{rng.randrange(10**10):010d}"
        expected = stdnum_nhs.is_valid(n) and len(set(n)) > 1
        assert ids.is_valid_nhs_number(n) == expected, n


# --- UPN ---------------------------------------------------------------------------------

def test_upn_reference_values():
    assert ids.is_valid_upn("B801200005001")
    assert not ids.is_valid_upn("A801200005001")
    assert ids.is_valid_upn(" b801 2000 05001 ")
    assert not ids.is_valid_upn("B80120000500")
    assert not ids.is_valid_upn("I801200005001")
    assert not ids.is_valid_upn(None)


def test_upn_temporary_number_ending_in_letter():
    body = "80120000500A"
    upn = ids.upn_check_letter(body) + body
    assert ids.is_valid_upn(upn)
    wrong = next(c for c in "ABCDEFGH" if c != upn[0])
    assert not ids.is_valid_upn(wrong + body)


def test_upn_check_letter_agrees_with_stdnum():
    rng = random.Random(3)
    for _ in range(500):
        body = "801" + "".join(rng.choice("0123456789") for _ in range(9))
        assert ids.upn_check_letter(body) + body == stdnum_upn.validate(
            stdnum_upn.calc_check_digit(body) + body)


# --- UPRN --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("000100023336956", "100023336956"),
    ("100023336956", "100023336956"),
    (" 1 ", "1"),
    ("100023336956.0", "100023336956"),
    (100023336956, "100023336956"),
    (100023336956.0, "100023336956"),
    ("0000", "0"),
    ("abc12", "ABC12"),
    ("", None),
])
def test_normalise_uprn(raw, expected):
    assert ids.normalise_uprn(raw) == expected


def test_uprn_validity_range():
    assert ids.is_valid_uprn("1")
    assert ids.is_valid_uprn("999999999999")
    assert ids.is_valid_uprn("000000000000123")
    assert not ids.is_valid_uprn("0")
    assert not ids.is_valid_uprn("1000000000000")
    assert not ids.is_valid_uprn("12A")
    assert not ids.is_valid_uprn("-5")
    assert not ids.is_valid_uprn(None)


# --- Postcode ----------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("sw1a1aa", "SW1A 1AA"),
    ("  SW1A   1AA ", "SW1A 1AA"),
    ("m11ae", "M1 1AE"),
    ("cf10 1ep", "CF10 1EP"),
    ("gir0aa", "GIR 0AA"),
    ("bfpo  105", "BFPO 105"),
    ("BFPO1234", "BFPO 1234"),
    ("zz993vz", "ZZ99 3VZ"),
    ("AB1", "AB1"),
    ("", None),
])
def test_normalise_postcode(raw, expected):
    assert ids.normalise_postcode(raw) == expected


@pytest.mark.parametrize("value", ["SW1A 1AA", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT",
                                   "EC1A 1BB", "W1A 0AX", "CF10 1EP", "GIR 0AA", "ll57 2dg"])
def test_valid_postcodes(value):
    assert ids.is_valid_postcode(value)
    assert ids.is_valid_postcode(value, allow_special=False)
    assert not ids.is_special_postcode(value)


@pytest.mark.parametrize("value", ["ZZ99 3VZ", "ZZ99 3WZ", "ZZ99 1AB", "BFPO 105", "BFPO 1234"])
def test_special_postcodes_valid_only_when_allowed(value):
    assert ids.is_valid_postcode(value)
    assert ids.is_special_postcode(value)
    assert not ids.is_valid_postcode(value, allow_special=False)


@pytest.mark.parametrize("value", ["QA1 1AA", "V1 1AA", "SW1A 1CA", "AB12", "12345",
                                   "BFPO 12345", "BFPO", "XX", "", None])
def test_invalid_postcodes(value):
    assert not ids.is_valid_postcode(value)


def test_postcode_outward_and_compact():
    assert ids.postcode_outward("sw1a1aa") == "SW1A"
    assert ids.postcode_outward("M1 1AE") == "M1"
    assert ids.postcode_outward("BFPO 105") == "BFPO"
    assert ids.postcode_outward("QA1 1AA") is None
    assert ids.postcode_compact("sw1a 1aa") == "SW1A1AA"
    assert ids.is_pseudo_postcode("zz99 3vz")
    assert not ids.is_pseudo_postcode("BFPO 105")


def test_email_plausibility():
    assert ids.is_plausible_email(" A.B@Example.org ")
    assert not ids.is_plausible_email("no-at-sign.example.org")
    assert not ids.is_plausible_email("a@b")
    assert not ids.is_plausible_email(None)


def test_missing_values_of_every_kind_are_missing():
    import math

    import pandas as pd

    for value in (None, math.nan, pd.NA, pd.NaT):
        assert ids.is_missing(value)
        assert ids.normalise_nino(value) is None
        assert ids.normalise_postcode(value) is None
        assert not ids.is_valid_nhs_number(value)
    for value in ("", "x", 0, 1.5):
        assert not ids.is_missing(value)


# --- properties --------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_postcode_and_nino_normalisation_is_idempotent(text):
    once = ids.normalise_postcode(text)
    assert ids.normalise_postcode(once) == once
    n = ids.normalise_nino(text)
    assert ids.normalise_nino(n) == n


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_every_nhs_body_has_at_most_one_valid_check_digit(body):
    valid = [d for d in "0123456789" if ids.is_valid_nhs_number(body + d)]
    assert len(valid) <= 1
