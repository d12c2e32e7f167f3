"""The API's plain-Python features of one record equal the matcher's pandas ``standardise``.

Property-style: hypothesis builds canonical records from realistic pieces (names with
nicknames, accents, hyphens, apostrophes, upper case; dates in several forms including
placeholders; valid and invalid NI/NHS numbers, postcodes in any spacing and case, pseudo
postcodes; UPRNs with zero padding; e-mails and phones), blanks and missing fields, and
arbitrary text in every field; each record is standardised both ways and compared field by
field."""
from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings, strategies as st

from joinedup.api.record_features import comparison_features, record_features
from joinedup.mci.standardise import FEATURE_COLUMNS, standardise

GIVEN = ["William", "Bill", "BILL", "Siôn", "Dai", "Dafydd", "Gwenllïan", "Zoë", "Jean-Paul", "Mary Ann", "J",
         "o'neil", "Łukasz", "Margaret", "Peggy", "SiÃ´n", "", " ", "Elizabeth"]
FAMILY = ["Smith", "Smyth", "SMITH", "O'Brien", "OBrien", "Lloyd-Jones", "Lloyd Jones", "McDonald",
          "MacDonald", "ap Rhys", "de la Cruz", "Ng", "", "  ", "Pryce"]
DATES = ["1961-04-03", "1900-01-01", "1961-01-01", "1899-12-31", "2999-01-01", "1990-02-29", "1992-02-29",
         "03/04/1961", "not a date", "", "1961-13-01", "2024-06-30"]
NINO = ["AB123456C", "ab 12 34 56 c", "AB123456", "QQ123456C", "ZZ123456A", "TN010190M", "JK112233B", "", "X"]
NHS = ["9434765919", "943 476 5919", "9434765871", "0000000000", "9876543210", "12345", ""]
POSTCODE = ["AB12 3DX", "ab123dx", " ab12  3dx ", "ZZ99 3VZ", "BFPO 123", "CF10 1AA", "SW1A1AA", "not one",
            "GIR 0AA", ""]
UPRN = ["100023336956", "000100023336956", "0", "1234567890123", "12a", " 42 ", ""]
EMAIL = ["bill@example.org", " Bill@Example.ORG ", "nobody", "a@b", ""]
PHONE = ["02920871000", "+44 29 2087 1000", "07777777777", "0123", "(029) 2087-1000", ""]
LINES = ["14 High Street", "Flat 2, 14 High St", "Flat 2", "Rose Cottage", "3 Church Road", "", None]
SEX = ["M", "F", "m", "female", "1", "2", "9", "X", "U", ""]


def _field(examples: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.sampled_from(examples), st.text(max_size=12))


RECORDS = st.fixed_dictionaries({}, optional={
    "source_system": _field(["housing", "revenues", "socialcare", "hr"]),
    "source_key": _field(["HT000001", "500000001"]),
    "given_name": _field(GIVEN), "middle_names": _field(GIVEN), "family_name": _field(FAMILY),
    "previous_family_names": _field(["Jones", "Jones|Evans", "", "Smith-Jones"]),
    "date_of_birth": _field(DATES), "sex": _field(SEX), "title": _field(["Mr", "Mrs.", "miss", "Dr", "Mx", ""]),
    "ni_number": _field(NINO), "nhs_number": _field(NHS),
    "uprn": _field(UPRN), "address_line_1": _field(LINES[:-1]), "address_line_2": _field(LINES[:-1]),
    "postcode": _field(POSTCODE), "email": _field(EMAIL), "phone": _field(PHONE),
    "deceased_date": _field(["2024-01-02", "", " "]),
})


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so both paths compare by value and type."""
    return value.item() if hasattr(value, "item") else value


def _pandas_features(record: dict[str, Any]) -> dict[str, Any]:
    frame = pd.DataFrame([{**record, "record_id": 7}])
    return {k: _plain(v) for k, v in standardise(frame).iloc[0].to_dict().items()}


@given(record=RECORDS)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_same_features_as_the_matchers_standardise(record: dict[str, Any]) -> None:
    ours = record_features(record, record_id=7)
    theirs = _pandas_features(record)
    assert list(ours) == list(FEATURE_COLUMNS)
    for column in FEATURE_COLUMNS:
        assert (ours[column], type(ours[column])) == (theirs[column], type(theirs[column])), column


@given(record=RECORDS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_searchs_lean_features_are_the_full_features_columns(record: dict[str, Any]) -> None:
    """A search scores candidates with ``comparison_features``: the same values, fewer columns."""
    lean = comparison_features(record, record_id=7)
    full = record_features(record, record_id=7)
    assert {"given_name_std", "family_name_phonetic", "dob", "ni_key", "postcode", "email_std", "phone_std"} <= set(lean)
    assert lean == {column: full[column] for column in lean}


def test_bill_smyth_gives_the_keys_that_find_william_smith() -> None:
    bill = record_features({"given_name": "Bill", "family_name": "Smyth", "date_of_birth": "1961-04-03",
                            "postcode": "ab12 3dx"})
    william = record_features({"given_name": "William", "family_name": "Smith", "date_of_birth": "1961-04-03",
                               "postcode": "AB12 3DX"})
    assert "WILLIAM" in bill["given_name_roots"].split("|")
    assert bill["family_name_phonetic"] == william["family_name_phonetic"]
    assert (bill["dob"], bill["postcode"], bill["postcode_outward"]) == ("1961-04-03", "AB12 3DX", "AB12")


def test_missing_and_nan_fields_count_as_empty() -> None:
    empty = record_features({})
    assert empty == record_features({"given_name": float("nan"), "postcode": None})
    assert empty["deceased"] is False and empty["dob_is_placeholder"] is False
    assert all(empty[c] is None for c in FEATURE_COLUMNS if c not in ("record_id", "deceased", "dob_is_placeholder"))
