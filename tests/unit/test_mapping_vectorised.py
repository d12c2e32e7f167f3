"""Old against new: the per-distinct mapping and check columns give exactly what the row-by-row
code gave (the reference below is that code, kept verbatim), on generated awkward values and
on the synthetic council's own records through the real mapping files."""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joinedup.canonical import person_fields
from joinedup.identifiers import is_valid_nhs_number
from joinedup.mapping import engine, transforms
from joinedup.mapping.engine import apply_mapping, map_records
from joinedup.mapping.spec import MappingSpec, load_mapping
from joinedup.quality import checks

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


# -- the reference: the row-by-row engine and checks as they were ------------------------------
def _row_by_row(values: pd.Series, one: Any) -> pd.Series:
    return pd.Series([one(v) for v in values], index=values.index, dtype=object)


def _ref_blank(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype(str).str.strip() == "")


def _ref_joined(raw: pd.DataFrame, cols: list[str], sep: str) -> pd.Series:
    if len(cols) == 1:
        return raw[cols[0]].astype(object)

    def join(row: Any) -> Any:
        parts = [str(v).strip() for v in row if v is not None and not (isinstance(v, float) and pd.isna(v)) and str(v).strip()]
        return sep.join(parts) if parts else None

    return raw[cols].apply(join, axis=1).astype(object)


def _ref_apply_mapping(raw: pd.DataFrame, spec: MappingSpec, source_system: str) -> pd.DataFrame:
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
        if not cols:
            out[name] = None
            continue
        values = _ref_joined(raw, cols, rule.join)
        nul = values.map(lambda v: isinstance(v, str) and "\x00" in v).astype(bool)
        if nul.any():
            values = values.where(~nul, None)
        present = ~_ref_blank(values)
        for step in rule.transform:
            fn = transforms.get_transform(step.name)
            values = fn(values, **step.params)
            if getattr(fn, "may_be_empty", False):
                present = present & ~_ref_blank(values)
        lost = (present & _ref_blank(values)) | nul
        for pos in lost.to_numpy().nonzero()[0]:
            issues[pos].append(name)
        out[name] = values.astype(object).where(~_ref_blank(values), None)
    out["mapping_issues"] = ["|".join(i) for i in issues]
    return out


def _ref_check_columns(frame: pd.DataFrame, today: date) -> pd.DataFrame:
    out = frame.copy()
    out["check_nhs_number"] = frame["nhs_number"].map(
        lambda v: None if v is None else ("ok" if is_valid_nhs_number(v) else "invalid"))
    out["check_date_of_birth"] = frame["date_of_birth"].map(lambda v: checks.date_verdict(v, today))

    def deceased(row: pd.Series) -> str | None:
        verdict = checks.date_verdict(row["deceased_date"], today)
        if verdict == "ok" and row["date_of_birth"] and checks._iso_date(row["date_of_birth"]):
            if checks._iso_date(row["deceased_date"]) < checks._iso_date(row["date_of_birth"]):
                return "before_birth"
        return verdict

    out["check_deceased_date"] = frame.apply(deceased, axis=1) if len(frame) else pd.Series(dtype=object)
    has_name = frame["family_name"].notna() & frame["given_name"].notna()
    has_id = frame["ni_number"].notna() | frame["nhs_number"].notna()
    out["check_identity"] = (has_name | has_id).map(lambda ok: "ok" if ok else None)
    out["mapping_issues"] = frame["mapping_issues"].map(lambda v: v or None)
    return out


def reference(raw: pd.DataFrame, spec: MappingSpec, source: str, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    """The old engine over the old (one call per row) transforms."""
    with monkeypatch.context() as m:
        m.setattr(transforms, "per_distinct", _row_by_row)
        return _ref_apply_mapping(raw, spec, source)


# -- generated awkward values --------------------------------------------------------------------
AWKWARD = ["", " ", "  \t", "\xa0", "\x1c", None, float("nan"), "x\x00y", "O'BRIEN", "mcdonald", "DE LA CRUZ",
           "Mr.", "revd", "Dr John A. Smith", "SMITH, John", "03/04/1961", "1961-04-03", "31/02/1999", "1961-4-3",
           "2024-05-01T10:11:12Z", "2024-05-01T10:11:12", "sw1a1aa", "bfpo105", "ab 12 34 56 c", "QQ123456C",
           "943 476 5919", "0001000233", "100.0", "+44 (0)20 7946 0958", " Jo@Example.COM ", "1", "2", "9", "m", "Z",
           "HT-001234", "ÉLODIE", "ß", "  tina   holly  "]
value = st.one_of(st.sampled_from(AWKWARD), st.text(max_size=12))

SPEC = MappingSpec.model_validate({
    "columns": ["a", "b", "c", "d", "e", "f"],
    "fields": {
        "source_key": {"from": "a", "transform": ["trim", "upper"]},
        "title": {"from": "b", "transform": "normalise_title"},
        "given_name": {"from": ["b", "c"], "join": " ", "transform": [{"split_name": {"part": "given"}}, "title_case_name"]},
        "middle_names": {"from": ["b", "c"], "transform": [{"split_name": {"part": "middle"}}]},
        "family_name": {"from": "c", "transform": ["trim", "title_case_name"]},
        "date_of_birth": {"from": "d", "transform": {"parse_date": {"formats": ["%d/%m/%Y", "%Y-%m-%d"]}}},
        "deceased_date": {"from": "e", "transform": {"parse_date": {"formats": ["%Y-%m-%d"]}}},
        "updated_at": {"from": "e", "transform": {"parse_datetime": {"formats": ["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"]}}},
        "ni_number": {"from": "f", "transform": "normalise_nino"},
        "nhs_number": {"from": "f", "transform": "normalise_nhs_number"},
        "uprn": {"from": "f", "transform": "normalise_uprn"},
        "postcode": {"from": "b", "transform": "normalise_postcode"},
        "phone": {"from": "f", "transform": "normalise_phone"},
        "email": {"from": "a", "transform": "normalise_email"},
        "sex": {"from": "a", "transform": {"code_lookup": {"codes": {"1": "M", "2": "F", "m": "M"}}}},
        "address_line_1": {"from": ["a", "f"], "join": ", ", "transform": "trim"},
        "address_line_2": {"from": "d", "transform": "lower"},
        "address_line_3": {"from": "c", "transform": "digits_only"},
        "town": {"from": "c"},
    },
})


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries({c: value for c in "abcdef"}), min_size=1, max_size=40))
def test_mapping_and_checks_match_the_row_by_row_code(rows: list[dict[str, Any]]) -> None:
    raw = pd.DataFrame(rows).astype(object)
    with pytest.MonkeyPatch.context() as mp:
        expected = reference(raw, SPEC, "hr", mp)
    got = apply_mapping(raw, SPEC, "hr")
    pd.testing.assert_frame_equal(got, expected)
    today = date(2025, 1, 1)
    pd.testing.assert_frame_equal(checks.add_check_columns(got, today), _ref_check_columns(expected, today))


def test_a_column_of_numbers_falls_back_to_one_call_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mixed types (say a JSON source sending a UPRN as a number) keep str(v) semantics."""
    raw = pd.DataFrame({"a": ["K1", "K2", "K3", "K4"], "f": [100023336956, 1.0, "0001", True]}).astype(object)
    spec = MappingSpec.model_validate({"fields": {"source_key": {"from": "a"}, "uprn": {"from": "f", "transform": "normalise_uprn"},
                                                  "address_line_1": {"from": ["a", "f"]}}})
    pd.testing.assert_frame_equal(apply_mapping(raw, spec, "x"), reference(raw, spec, "x", monkeypatch))


def test_per_distinct_calls_once_per_distinct_text() -> None:
    calls: list[Any] = []
    values = pd.Series(["a", "b", "a", None, "a", None, np.nan], dtype=object)
    out = transforms.per_distinct(values, lambda v: calls.append(v) or (None if not isinstance(v, str) else v.upper()))
    assert out.tolist() == ["A", "B", "A", None, "A", None, None]
    assert calls[:3] == ["a", "b", None] and len(calls) == 4  # a, b, None once, NaN as itself


def test_per_distinct_tells_texts_apart_after_a_nul() -> None:
    """pd.factorize's string table ends a text at NUL ('' and '\x00' would be one value)."""
    values = pd.Series(["", "\x00", "a", "a\x00b"], dtype=object)
    assert transforms.per_distinct(values, len).tolist() == [0, 1, 1, 3]


@pytest.mark.parametrize("source", ["revenues", "housing", "socialcare", "hr"])
def test_the_councils_records_map_as_before(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from joinedup.simulators.council import build_council
    from joinedup.simulators.history import RecordHistory

    council = build_council(300, seed=7, history=RecordHistory.named("full"))
    records = council.records[source]
    assert records
    spec = load_mapping(MAPPINGS / f"{source}.yaml")
    raw = pd.DataFrame(records).astype(object)
    raw = raw.where(raw.notna(), None)
    got = map_records(records, spec, source)
    pd.testing.assert_frame_equal(got, reference(raw, spec, source, monkeypatch))
