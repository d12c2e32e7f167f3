"""Match features from canonical person records: one comparable spelling of every field.

``standardise`` is the contract between the canonical records and the matcher: its output
columns (``FEATURE_COLUMNS``) are exactly what blocking, the deterministic rules and the
Splink model read. Rules applied here, so the matcher never has to repeat them:

- sex as recorded, else as a gendered title says (Mr, Mrs, Miss, Ms...; never Dr, Rev, Mx);
- names folded (accents, apostrophes, hyphens), nickname roots, family-name parts including
  previous (maiden) names, a Soundex code that makes McDonald/MacDonald comparable;
- dates of birth that are placeholders (1900-01-01, before 1900, future) are missing; a
  1 January date keeps its year only (the day is usually "unknown");
- identifiers are evidence only when valid: an invalid NI/NHS number, UPRN or postcode is
  None here (the quality gate has already reported it). NINO is compared on 8 characters;
- postcodes that do not locate a home (ZZ99 pseudo-postcodes, BFPO) are None.

Work is done once per *distinct* value (names, dates and postcodes repeat a great deal),
which keeps a million records to seconds rather than minutes.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from joinedup import identifiers as ids
from joinedup.addresses import AddressParts, address_parts, line_segments, parts_of_segments
from joinedup.dates import dob_evidence, to_date
from joinedup.names import family_name_parts, name_roots, normalise_name, soundex

__all__ = ["standardise", "FEATURE_COLUMNS", "StandardiseError"]

FEATURE_COLUMNS: tuple[str, ...] = (
    "record_id", "source_system", "source_key",
    "given_name_std", "given_name_roots", "given_initial", "middle_names_std",
    "family_name_std", "family_name_parts", "family_name_phonetic",
    "dob", "dob_year", "dob_is_placeholder", "sex",
    "ni_key", "nhs_number", "uprn", "postcode", "postcode_outward", "address_key",
    "email_std", "phone_std", "deceased",
)


class StandardiseError(ValueError):
    """The input frame cannot be standardised (no personal data in the message)."""


def _column(records: pd.DataFrame, name: str) -> pd.Series:
    """The column as object dtype with None for missing (NaN/NA); all None if absent.

    Blank strings are left in: every rule below treats blank text as missing itself.
    """
    if name not in records.columns:
        return pd.Series([None] * len(records), index=records.index, dtype=object)
    col = records[name].astype(object)
    return col.where(col.notna(), None)


def _per_distinct(values: pd.Series, fn: Callable[[Any], Any]) -> np.ndarray:
    """``fn`` applied once per distinct non-missing value; missing values give None."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    results = np.empty(len(uniques) + 1, dtype=object)
    for i, u in enumerate(uniques):
        results[i] = fn(u)
    results[-1] = None  # code -1: missing
    return results[codes]


def _distinct_pairs(a: pd.Series, b: pd.Series
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Any], list[Any]]:
    """The distinct (a, b) value pairs of two columns, found on integer codes.

    Returns (row_codes, a_codes, b_codes, a_values, b_values): row ``r`` has the pair
    ``(a_values[a_codes[row_codes[r]]], b_values[b_codes[row_codes[r]]])``. A missing value
    is None, kept distinct from ''. Each column is factorised on its own and the two codes
    combined into one integer, which is much cheaper than hashing a tuple per row.
    """
    codes_a, uniques_a = pd.factorize(a, use_na_sentinel=True)
    codes_b, uniques_b = pd.factorize(b, use_na_sentinel=True)
    n_a, n_b = len(uniques_a), len(uniques_b)
    codes_a = np.where(codes_a < 0, n_a, codes_a).astype(np.int64)  # missing: the last code
    codes_b = np.where(codes_b < 0, n_b, codes_b).astype(np.int64)
    row_codes, pairs = pd.factorize(codes_a * (n_b + 1) + codes_b)
    pair_a, pair_b = np.divmod(np.asarray(pairs, dtype=np.int64), n_b + 1)
    return (row_codes, pair_a, pair_b,
            list(uniques_a) + [None], list(uniques_b) + [None])


def _per_distinct_pair(a: pd.Series, b: pd.Series, fn: Callable[[Any, Any], Any]) -> np.ndarray:
    """``fn(a, b)`` applied once per distinct pair of values (None for a missing value)."""
    row_codes, pair_a, pair_b, values_a, values_b = _distinct_pairs(a, b)
    results = np.empty(len(pair_a), dtype=object)
    for i, (x, y) in enumerate(zip(pair_a.tolist(), pair_b.tolist())):
        results[i] = fn(values_a[x], values_b[y])
    return results[row_codes]


def _address_lines_keys(line1: pd.Series, line2: pd.Series) -> np.ndarray:
    """``address_lines_key(line1, line2)`` for every row: each distinct line is cut into
    segments once (a second line is often a locality shared by thousands of records), then
    each distinct pair of lines is reduced to its key once."""
    row_codes, pair_a, pair_b, values_a, values_b = _distinct_pairs(line1, line2)
    segments_a = [line_segments(v) for v in values_a]
    segments_b = [line_segments(v) for v in values_b]
    results = np.empty(len(pair_a), dtype=object)
    for i, (x, y) in enumerate(zip(pair_a.tolist(), pair_b.tolist())):
        results[i] = _lines_key(parts_of_segments(segments_a[x] + segments_b[y]))
    return results[row_codes]


# --- one-value rules (the lookup API applies these same functions to one record) ------------

def given_roots(given: Any) -> str | None:
    roots = name_roots(given)
    return "|".join(sorted(roots)) if roots else None


def family_parts(family: Any, previous: Any) -> str | None:
    parts = family_name_parts(family, previous)
    return "|".join(parts) if parts else None


def dob_parts(value: Any) -> tuple[str | None, int | None, bool]:
    """(dob, dob_year, dob_is_placeholder) for one recorded date of birth (also used by the
    lookup API's one-record path)."""
    d = to_date(value)
    if d is None:
        return None, None, False  # missing or unreadable: nothing recorded to distrust
    evidence = dob_evidence(d)
    if evidence == "full":
        return d.isoformat(), d.year, False
    if evidence == "year":
        return None, d.year, True
    return None, None, True


def sex_code(value: Any) -> str | None:
    s = str(value).strip().upper()
    if s in ("F", "FEMALE", "2"):
        return "F"
    if s in ("M", "MALE", "1"):
        return "M"
    return None


#: Titles that say the sex (Mx, Dr, Rev and the like do not). Housing and council tax record
#: a title but no sex: without this, opposite-sex twins with near-identical names (Ciara and
#: Ciaran, same birth date and flat) differ in nothing those systems hold.
TITLE_SEX: dict[str, str] = {"MR": "M", "MASTER": "M", "SIR": "M", "LORD": "M",
                             "MRS": "F", "MISS": "F", "MS": "F", "LADY": "F", "DAME": "F"}


def sex_from_title(value: Any) -> str | None:
    """The sex a gendered title says (Mr -> M; Mrs, Miss, Ms -> F), else None (Dr, Rev, Mx)."""
    return TITLE_SEX.get(str(value).replace(".", "").strip().upper())


def _valid_or_none(normalise: Callable[[Any], str | None], valid: Callable[[Any], bool]
                   ) -> Callable[[Any], str | None]:
    def one(value: Any) -> str | None:
        n = normalise(value)
        return n if n is not None and valid(n) else None
    return one


nhs_std = _valid_or_none(ids.normalise_nhs_number, ids.is_valid_nhs_number)


def uprn_std(value: Any) -> str | None:
    """A valid UPRN without zero padding; the common all-digits case takes a fast path."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        digits = value.lstrip("0")
        return digits if 0 < len(digits) <= 12 else None
    n = ids.normalise_uprn(value)
    return n if n is not None and ids.is_valid_uprn(n) else None


def home_postcode(value: Any) -> str | None:
    n = ids.normalise_postcode(value)
    return n if n is not None and ids.is_valid_postcode(n, allow_special=False) else None


#: An e-mail address already in its normal spelling but for case: ASCII, no white space, no
#: angle brackets or "mailto:" (no colon), one @ and a dotted domain. For these
#: ``normalise_email`` only lower-cases and ``is_plausible_email`` holds.
_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z0-9\-]+")
#: A UK number already in national form (0, not 00, then 9 or 10 ASCII digits): what
#: ``normalise_phone`` returns unchanged.
_NATIONAL_PHONE = re.compile(r"0[1-9][0-9]{8,9}")


def email_std(value: Any) -> str | None:
    if type(value) is str and _PLAIN_EMAIL.fullmatch(value):
        return value.lower()  # the common case, the same answer without the general rules
    n = ids.normalise_email(value)
    return n if n is not None and ids.is_plausible_email(n) else None


def phone_std(value: Any) -> str | None:
    if type(value) is str and _NATIONAL_PHONE.fullmatch(value):
        n: str | None = value  # the common case: normalise_phone would return it as it is
    else:
        n = ids.normalise_phone(value)
    if n is None:
        return None
    digits = n.lstrip("+")
    if len(digits) < 10 or len(set(digits[1:])) == 1:  # too short to be whole, or 07777777777
        return None
    return n


def address_lines_key(line1: Any, line2: Any) -> str | None:
    return _lines_key(address_parts(line1, line2))


def _lines_key(parts: AddressParts) -> str | None:
    if parts.house is None and parts.street is None:
        return None
    return "|".join([parts.flat or "", parts.house or "", parts.street or ""])


def _first_char(value: Any) -> str | None:
    return value[0] if isinstance(value, str) and value else None


# --- the frame ------------------------------------------------------------------------------

def standardise(records: pd.DataFrame) -> pd.DataFrame:
    """Match features for canonical person records.

    ``records`` has canonical field columns (missing ones count as empty) and a unique
    integer ``record_id`` that is passed through. The result has exactly
    ``FEATURE_COLUMNS``, in that order, one row per input row in input order; text columns
    hold str or None (object dtype), ``dob_year`` int or None, booleans are bool.
    """
    if "record_id" not in records.columns:
        raise StandardiseError(
            "standardise needs a 'record_id' column (a unique integer per record); "
            f"got columns: {', '.join(map(str, records.columns))}")
    n = len(records)
    index = records.index
    out: dict[str, Any] = {"record_id": records["record_id"].to_numpy()}
    for key in ("source_system", "source_key"):
        col = _column(records, key)
        values = col.to_numpy(dtype=object)
        if all(v is None or type(v) is str for v in values):  # as read from CSV: already text
            out[key] = values.copy()
        else:
            out[key] = col.map(lambda v: None if v is None else str(v),
                               na_action="ignore").to_numpy(dtype=object)

    given = _column(records, "given_name")
    given_std = _per_distinct(given, normalise_name)
    out["given_name_std"] = given_std
    out["given_name_roots"] = _per_distinct(given, given_roots)
    out["given_initial"] = _per_distinct(pd.Series(given_std, index=index), _first_char)
    out["middle_names_std"] = _per_distinct(_column(records, "middle_names"), normalise_name)

    family = _column(records, "family_name")
    family_std = _per_distinct(family, normalise_name)
    out["family_name_std"] = family_std
    out["family_name_parts"] = _per_distinct_pair(
        family, _column(records, "previous_family_names"), family_parts)
    out["family_name_phonetic"] = _per_distinct(pd.Series(family_std, index=index), soundex)

    dob_triples = _per_distinct(_column(records, "date_of_birth"), dob_parts)
    missing = (None, None, False)
    triples = [t if t is not None else missing for t in dob_triples]
    out["dob"] = np.array([t[0] for t in triples], dtype=object) if n else np.empty(0, object)
    years = np.empty(n, dtype=object)
    years[:] = [t[1] for t in triples]
    out["dob_year"] = years
    out["dob_is_placeholder"] = np.array([t[2] for t in triples], dtype=bool)

    recorded_sex = _per_distinct(_column(records, "sex"), sex_code)
    title_sex = _per_distinct(_column(records, "title"), sex_from_title)
    out["sex"] = np.where(pd.isna(recorded_sex), title_sex, recorded_sex)  # the recorded sex wins
    out["ni_key"] = _per_distinct(_column(records, "ni_number"), ids.nino_key)
    out["nhs_number"] = _per_distinct(_column(records, "nhs_number"), nhs_std)
    out["uprn"] = _per_distinct(_column(records, "uprn"), uprn_std)

    postcode = _per_distinct(_column(records, "postcode"), home_postcode)
    out["postcode"] = postcode
    postcode_s = pd.Series(postcode, index=index, dtype=object)
    out["postcode_outward"] = _per_distinct(postcode_s, lambda p: p.split(" ", 1)[0])

    lines = _address_lines_keys(_column(records, "address_line_1"),
                                _column(records, "address_line_2"))
    out["address_key"] = _address_keys(postcode_s, lines)

    out["email_std"] = _per_distinct(_column(records, "email"), email_std)
    out["phone_std"] = _per_distinct(_column(records, "phone"), phone_std)
    out["deceased"] = _per_distinct(
        _column(records, "deceased_date"), lambda v: bool(str(v).strip())
    ).astype(bool)  # None (missing) -> False

    frame = pd.DataFrame(out, index=index, columns=list(FEATURE_COLUMNS))
    for col in FEATURE_COLUMNS:
        if col not in ("record_id", "dob_is_placeholder", "deceased"):
            frame[col] = frame[col].astype(object)
    return frame


def _address_keys(postcode: pd.Series, lines: np.ndarray) -> np.ndarray:
    """'POSTCODE|flat|house|street' (same form as ``joinedup.addresses.address_key``),
    None when there is neither a home postcode nor an address line to compare."""
    keys = np.empty(len(postcode), dtype=object)
    for i, (pc, rest) in enumerate(zip(postcode.tolist(), lines)):
        keys[i] = address_key_of(pc, rest)
    return keys


def address_key_of(postcode: str | None, lines: str | None) -> str | None:
    """One record's address key from its home postcode and ``address_lines_key``."""
    if postcode is None and lines is None:
        return None
    return (postcode.replace(" ", "") if postcode else "") + "|" + (lines or "||")
