"""Dates of birth: parse in declared formats, flag what is doubtful, spot placeholders.

Each source declares its date formats in its mapping (strptime style, e.g. ``%d/%m/%Y``),
because guessing is how 03/04/1980 becomes the 4th of March in one system and the 3rd of
April in another. What cannot be decided is *flagged*, not silently chosen:
``day_month_ambiguous`` when a numeric format's day and month could be swapped, so the
matcher can try the transposed date (``transposed``) as weaker evidence.

Unknown dates of birth are often typed as 01/01/1900 or 01/01/<year>: ``is_placeholder_dob``
says so, and ``dob_evidence`` says what (if anything) such a date still tells us.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Iterable, Literal

from joinedup.identifiers import is_missing

__all__ = [
    "parse_date", "DAY_MONTH_AMBIGUOUS", "UNPARSEABLE", "CENTURY_INFERRED",
    "is_placeholder_dob", "dob_evidence", "transposed", "to_date",
]

DAY_MONTH_AMBIGUOUS = "day_month_ambiguous"
UNPARSEABLE = "unparseable"
CENTURY_INFERRED = "century_inferred"

_NAMED_MONTH = re.compile(r"%[bB]")
_TWO_DIGIT_YEAR = "%y"


def parse_date(
    s: Any, formats: Iterable[str], *, today: date | None = None
) -> tuple[date | None, frozenset[str]]:
    """Parse ``s`` with the first of ``formats`` that fits; return (date, flags).

    Flags:
    - ``unparseable``: text was present but no format fitted (the date is None);
    - ``day_month_ambiguous``: the fitting format is all-numeric with both a day and a
      month, both are 12 or less, and they differ (03/04/1980 may be 4 March);
    - ``century_inferred``: a two-digit year (``%y``) put the date after ``today``, so a
      century was taken off (date of birth 05/06/52 is 1952, not 2052).
    Blank input gives (None, no flags). A time part in the format is allowed and dropped.
    """
    if is_missing(s):
        return None, frozenset()
    text = str(s).strip()
    if not text:
        return None, frozenset()
    for fmt in formats:
        try:
            parsed = datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        flags: set[str] = set()
        if _TWO_DIGIT_YEAR in fmt:
            limit = today or date.today()
            if parsed > limit:
                try:
                    parsed = parsed.replace(year=parsed.year - 100)
                except ValueError:  # 29 Feb in a non-leap year a century back
                    parsed = parsed.replace(year=parsed.year - 100, day=28)
                flags.add(CENTURY_INFERRED)
        if (
            "%d" in fmt and "%m" in fmt and not _NAMED_MONTH.search(fmt)
            and parsed.day <= 12 and parsed.month <= 12 and parsed.day != parsed.month
        ):
            flags.add(DAY_MONTH_AMBIGUOUS)
        return parsed, frozenset(flags)
    return None, frozenset({UNPARSEABLE})


def to_date(d: Any) -> date | None:
    """A date from a date, datetime or ISO string ('1980-04-03'); None when not one."""
    if is_missing(d):
        return None
    if isinstance(d, datetime):
        return d.date()
    if isinstance(d, date):
        return d
    try:
        return date.fromisoformat(str(d).strip()[:10])
    except ValueError:
        return None


def dob_evidence(d: Any, *, today: date | None = None) -> Literal["none", "year", "full"]:
    """How much a recorded date of birth tells us about the person.

    - ``none``: missing, unreadable, 1900-01-01, before 1900, or in the future;
    - ``year``: 1 January of a plausible year (the usual "day and month unknown" entry):
      the year is evidence, the day is not;
    - ``full``: an ordinary date.
    """
    value = to_date(d)
    if value is None:
        return "none"
    if value.year < 1900 or value == date(1900, 1, 1) or value > (today or date.today()):
        return "none"
    if value.month == 1 and value.day == 1:
        return "year"
    return "full"


def is_placeholder_dob(d: Any, *, today: date | None = None) -> bool:
    """True when the date of birth is not a real birthday to match on: 1900-01-01, any
    date before 1900, a future date, or 1 January of any year (weak: the year may still be
    used, see ``dob_evidence``). Missing dates are not placeholders (nothing is there)."""
    value = to_date(d)
    if value is None:
        return False
    return dob_evidence(value, today=today) != "full"


def transposed(d: Any) -> date | None:
    """The date with day and month swapped (1980-04-03 -> 1980-03-04), or None when the
    swap is not a valid date or changes nothing."""
    value = to_date(d)
    if value is None or value.day == value.month or value.day > 12:
        return None
    try:
        return value.replace(month=value.day, day=value.month)
    except ValueError:
        return None
