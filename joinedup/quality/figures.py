"""The figures kept for each checked batch, so a steward can see whether a source is getting
better: rows in, rows quarantined by rule, and how complete each canonical field is.

Counts only, never a value: these figures go into the ``runs`` table's ``figures`` JSON
(under ``batches``) and onto static pages anyone with access to the server can open.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from joinedup.canonical import person_fields

# Fields every record of every source carries by construction: their completeness says nothing.
_NOT_MEASURED = ("source_system",)


def completeness(frame: pd.DataFrame) -> dict[str, int]:
    """Per canonical field, how many rows of the mapped batch have a value."""
    out: dict[str, int] = {}
    for name in person_fields():
        if name in _NOT_MEASURED or name not in frame.columns:
            continue
        out[name] = int(frame[name].notna().sum())
    return out


def batch_figures(batch_run_id: str, canonical: pd.DataFrame, *, rows_failed: int, by_rule: dict[str, int],
                  status: str, reason: str | None = None, duplicates_removed: int = 0,
                  data_docs: str | None = None) -> dict[str, Any]:
    """One batch's entry in the check stage's ``figures["batches"]``.

    ``status``: ``checked`` (admitted, failures quarantined) or ``refused`` (over threshold
    or a batch rule broken: nothing loaded, failures quarantined all the same)."""
    entry: dict[str, Any] = {
        "batch": batch_run_id,
        "status": status,
        "rows_in": int(len(canonical)),
        "rows_failed": int(rows_failed),
        "by_rule": dict(sorted(by_rule.items())),
        "completeness": completeness(canonical),
        "duplicates_removed": int(duplicates_removed),
    }
    if reason:
        entry["reason"] = reason
    if data_docs:
        entry["data_docs"] = data_docs
    return entry
