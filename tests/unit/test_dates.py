"""Date parsing with declared formats, ambiguity flags, placeholders and transposition."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from joinedup import dates
from joinedup.dates import CENTURY_INFERRED, DAY_MONTH_AMBIGUOUS, UNPARSEABLE

TODAY = date(2025, 6, 1)


@pytest.mark.parametrize("raw,formats,expected,flags", [
    ("03/04/1980", ["%d/%m/%Y"], date(1980, 4, 3), {DAY_MONTH_AMBIGUOUS}),
    ("13/04/1980", ["%d/%m/%Y"], date(1980, 4, 13), set()),
    ("04/04/1980", ["%d/%m/%Y"], date(1980, 4, 4), set()),  # swapping changes nothing
    ("1980-04-03", ["%Y-%m-%d"], date(1980, 4, 3), {DAY_MONTH_AMBIGUOUS}),
    ("19800403", ["%Y%m%d"], date(1980, 4, 3), {DAY_MONTH_AMBIGUOUS}),
    ("03 Apr 1980", ["%d %b %Y"], date(1980, 4, 3), set()),  # named month: no doubt
    (" 1980-04-03 ", ["%d/%m/%Y", "%Y-%m-%d"], date(1980, 4, 3), {DAY_MONTH_AMBIGUOUS}),
    ("1980-04-03T10:11:12", ["%Y-%m-%dT%H:%M:%S"], date(1980, 4, 3), {DAY_MONTH_AMBIGUOUS}),
    ("05/06/52", ["%d/%m/%y"], date(1952, 6, 5), {DAY_MONTH_AMBIGUOUS, CENTURY_INFERRED}),
    ("25/06/19", ["%d/%m/%y"], date(2019, 6, 25), set()),
    ("31/02/1980", ["%d/%m/%Y"], None, {UNPARSEABLE}),
    ("unknown", ["%d/%m/%Y"], None, {UNPARSEABLE}),
    ("1980-04-03", ["%d/%m/%Y"], None, {UNPARSEABLE}),
    ("", ["%d/%m/%Y"], None, set()),
    (None, ["%d/%m/%Y"], None, set()),
])
def test_parse_date(raw, formats, expected, flags):
    assert dates.parse_date(raw, formats, today=TODAY) == (expected, frozenset(flags))


def test_parse_date_takes_first_fitting_format():
    # 02/03/2001 fits both; the first declared format decides
    assert dates.parse_date("02/03/2001", ["%m/%d/%Y", "%d/%m/%Y"])[0] == date(2001, 2, 3)


@pytest.mark.parametrize("value,evidence", [
    ("1900-01-01", "none"),
    (date(1899, 12, 31), "none"),
    ("1850-06-15", "none"),
    ("2030-01-02", "none"),
    ("1975-01-01", "year"),
    ("1975-01-02", "full"),
    (datetime(1975, 5, 6, 10, 0), "full"),
    (None, "none"),
    ("rubbish", "none"),
])
def test_dob_evidence(value, evidence):
    assert dates.dob_evidence(value, today=TODAY) == evidence


def test_is_placeholder_dob():
    assert dates.is_placeholder_dob("1900-01-01", today=TODAY)
    assert dates.is_placeholder_dob("1984-01-01", today=TODAY)
    assert dates.is_placeholder_dob("1888-03-04", today=TODAY)
    assert dates.is_placeholder_dob("2026-03-04", today=TODAY)
    assert not dates.is_placeholder_dob("1984-03-04", today=TODAY)
    assert not dates.is_placeholder_dob(None)


@pytest.mark.parametrize("value,expected", [
    ("1980-04-03", date(1980, 3, 4)),
    (date(1980, 12, 2), date(1980, 2, 12)),
    ("1980-04-13", None),
    ("1980-04-04", None),
    (None, None),
])
def test_transposed(value, expected):
    assert dates.transposed(value) == expected


def test_pandas_missing_dates():
    import pandas as pd

    assert dates.to_date(pd.NaT) is None
    assert dates.to_date(pd.NA) is None
    assert dates.parse_date(pd.NA, ["%Y-%m-%d"]) == (None, frozenset())
    assert dates.to_date(pd.Timestamp("1980-04-03")) == date(1980, 4, 3)
