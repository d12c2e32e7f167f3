"""standardise(): canonical records -> the exact match-feature columns the matcher reads."""
from __future__ import annotations

import pandas as pd
import pytest

from joinedup.addresses import address_key
from joinedup.mci.standardise import FEATURE_COLUMNS, StandardiseError, standardise

EXPECTED_COLUMNS = [
    "record_id", "source_system", "source_key", "given_name_std", "given_name_roots",
    "given_initial", "middle_names_std", "family_name_std", "family_name_parts",
    "family_name_phonetic", "dob", "dob_year", "dob_is_placeholder", "sex", "ni_key",
    "nhs_number", "uprn", "postcode", "postcode_outward", "address_key", "email_std",
    "phone_std", "deceased",
]

RECORDS = [
    dict(record_id=11, source_system="housing", source_key="HT000001", title="Mr",
         given_name="Dafydd", middle_names="Rhys", family_name="Lloyd-Jones",
         previous_family_names=None, date_of_birth="1980-04-03", sex="M",
         ni_number="AB123456C", nhs_number="9434765919", uprn="000100023336956",
         address_line_1="Flat 2, 14 High St", address_line_2=None, postcode="cf10 1ep",
         email=" Dai.Jones@Example.ORG ", phone="+44 (0)29 2087 2087", deceased_date=None),
    dict(record_id=12, source_system="revenues", source_key="500000001", title=None,
         given_name="DAI", middle_names=None, family_name="LLOYD JONES",
         previous_family_names="Evans|O’Brien", date_of_birth="1900-01-01", sex="U",
         ni_number="QQ123456C", nhs_number="9434765871", uprn="0",
         address_line_1="2/14 High Street", address_line_2="Cathays", postcode="ZZ99 3VZ",
         email="n/a", phone="0000", deceased_date="2024-02-01"),
    dict(record_id=13, source_system="hr", source_key="E0000003", title=None,
         given_name="Siôn", middle_names="", family_name="McDonald",
         previous_family_names="", date_of_birth="1975-01-01", sex="F",
         ni_number="ab 12 34 56", nhs_number=None, uprn=None,
         address_line_1=None, address_line_2=None, postcode="BFPO 105",
         email=None, phone="07777777777", deceased_date=""),
    dict(record_id=14, source_system="socialcare", source_key="SC0000004", title=None,
         given_name=None, middle_names=None, family_name=None, previous_family_names=None,
         date_of_birth=None, sex=None, ni_number="TN010180M", nhs_number="0000000000",
         uprn="abc", address_line_1=None, address_line_2=None, postcode=None,
         email=None, phone=None, deceased_date=None),
]


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return standardise(pd.DataFrame(RECORDS))


def row(features: pd.DataFrame, record_id: int) -> dict:
    return features.set_index("record_id").loc[record_id].to_dict()


def test_columns_are_exactly_the_contract(features):
    assert list(features.columns) == EXPECTED_COLUMNS == list(FEATURE_COLUMNS)
    assert features["record_id"].tolist() == [11, 12, 13, 14]
    assert len(features) == len(RECORDS)


def test_string_columns_hold_none_not_nan(features):
    for col in EXPECTED_COLUMNS:
        if col in ("record_id", "dob_is_placeholder", "deceased"):
            continue
        assert features[col].dtype == object, col
        for v in features[col]:
            assert v is None or isinstance(v, (str, int)), (col, v)
            assert not (isinstance(v, float)), (col, v)
    assert features["dob_is_placeholder"].dtype == bool
    assert features["deceased"].dtype == bool


def test_full_record(features):
    r = row(features, 11)
    assert r["source_system"] == "housing" and r["source_key"] == "HT000001"
    assert r["given_name_std"] == "DAFYDD"
    assert r["given_name_roots"] == "DAFYDD|DAVID"
    assert r["given_initial"] == "D"
    assert r["middle_names_std"] == "RHYS"
    assert r["family_name_std"] == "LLOYD JONES"
    assert r["family_name_parts"] == "JONES|LLOYD|LLOYDJONES"
    assert r["family_name_phonetic"] == "L325"
    assert r["dob"] == "1980-04-03" and r["dob_year"] == 1980 and r["dob_is_placeholder"] is False
    assert r["sex"] == "M"
    assert r["ni_key"] == "AB123456"
    assert r["nhs_number"] == "9434765919"
    assert r["uprn"] == "100023336956"
    assert r["postcode"] == "CF10 1EP" and r["postcode_outward"] == "CF10"
    assert r["address_key"] == "CF101EP|2|14|HIGH STREET" == address_key("Flat 2, 14 High St", None, "CF10 1EP")
    assert r["email_std"] == "dai.jones@example.org"
    assert r["phone_std"] == "02920872087"
    assert r["deceased"] is False


def test_invalid_and_placeholder_values_are_not_evidence(features):
    r = row(features, 12)
    assert r["given_name_roots"] == "DAI|DAVID"  # shares DAVID with Dafydd
    assert r["family_name_std"] == "LLOYD JONES"
    assert r["family_name_parts"] == "EVANS|JONES|LLOYD|LLOYDJONES|OBRIEN"
    assert r["dob"] is None and r["dob_year"] is None and r["dob_is_placeholder"] is True
    assert r["sex"] is None  # U is not evidence
    assert r["ni_key"] is None and r["nhs_number"] is None and r["uprn"] is None
    assert r["postcode"] is None and r["postcode_outward"] is None  # ZZ99: no fixed abode
    assert r["address_key"] == "|2|14|HIGH STREET"
    assert r["email_std"] is None and r["phone_std"] is None
    assert r["deceased"] is True


def test_first_of_january_keeps_only_the_year(features):
    r = row(features, 13)
    assert r["dob"] is None and r["dob_year"] == 1975 and r["dob_is_placeholder"] is True
    assert r["given_name_std"] == "SION" and "JOHN" in r["given_name_roots"].split("|")
    assert r["family_name_phonetic"] == "M235"
    assert r["middle_names_std"] is None
    assert r["ni_key"] == "AB123456"  # valid without its suffix
    assert r["postcode"] is None  # BFPO does not locate a home
    assert r["address_key"] is None
    assert r["phone_std"] is None  # 07777777777 is a filler
    assert r["deceased"] is False  # blank date is not a death
    assert r["sex"] == "F"


def test_empty_record(features):
    r = row(features, 14)
    for col in EXPECTED_COLUMNS:
        if col in ("record_id", "source_system", "source_key"):
            continue
        if col in ("dob_is_placeholder", "deceased"):
            assert r[col] is False or r[col] == False  # noqa: E712
        else:
            assert r[col] is None, col


def test_missing_columns_count_as_empty_and_index_is_kept():
    frame = pd.DataFrame({"record_id": [5, 6], "source_system": ["hr", "hr"],
                          "source_key": ["A", "B"], "family_name": ["o'brien", None]},
                         index=[100, 200])
    out = standardise(frame)
    assert list(out.index) == [100, 200]
    assert out.loc[100, "family_name_std"] == "OBRIEN"
    assert out.loc[200, "family_name_std"] is None
    assert out["given_name_std"].tolist() == [None, None]


def test_empty_frame():
    out = standardise(pd.DataFrame({"record_id": pd.Series([], dtype="int64")}))
    assert list(out.columns) == EXPECTED_COLUMNS
    assert len(out) == 0


def test_record_id_is_required():
    with pytest.raises(StandardiseError, match="record_id"):
        standardise(pd.DataFrame({"source_key": ["A"]}))


def test_repeated_values_give_identical_features():
    frame = pd.DataFrame([RECORDS[0] | {"record_id": i, "source_key": f"K{i}"} for i in range(50)])
    out = standardise(frame)
    for col in ("given_name_roots", "family_name_parts", "address_key", "dob", "ni_key"):
        assert out[col].nunique() == 1, col


def test_a_gendered_title_gives_the_sex_only_where_none_is_recorded() -> None:
    """Council tax and housing hold a title, not a sex: Mr/Miss tell opposite-sex twins apart."""
    frame = pd.DataFrame([
        {"record_id": 1, "title": "Mr", "sex": None},
        {"record_id": 2, "title": "Miss", "sex": "M"},   # the recorded sex wins over the title
        {"record_id": 3, "title": "Dr", "sex": None},    # a title that does not say
        {"record_id": 4, "title": "mrs.", "sex": None},
        {"record_id": 5, "title": None, "sex": "2"},
        {"record_id": 6, "title": " Ms ", "sex": "U"},   # "unknown" recorded: the title says
        {"record_id": 7, "title": "Mx", "sex": None},
        {"record_id": 8, "title": "Rev", "sex": None},
    ])
    assert standardise(frame)["sex"].tolist() == ["M", "M", None, "F", "F", "F", None, None]
