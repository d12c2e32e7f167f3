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

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from joinedup import identifiers as ids
from joinedup.mci import standardise as std
from joinedup.names import normalise_name, soundex

__all__ = ["record_features"]

CACHE_SIZE = 65_536  # per process; names, dates and postcodes repeat a great deal


def _value(record: Mapping[str, Any], name: str) -> Any:
    """The field, with None for absent and for float NaN (how a frame marks missing)."""
    v = record.get(name)
    if isinstance(v, float) and math.isnan(v):
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


def _given(value: Any) -> tuple[str | None, str | None]:
    return (_name(value), _roots(value)) if value is not None else (None, None)


def record_features(record: Mapping[str, Any], record_id: Any = 0) -> dict[str, Any]:
    """The matcher's features (``FEATURE_COLUMNS``) of one canonical record.

    Missing fields count as empty; values are what a frame holds (str or None). The result
    equals ``standardise(pd.DataFrame([{**record, "record_id": record_id}]))``'s one row.
    """
    v = lambda name: _value(record, name)  # noqa: E731
    given, family, previous = v("given_name"), v("family_name"), v("previous_family_names")
    given_std, given_roots = _given(given)
    family_std = _name(family) if family is not None else None
    dob = _dob(v("date_of_birth")) if v("date_of_birth") is not None else (None, None, False)
    postcode = _home_postcode(v("postcode")) if v("postcode") is not None else None
    line1, line2 = v("address_line_1"), v("address_line_2")
    lines = _address_lines(line1, line2)
    address_key = std.address_key_of(postcode, lines)
    one = lambda name, fn: (None if v(name) is None else fn(v(name)))  # noqa: E731
    deceased = v("deceased_date")
    return {
        "record_id": record_id,
        "source_system": one("source_system", str),
        "source_key": one("source_key", str),
        "given_name_std": given_std,
        "given_name_roots": given_roots,
        "given_initial": given_std[0] if given_std else None,
        "middle_names_std": one("middle_names", _name),
        "family_name_std": family_std,
        "family_name_parts": _parts(family, previous),
        "family_name_phonetic": _soundex(family_std) if family_std is not None else None,
        "dob": dob[0],
        "dob_year": dob[1],
        "dob_is_placeholder": dob[2],
        "sex": one("sex", std.sex_code),
        "ni_key": one("ni_number", ids.nino_key),
        "nhs_number": one("nhs_number", std.nhs_std),
        "uprn": one("uprn", std.uprn_std),
        "postcode": postcode,
        "postcode_outward": postcode.split(" ", 1)[0] if postcode is not None else None,
        "address_key": address_key,
        "email_std": one("email", std.email_std),
        "phone_std": one("phone", std.phone_std),
        "deceased": False if deceased is None else bool(str(deceased).strip()),
    }
