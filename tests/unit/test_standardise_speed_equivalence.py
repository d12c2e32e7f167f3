"""standardise()'s fast paths give byte-for-byte the features of the plain one-value rules.

Why: standardise feeds the stored match index (FEATURES_VERSION is unchanged), so its
speed-ups (distinct pairs found on integer codes, each address line tokenised once,
already-normal e-mail addresses and national phone numbers taken as they are, one word
lookup in the address tokeniser) must not change one value or one type. The reference here
applies the one-value functions row by row, with the general identifier rules (never the
fast paths), on a few thousand synthetic council records plus hostile values.
"""
from __future__ import annotations

import functools
import math
import random
import re
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joinedup import identifiers as ids
from joinedup import addresses as addr
from joinedup.mci import standardise as std
from joinedup.names import normalise_name, soundex

HOSTILE = ["", " ", "  \t", "\n", None, float("nan"), "ÉÈ ôü", "Ō’Brien-Smith", "０７７００９００１２３",
           "07700 900123", "+44 (0)7700 900123", "0044 7700 900123", "07777777777", "07700900123",
           "Dai.Jones@Example.ORG", " x@y.z ", "mailto:a@b.co", "<a@b.co>", "a@b", "İstanbul@x.tr",
           "Flat 2, 14 High St", "2/14 High Street", "٣ High St", "14 A St Mary's Rd", "St",
           "Ground Floor Flat", "Rose Cottage, 3 Mill Lane", "FLAT", "14-16 The Parade", "=1+2",
           "Apt B, 7 Ffordd Ŵ", "1900-01-01", "31/12/1999", "2099-01-01", "AB123456C", "M", "2",
           "Mrs", "Dr", "000100023336956", "cf10 1ep", "ZZ99 3VZ", "BFPO 105", "\u00a0Siân\u00a0"]

FIELDS = ["title", "given_name", "middle_names", "family_name", "previous_family_names",
          "date_of_birth", "sex", "ni_number", "nhs_number", "uprn", "address_line_1",
          "address_line_2", "postcode", "email", "phone", "deceased_date"]


@functools.lru_cache(maxsize=1)
def _council(residents: int = 2000) -> pd.DataFrame:
    from benchmarks.mci_bench import canonical_frames
    from joinedup.simulators.council import build_council

    frames, _ = canonical_frames(build_council(2000, seed=11))
    records = pd.concat(list(frames.values()), ignore_index=True)
    rng = random.Random(5)
    hostile = []
    for i in range(600):  # hostile values in every field, alone and mixed with real ones
        row = records.iloc[rng.randrange(len(records))].to_dict()
        for field in rng.sample(FIELDS, rng.randrange(1, 6)):
            row[field] = rng.choice(HOSTILE)
        row["source_key"] = f"H{i}"
        hostile.append(row)
    records = pd.concat([records, pd.DataFrame(hostile)], ignore_index=True)
    records["record_id"] = range(len(records))
    return records


def _council_records() -> pd.DataFrame:
    return _council().copy()


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _one(fn, v):  # noqa: ANN001
    return None if _missing(v) else fn(v)


def _email_reference(v: Any) -> Any:
    n = ids.normalise_email(v)
    return n if n is not None and ids.is_plausible_email(n) else None


def _phone_reference(v: Any) -> Any:
    n = ids.normalise_phone(v)
    if n is None:
        return None
    digits = n.lstrip("+")
    return None if len(digits) < 10 or len(set(digits[1:])) == 1 else n


def _reference_row(r: dict) -> dict:
    g = None if _missing(r.get("given_name")) else r["given_name"]
    fam = None if _missing(r.get("family_name")) else r["family_name"]
    prev = None if _missing(r.get("previous_family_names")) else r["previous_family_names"]
    given_std = _one(normalise_name, g)
    family_std = _one(normalise_name, fam)
    dob = _one(std.dob_parts, r.get("date_of_birth")) or (None, None, False)
    sex = _one(std.sex_code, r.get("sex"))
    if sex is None:
        sex = _one(std.sex_from_title, r.get("title"))
    postcode = _one(std.home_postcode, r.get("postcode"))
    l1, l2 = (None if _missing(r.get(k)) else r[k] for k in ("address_line_1", "address_line_2"))
    return {
        "record_id": r["record_id"], "source_system": _one(str, r["source_system"]),
        "source_key": _one(str, r["source_key"]),
        "given_name_std": given_std, "given_name_roots": _one(std.given_roots, g),
        "given_initial": _one(std._first_char, given_std),
        "middle_names_std": _one(normalise_name, r.get("middle_names")),
        "family_name_std": family_std, "family_name_parts": std.family_parts(fam, prev),
        "family_name_phonetic": _one(soundex, family_std),
        "dob": dob[0], "dob_year": dob[1], "dob_is_placeholder": dob[2], "sex": sex,
        "ni_key": _one(ids.nino_key, r.get("ni_number")),
        "nhs_number": _one(std.nhs_std, r.get("nhs_number")),
        "uprn": _one(std.uprn_std, r.get("uprn")),
        "postcode": postcode, "postcode_outward": _one(lambda p: p.split(" ", 1)[0], postcode),
        "address_key": std.address_key_of(postcode, std.address_lines_key(l1, l2)),
        "email_std": _one(_email_reference, r.get("email")),
        "phone_std": _one(_phone_reference, r.get("phone")),
        "deceased": bool(_one(lambda v: bool(str(v).strip()), r.get("deceased_date"))),
    }


def _assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert list(got.dtypes) == list(expected.dtypes)
    for column in got.columns:
        for i, (a, b) in enumerate(zip(got[column].tolist(), expected[column].tolist())):
            assert type(a) is type(b) and (a == b or (a is None and b is None)), (column, i)


def test_standardise_matches_the_row_by_row_rules_on_a_council_with_hostile_values() -> None:
    records = _council_records()
    assert len(records) > 2400
    got = std.standardise(records)
    rows = [_reference_row(r) for r in records.to_dict("records")]
    types = {"record_id": "int64", "dob_is_placeholder": bool, "deceased": bool}
    expected = pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=types.get(c, object))
                             for c in std.FEATURE_COLUMNS})
    expected.index = got.index
    _assert_same_frame(got, expected)
    # the fast paths were taken (otherwise this test proves nothing about them)
    assert sum(1 for v in records["email"] if isinstance(v, str) and std._PLAIN_EMAIL.fullmatch(v)) > 100
    assert sum(1 for v in records["phone"] if isinstance(v, str) and std._NATIONAL_PHONE.fullmatch(v)) > 100


def test_a_shuffled_and_reindexed_frame_gives_the_same_rows() -> None:
    records = _council_records().sample(frac=1.0, random_state=3)
    records.index = range(1000, 1000 + len(records))
    got = std.standardise(records)
    alone = pd.concat([std.standardise(records.iloc[[i]]) for i in range(0, len(records), 97)])
    _assert_same_frame(got.loc[alone.index], alone)


@pytest.mark.parametrize("value", HOSTILE + ["A.B@C.CO.UK", "a_b%c+d@e-f.g-h", "02920872087",
                                             "0292087208", "00201234567", "01111111111"])
def test_email_and_phone_fast_paths_agree_with_the_general_rules(value: Any) -> None:
    if _missing(value):
        return
    assert std.email_std(value) == _email_reference(value)
    assert std.phone_std(value) == _phone_reference(value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789+() -x.", max_size=20))
def test_phone_fast_path_on_generated_numbers(value: str) -> None:
    assert std.phone_std(value) == _phone_reference(value)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(re.compile(r"[A-Za-z0-9._%+\-]{1,6}@[A-Za-z0-9.\-]{1,6}\.[A-Za-z0-9\-]{1,4}"),
                     fullmatch=True))
def test_email_fast_path_on_generated_addresses(value: str) -> None:
    assert std.email_std(value) == _email_reference(value)


def test_one_lookup_per_word_spells_every_word_as_before() -> None:
    words = set(addr.ABBREVIATIONS) | set(addr._FLAT_WORDS) | {"HIGH", "ST", "X", "ROAD"}
    for word in words:
        expanded = addr.ABBREVIATIONS.get(word, word)
        assert addr._WORD_SPELLING.get(word, word) == ("FLAT" if expanded in addr._FLAT_WORDS else expanded)


LINES = st.one_of(st.none(), st.sampled_from(HOSTILE[:40]), st.text(
    alphabet="0123456789 ,/-'ABCFLTSRDHIGhighflat&.;\nÉô", max_size=30))


@settings(max_examples=400, deadline=None)
@given(LINES, LINES)
def test_segments_once_per_line_give_the_same_parts(line1: Any, line2: Any) -> None:
    assert (addr.parts_of_segments(addr.line_segments(line1) + addr.line_segments(line2))
            == addr.address_parts(line1, line2))


def test_distinct_pairs_keep_none_apart_from_blank() -> None:
    a = pd.Series(["x", None, "", "x", None, ""], dtype=object)
    b = pd.Series([None, "", None, None, "", "y"], dtype=object)
    out = std._per_distinct_pair(a, b, lambda x, y: (x, y))
    assert list(out) == [("x", None), (None, ""), ("", None), ("x", None), (None, ""), ("", "y")]
