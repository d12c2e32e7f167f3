"""Match features of ONE canonical record in plain Python, for the lookup API's hot path.

``joinedup.mci.standardise.standardise`` is the matcher's contract: a pandas frame in, the
features out. It is built for millions of rows (work once per distinct value), but for a
single search query, or the few hundred candidate records a search scores, building frames
costs far more than the rules themselves: a search took over a second under load. This
module applies the same one-value rules (the very functions ``standardise`` maps over each
column's distinct values) to one dict, with a cache per value.

It must give exactly what ``standardise`` gives for a one-row frame:
``tests/unit/test_api_record_features.py`` checks that property with hypothesis on generated
records, so a change to the matcher's rules that is not made here fails the tests.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from joinedup import identifiers as ids
from joinedup.mci import standardise as std
from joinedup.names import normalise_name, soundex

__all__ = ["record_features", "comparison_features"]

CACHE_SIZE = 65_536  # per process; names, dates and postcodes repeat a great deal


def _value(record: Mapping[str, Any], name: str) -> Any:
    """The field, with None for absent and for float NaN (how a frame marks missing)."""
    v = record.get(name)
    if v.__class__ is float and v != v:
        return None
    return v


# the matcher's own one-value rules, cached per value
_name = lru_cache(maxsize=CACHE_SIZE)(normalise_name)
_roots = lru_cache(maxsize=CACHE_SIZE)(std.given_roots)
_parts = lru_cache(maxsize=CACHE_SIZE)(std.family_parts)
_soundex = lru_cache(maxsize=CACHE_SIZE)(soundex)
_dob = lru_cache(maxsize=CACHE_SIZE)(std.dob_parts)
_home_postcode = lru_cache(maxsize=CACHE_SIZE)(std.home_postcode)
_address_lines = lru_cache(maxsize=CACHE_SIZE)(std.address_lines_key)
_nino = lru_cache(maxsize=CACHE_SIZE)(ids.nino_key)
_email = lru_cache(maxsize=CACHE_SIZE)(std.email_std)
_phone = lru_cache(maxsize=CACHE_SIZE)(std.phone_std)

_NO_DOB = (None, None, False)


def _cached(fn: Any, value: Any) -> Any:
    """``fn(value)`` through its cache (None stays None; an unhashable value is computed)."""
    if value is None:
        return None
    try:
        return fn(value)
    except TypeError:
        return fn.__wrapped__(value)


def comparison_features(record: Mapping[str, Any], record_id: Any = 0) -> dict[str, Any]:
    """The features a search compares (names, date of birth, NI number, e-mail, phone,
    postcode): the same values as ``record_features`` for those columns, at a fraction of the
    cost, since a search scores about a hundred candidate records per request."""
    given = _value(record, "given_name")
    family = _value(record, "family_name")
    given_std = _cached(_name, given)
    family_std = _cached(_name, family)
    dob_text = _value(record, "date_of_birth")
    dob = _NO_DOB if dob_text is None else _dob(dob_text)
    postcode = _cached(_home_postcode, _value(record, "postcode"))
    return {
        "record_id": record_id,
        "given_name_std": given_std,
        "given_name_roots": _cached(_roots, given),
        "family_name_std": family_std,
        "family_name_parts": _parts(family, _value(record, "previous_family_names")),
        "family_name_phonetic": _cached(_soundex, family_std),
        "dob": dob[0],
        "dob_year": dob[1],
        "dob_is_placeholder": dob[2],
        "ni_key": _cached(_nino, _value(record, "ni_number")),
        "postcode": postcode,
        "postcode_outward": postcode.split(" ", 1)[0] if postcode is not None else None,
        "email_std": _cached(_email, _value(record, "email")),
        "phone_std": _cached(_phone, _value(record, "phone")),
    }


def record_features(record: Mapping[str, Any], record_id: Any = 0) -> dict[str, Any]:
    """The matcher's features (``FEATURE_COLUMNS``) of one canonical record.

    Missing fields count as empty; values are what a frame holds (str or None). The result
    equals ``standardise(pd.DataFrame([{**record, "record_id": record_id}]))``'s one row.
    """
    v = lambda name: _value(record, name)  # noqa: E731
    out = comparison_features(record, record_id)
    given_std, postcode = out["given_name_std"], out["postcode"]
    lines = _address_lines(v("address_line_1"), v("address_line_2"))
    one = lambda name, fn: (None if v(name) is None else fn(v(name)))  # noqa: E731
    deceased = v("deceased_date")
    out.update({
        "source_system": one("source_system", str),
        "source_key": one("source_key", str),
        "given_initial": given_std[0] if given_std else None,
        "middle_names_std": one("middle_names", _name),
        "sex": one("sex", std.sex_code) or one("title", std.sex_from_title),
        "nhs_number": one("nhs_number", std.nhs_std),
        "uprn": one("uprn", std.uprn_std),
        "address_key": std.address_key_of(postcode, lines),
        "deceased": False if deceased is None else bool(str(deceased).strip()),
    })
    return {column: out[column] for column in std.FEATURE_COLUMNS}  # the frame's column order
