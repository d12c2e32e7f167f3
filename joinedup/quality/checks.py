"""Computed check columns for rules a GX regex cannot express.

Each ``check_<field>`` column holds a verdict word (``ok``, ``invalid``, ``future`` ...) or
None when the field is empty; the suite then expects the bad verdicts to be absent. The rule
lives in one plain function per field, so it is testable without GX.
"""
from __future__ import annotations

from datetime import date

import pandas as pd

from joinedup.identifiers import is_valid_nhs_number


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


def add_check_columns(frame: pd.DataFrame, today: date | None = None) -> pd.DataFrame:
    today = today or date.today()
    out = frame.copy()
    out["check_nhs_number"] = frame["nhs_number"].map(
        lambda v: None if v is None else ("ok" if is_valid_nhs_number(v) else "invalid")
    )
    out["check_date_of_birth"] = frame["date_of_birth"].map(lambda v: date_verdict(v, today))

    def deceased(row: pd.Series) -> str | None:
        verdict = date_verdict(row["deceased_date"], today)
        if verdict == "ok" and row["date_of_birth"] and _iso_date(row["date_of_birth"]):
            if _iso_date(row["deceased_date"]) < _iso_date(row["date_of_birth"]):  # type: ignore[operator]
                return "before_birth"
        return verdict

    out["check_deceased_date"] = frame.apply(deceased, axis=1) if len(frame) else pd.Series(dtype=object)
    has_name = frame["family_name"].notna() & frame["given_name"].notna()
    has_id = frame["ni_number"].notna() | frame["nhs_number"].notna()
    out["check_identity"] = (has_name | has_id).map(lambda ok: "ok" if ok else None)
    out["mapping_issues"] = frame["mapping_issues"].map(lambda v: v or None)
    return out
