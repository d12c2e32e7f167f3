"""Computed check columns for rules a GX regex cannot express.

Each ``check_<field>`` column holds a verdict word (``ok``, ``invalid``, ``future`` ...) or
None when the field is empty; the suite then expects the bad verdicts to be absent. The rule
lives in one plain function per field, so it is testable without GX.
"""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from joinedup.identifiers import is_valid_nhs_number
from joinedup.mapping.transforms import per_distinct


def _iso_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def date_verdict(value: str | None, today: date) -> str | None:
    if value is None:
        return None
    parsed = _iso_date(value)
    if parsed is None:
        return "invalid"
    return "future" if parsed > today else "ok"


def _nhs_verdict(value: str | None) -> str | None:
    return None if value is None else ("ok" if is_valid_nhs_number(value) else "invalid")


def _deceased_verdict(deceased: str | None, birth: str | None, today: date) -> str | None:
    verdict = date_verdict(deceased, today)
    if verdict == "ok" and birth and _iso_date(birth):
        if _iso_date(deceased) < _iso_date(birth):  # type: ignore[arg-type, operator]
            return "before_birth"
    return verdict


def add_check_columns(frame: pd.DataFrame, today: date | None = None) -> pd.DataFrame:
    """``frame`` (not changed) plus one ``check_<field>`` verdict column per computed rule.

    Each verdict is computed once per distinct value (dates of birth and empty fields repeat
    a great deal); the deceased-date rule, which also reads the date of birth, runs per row
    only where a plausible date of death is present."""
    today = today or date.today()
    out = frame.copy(deep=False)  # new columns only: the caller's frame is left as it was
    out["check_nhs_number"] = per_distinct(frame["nhs_number"], _nhs_verdict)
    out["check_date_of_birth"] = per_distinct(frame["date_of_birth"], lambda v: date_verdict(v, today))
    deceased = per_distinct(frame["deceased_date"], lambda v: date_verdict(v, today))
    if len(frame):
        values = deceased.to_numpy(dtype=object)
        death, birth = frame["deceased_date"].to_numpy(dtype=object), frame["date_of_birth"].to_numpy(dtype=object)
        for pos in (values == "ok").nonzero()[0]:
            values[pos] = _deceased_verdict(death[pos], birth[pos], today)
        out["check_deceased_date"] = pd.Series(values, index=frame.index, dtype=object)
    else:
        out["check_deceased_date"] = pd.Series(dtype=object)
    has_name = frame["family_name"].notna() & frame["given_name"].notna()
    has_id = frame["ni_number"].notna() | frame["nhs_number"].notna()
    out["check_identity"] = pd.Series(np.where(has_name | has_id, "ok", None), index=frame.index, dtype=object)
    out["mapping_issues"] = per_distinct(frame["mapping_issues"], lambda v: v or None)
    return out
