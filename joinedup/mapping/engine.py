"""Apply a mapping to a batch of raw records: schema-drift check, then field rules.

Pure functions over pandas frames. The result has the canonical columns (schema order) and
``mapping_issues``: per row, the canonical fields whose source value was present but could
not be mapped (e.g. a date in an undeclared format). Those rows go to quarantine with that
reason, so a value is never lost quietly on its way to the index.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from joinedup.canonical import person_fields
from joinedup.mapping.spec import MappingSpec
from joinedup.mapping.transforms import distinct_values, get_transform, per_distinct, values_are_distinct


class SchemaDriftError(Exception):
    """The source's columns are not what the mapping expects. No personal data in the text."""


@dataclass
class Drift:
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def possible_renames(self) -> list[tuple[str, str]]:
        """Pairs (missing, unexpected) that look like the same column renamed."""
        import difflib

        pairs = []
        for gone in self.missing:
            close = difflib.get_close_matches(gone, self.unexpected, n=1, cutoff=0.5)
            if close:
                pairs.append((gone, close[0]))
        return pairs

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"missing column(s): {', '.join(self.missing)}")
        if self.unexpected:
            parts.append(f"new column(s): {', '.join(self.unexpected)}")
        for gone, new in self.possible_renames:
            parts.append(f"{gone!r} may have been renamed to {new!r}")
        return "; ".join(parts)


def detect_drift(columns: set[str], spec: MappingSpec) -> Drift:
    expected = spec.expected_columns()
    missing = [c for c in expected if c not in columns and c not in spec.optional_columns]
    unexpected = sorted(c for c in columns if c not in expected and c not in spec.optional_columns)
    return Drift(missing, unexpected)


def _blank(series: pd.Series) -> pd.Series:
    """Missing, or text that is only white space (computed once per distinct value)."""
    return series.isna() | per_distinct(series, lambda v: str(v).strip() == "").astype(bool)


def _has_nul(v: Any) -> bool:
    return isinstance(v, str) and "\x00" in v


def apply_mapping(raw: pd.DataFrame, spec: MappingSpec, source_system: str) -> pd.DataFrame:
    """Canonical frame for ``raw`` (one column per source field, text values)."""
    drift = detect_drift(set(raw.columns), spec)
    if drift.missing:
        where = spec.path or "mapping"
        raise SchemaDriftError(f"source {source_system}: schema drift against {where}: {drift.describe()}")
    out = pd.DataFrame(index=raw.index)
    issues: list[list[str]] = [[] for _ in range(len(raw))]
    for name in person_fields():
        rule = spec.fields.get(name)
        if name == "source_system":
            out[name] = source_system
            continue
        if rule is None:
            out[name] = None
            continue
        if rule.constant is not None:
            out[name] = rule.constant
            continue
        cols = [c for c in rule.source_columns() if c in raw.columns]
        if not cols:  # an optional column the source left out
            out[name] = None
            continue
        values = _joined(raw, cols, rule.join)
        # Every rule works value by value: run them once per distinct value, then spread back.
        codes, distinct = distinct_values(values)
        if codes is None:  # not all text (numbers, mixed types): row by row
            mapped, lost = _map_field(distinct, rule, name, spec)
        else:
            with values_are_distinct():
                mapped, lost = _map_field(distinct, rule, name, spec)
            mapped, lost = mapped[codes], lost[codes]
        for pos in lost.nonzero()[0]:
            issues[pos].append(name)
        out[name] = pd.Series(mapped, index=raw.index, dtype=object)
    out["mapping_issues"] = ["|".join(i) for i in issues]
    return out


def _map_field(values: pd.Series, rule: Any, name: str, spec: MappingSpec) -> tuple[np.ndarray, np.ndarray]:
    """One field's rule over ``values``: (canonical values, whether each value was lost: present
    in the source but not mappable, or holding a NUL)."""
    # A NUL character is no part of any name, date or number, and PostgreSQL cannot store
    # one in text: the value is not mapped, so the row is quarantined naming the field.
    nul = per_distinct(values, _has_nul).astype(bool)
    if nul.any():
        values = values.where(~nul, None)
    present = ~_blank(values)
    for step in rule.transform:
        fn = get_transform(step.name)
        try:
            values = fn(values, **step.params)
        except TypeError as exc:
            raise ValueError(f"{spec.path}: field {name}, transform {step.name}: bad parameters ({exc})") from None
        if getattr(fn, "may_be_empty", False):
            present = present & ~_blank(values)
    blank = _blank(values)
    lost = (present & blank) | nul
    return values.astype(object).where(~blank, None).to_numpy(dtype=object), lost.to_numpy(dtype=bool)


def map_records(records: list[dict[str, Any]], spec: MappingSpec, source_system: str,
                columns: list[str] | None = None) -> pd.DataFrame:
    """``apply_mapping`` over raw records as an adapter yields them (dicts of text or None).

    ``columns``: the columns of the whole batch when ``records`` are one chunk of it (a column
    only some records carry is then a column of every chunk, as it is of the whole batch)."""
    raw = pd.DataFrame(records, columns=columns).astype(object)
    return apply_mapping(raw.where(raw.notna(), None), spec, source_system)


def _joined(raw: pd.DataFrame, cols: list[str], sep: str) -> pd.Series:
    """One column's values, or several columns' stripped, non-blank parts joined by ``sep``
    (None when no part has text). Each column is tidied once per distinct value; only the
    join itself runs per row."""
    if len(cols) == 1:
        return raw[cols[0]].astype(object)

    def part(v: Any) -> Any:
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return None
        s = str(v).strip()
        return s or None

    columns = [per_distinct(raw[c], part).tolist() for c in cols]
    joined = [sep.join([p for p in parts if p is not None]) or None for parts in zip(*columns)]
    return pd.Series(joined, index=raw.index, dtype=object)
