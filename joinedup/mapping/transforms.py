"""Named transforms a mapping file may use (``transform: parse_nino``).

Each transform is a plain function over a pandas Series of source values (strings or None)
that returns a Series of the same length, value by value: the result for a value depends on
that value alone (the mapping engine relies on it to run each field's rules once per distinct
value, not once per row). Adding a transform is one function with the
``@transform`` decorator. A value a transform cannot make sense of becomes None only where
the transform is documented to do so; validation of the result is the quality gate's job.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from joinedup import dates as _dates
from joinedup import identifiers as _ids
from joinedup import names as _names

Transform = Callable[..., pd.Series]
TRANSFORMS: dict[str, Transform] = {}


class UnknownTransform(KeyError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


def transform(name: str, *, may_be_empty: bool = False) -> Callable[[Transform], Transform]:
    """Register ``fn`` under ``name``. ``may_be_empty``: an empty result from a present value is
    a legitimate answer (``split_name`` of a name with no middle part), not a value the mapping
    failed to convert, so the engine does not quarantine the row for it."""

    def register(fn: Transform) -> Transform:
        if name in TRANSFORMS:
            raise ValueError(f"transform {name!r} registered twice")
        fn.may_be_empty = may_be_empty  # type: ignore[attr-defined]
        TRANSFORMS[name] = fn
        return fn

    return register


def get_transform(name: str) -> Transform:
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise UnknownTransform(name) from None


def distinct_values(values: pd.Series) -> tuple[np.ndarray | None, pd.Series]:
    """``(codes, distinct)``: the distinct values of ``values`` (first-seen order) and, per
    row, the position of its value among them, so ``distinct.to_numpy()[codes]`` is
    ``values`` again. Only when every present value is text: the distinct values are found
    with a dict (not ``pd.factorize``, whose string table stops at a NUL character and would
    take 'A\x00B' for 'A'), and missing values (None, NaN, NA) are kept as themselves. For a
    column holding anything else (numbers, mixed types) ``codes`` is None and ``distinct`` is
    ``values`` itself, since 1, 1.0 and True are one dict key but three different texts."""
    arr = values.to_numpy(dtype=object)
    if not len(arr) or infer_dtype(arr, skipna=True) not in ("string", "empty"):
        return None, values
    seen: dict[Any, int] = {}
    codes = np.fromiter((seen.setdefault(v, len(seen)) for v in arr), dtype=np.intp, count=len(arr))
    distinct = np.empty(len(seen), dtype=object)
    for v, i in seen.items():
        distinct[i] = v
    return codes, pd.Series(distinct, dtype=object)


_DISTINCT_ALREADY: ContextVar[bool] = ContextVar("distinct_already", default=False)


@contextmanager
def values_are_distinct() -> Iterator[None]:
    """Inside the block, ``per_distinct`` takes its values as (nearly) distinct already and
    calls ``one`` per value without looking for repeats: the mapping engine runs each field's
    rules over the field's distinct values, where a second search would find none (a value
    a transform made equal to another is computed twice, with the same answer)."""
    token = _DISTINCT_ALREADY.set(True)
    try:
        yield
    finally:
        _DISTINCT_ALREADY.reset(token)


def per_distinct(values: pd.Series, one: Callable[[Any], Any]) -> pd.Series:
    """``one(v)`` for every value of ``values``, computed once per distinct value.

    Sources repeat names, towns, titles, codes and dates a great deal, so a 100,000-row batch
    costs one Python call per distinct value instead of one per row. Exact for any pure
    ``one`` (see ``distinct_values`` for what counts as one value)."""
    codes, distinct = (None, values) if _DISTINCT_ALREADY.get() else distinct_values(values)
    if codes is None:
        return pd.Series([one(v) for v in values.to_numpy(dtype=object)], index=values.index, dtype=object)
    results = np.empty(len(distinct), dtype=object)
    for i, v in enumerate(distinct.to_numpy()):
        results[i] = one(v)
    return pd.Series(results[codes], index=values.index, dtype=object)


def _map_values(values: pd.Series, fn: Callable[[str], Any]) -> pd.Series:
    """Apply ``fn`` to each non-missing value; missing and blank values become None."""

    def one(v: Any) -> Any:
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return None
        s = str(v).strip()
        return fn(s) if s else None

    return per_distinct(values, one)


@transform("trim")
def trim(values: pd.Series) -> pd.Series:
    """Strip surrounding white space and fold inner runs of white space; blank -> None."""
    return _map_values(values, lambda s: " ".join(s.split()))


@transform("upper")
def upper(values: pd.Series) -> pd.Series:
    return _map_values(values, lambda s: " ".join(s.split()).upper())


@transform("lower")
def lower(values: pd.Series) -> pd.Series:
    return _map_values(values, lambda s: " ".join(s.split()).lower())


# --- UK-aware transforms -------------------------------------------------------------------
# Each works on the distinct values of the column (sources repeat towns, titles, codes and
# dates a great deal), so a 100,000-row batch costs one call per distinct value.

def _map_distinct(values: pd.Series, fn: Callable[[str], Any]) -> pd.Series:
    """Like ``_map_values`` (missing and blank -> None, ``fn`` gets stripped text) but with
    ``identifiers.is_missing`` deciding what is missing; each distinct value is computed once."""

    def one(v: Any) -> Any:
        if _ids.is_missing(v):
            return None
        s = str(v).strip()
        return fn(s) if s else None

    return per_distinct(values, one)


def _formats(formats: Any, name: str) -> list[str]:
    if isinstance(formats, str):
        formats = [formats]
    if not isinstance(formats, (list, tuple)) or not formats or not all(
            isinstance(f, str) and f for f in formats):
        raise TypeError(f"{name} needs 'formats': a list of strptime formats such as ['%d/%m/%Y']")
    return list(formats)


@transform("parse_date")
def parse_date(values: pd.Series, formats: list[str] | str) -> pd.Series:
    """Dates in the declared strptime ``formats`` (first that fits wins) -> ISO 'YYYY-MM-DD'.

    A value no format fits becomes None, which the mapping reports as a mapping issue for
    that field (the row is quarantined with the reason, not loaded with a wrong date).
    Day/month ambiguity is not decided here: see ``joinedup.dates.parse_date`` flags.
    """
    fmts = _formats(formats, "parse_date")

    def one(s: str) -> str | None:
        parsed, _flags = _dates.parse_date(s, fmts)
        return parsed.isoformat() if parsed else None

    return _map_distinct(values, one)


@transform("parse_datetime")
def parse_datetime(values: pd.Series, formats: list[str] | str) -> pd.Series:
    """Timestamps in the declared ``formats`` -> ISO 8601 ('2024-05-01T10:11:12', with its
    offset when the format reads one, e.g. '%Y-%m-%dT%H:%M:%S%z' takes a trailing Z)."""
    fmts = _formats(formats, "parse_datetime")

    def one(s: str) -> str | None:
        for fmt in fmts:
            try:
                return datetime.strptime(s, fmt).isoformat()
            except ValueError:
                continue
        return None

    return _map_distinct(values, one)


@transform("normalise_postcode")
def normalise_postcode(values: pd.Series) -> pd.Series:
    """'sw1a1aa' -> 'SW1A 1AA', 'bfpo105' -> 'BFPO 105'; invalid text is kept, tidied."""
    return _map_distinct(values, _ids.normalise_postcode)


@transform("normalise_nino")
def normalise_nino(values: pd.Series) -> pd.Series:
    """'ab 12 34 56 c' -> 'AB123456C'. Invalid numbers are kept (upper-cased, compacted):
    the quality gate decides validity and quarantines with the reason."""
    return _map_distinct(values, _ids.normalise_nino)


@transform("normalise_nhs_number")
def normalise_nhs_number(values: pd.Series) -> pd.Series:
    """'943 476 5919' -> '9434765919'; invalid numbers are kept for the gate to report."""
    return _map_distinct(values, _ids.normalise_nhs_number)


@transform("normalise_uprn")
def normalise_uprn(values: pd.Series) -> pd.Series:
    """'000100023336956' -> '100023336956' (zero padding and '.0' removed)."""
    return _map_distinct(values, _ids.normalise_uprn)


@transform("title_case_name")
def title_case_name(values: pd.Series) -> pd.Series:
    """'MCDONALD' -> 'McDonald', "O'BRIEN" -> "O'Brien", 'DE LA CRUZ' -> 'de la Cruz';
    names already in mixed case are kept as the source spelt them."""
    return _map_distinct(values, _names.title_case_name)


@transform("normalise_title")
def normalise_title(values: pd.Series) -> pd.Series:
    """'MR.' -> 'Mr', 'Revd' -> 'Rev'; unknown titles kept as written."""
    return _map_distinct(values, _names.normalise_title)


_NAME_PARTS = ("title", "given", "middle", "family")


@transform("split_name", may_be_empty=True)
def split_name(values: pd.Series, part: str) -> pd.Series:
    """One part of a full name: ``part`` is title, given, middle or family.

    'Mr John A. Smith' -> Mr / John / A. / Smith; 'SMITH, John' -> family SMITH. A name
    without the requested part gives None for it (not a mapping issue: see the engine).
    """
    if part not in _NAME_PARTS:
        raise TypeError(f"split_name: part must be one of {', '.join(_NAME_PARTS)}; got {part!r}")
    index = _NAME_PARTS.index(part)
    return _map_distinct(values, lambda s: _names.parse_full_name(s)[index])


@transform("code_lookup")
def code_lookup(values: pd.Series, codes: dict[Any, Any], default: Any = None) -> pd.Series:
    """Translate a source's codes ({'1': 'M', '2': 'F', '9': 'U'}); keys are matched as
    text, exactly first and then ignoring case. An unknown code gives ``default``; with
    no default it gives None, so the mapping reports it rather than guessing."""
    if not isinstance(codes, dict) or not codes:
        raise TypeError("code_lookup needs 'codes': a mapping of source code -> canonical value")
    exact = {str(k).strip(): (None if v is None else str(v)) for k, v in codes.items()}
    folded = {k.casefold(): v for k, v in exact.items()}
    fallback = None if default is None else str(default)

    def one(s: str) -> str | None:
        if s in exact:
            return exact[s]
        return folded.get(s.casefold(), fallback)

    return _map_distinct(values, one)


@transform("digits_only")
def digits_only(values: pd.Series) -> pd.Series:
    """Keep the digits ('HT-001234' -> '001234'); no digits -> None."""
    return _map_distinct(values, lambda s: "".join(ch for ch in s if ch.isascii() and ch.isdigit()) or None)


@transform("normalise_phone")
def normalise_phone(values: pd.Series) -> pd.Series:
    """UK numbers to national form 0XXXXXXXXXX ('+44 (0)20 7946 0958' -> '02079460958')."""
    return _map_distinct(values, _ids.normalise_phone)


@transform("normalise_email")
def normalise_email(values: pd.Series) -> pd.Series:
    """Trimmed, lower case, inner white space removed."""
    return _map_distinct(values, _ids.normalise_email)
