"""The mapping language and engine: rules, drift, and values never lost quietly."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from joinedup.configfile import ConfigError
from joinedup.mapping.engine import SchemaDriftError, apply_mapping, detect_drift
from joinedup.mapping.spec import MappingSpec, load_mapping

SPEC = {
    "columns": ["ref", "names", "surname", "dob", "pc", "sexcode"],
    "fields": {
        "source_key": {"from": "ref"},
        "given_name": {"from": ["names", "surname"], "join": " ", "transform": [{"split_name": {"part": "given"}}]},
        "middle_names": {"from": ["names", "surname"], "join": " ", "transform": [{"split_name": {"part": "middle"}}]},
        "family_name": {"from": "surname", "transform": ["trim", "title_case_name"]},
        "date_of_birth": {"from": "dob", "transform": {"parse_date": {"formats": ["%d/%m/%Y"]}}},
        "postcode": {"from": "pc", "transform": "normalise_postcode"},
        "sex": {"from": "sexcode", "transform": {"code_lookup": {"codes": {"1": "M", "2": "F"}}}},
        "town": {"constant": "Newport"},
    },
}


def _raw(**overrides: object) -> pd.DataFrame:
    row = {"ref": "E1", "names": "TINA HOLLY", "surname": "LOXHAM", "dob": "03/04/1961", "pc": "np20 1ab", "sexcode": "2"}
    row.update(overrides)
    return pd.DataFrame([row]).astype(object)


def test_fields_are_mapped_in_canonical_order() -> None:
    out = apply_mapping(_raw(), MappingSpec.model_validate(SPEC), "hr")
    row = out.iloc[0]
    assert list(out.columns[:3]) == ["source_system", "source_key", "title"]
    assert (row.source_system, row.source_key, row.given_name, row.middle_names, row.family_name) == (
        "hr", "E1", "TINA", "HOLLY", "Loxham")
    assert (row.date_of_birth, row.postcode, row.sex, row.town) == ("1961-04-03", "NP20 1AB", "F", "Newport")
    assert row.mapping_issues == ""


def test_no_middle_name_is_not_a_mapping_issue() -> None:
    out = apply_mapping(_raw(names="TINA"), MappingSpec.model_validate(SPEC), "hr")
    assert out.iloc[0].middle_names is None and out.iloc[0].mapping_issues == ""


def test_a_value_that_cannot_be_converted_is_reported_not_dropped() -> None:
    out = apply_mapping(_raw(dob="31/13/1961", sexcode="7"), MappingSpec.model_validate(SPEC), "hr")
    assert out.iloc[0].date_of_birth is None
    assert out.iloc[0].mapping_issues == "date_of_birth|sex"


def test_missing_column_is_schema_drift_naming_the_column() -> None:
    raw = _raw().rename(columns={"dob": "d_o_b"})
    with pytest.raises(SchemaDriftError, match=r"missing column\(s\): dob.*new column\(s\): d_o_b.*'dob' may have been renamed to 'd_o_b'"):
        apply_mapping(raw, MappingSpec.model_validate(SPEC), "hr")


def test_new_column_alone_is_reported_but_not_fatal() -> None:
    drift = detect_drift({*SPEC["columns"], "shoe_size"}, MappingSpec.model_validate(SPEC))
    assert drift.missing == [] and drift.unexpected == ["shoe_size"]


def test_errors_name_file_line_key_and_known_values(tmp_path: Path) -> None:
    path = tmp_path / "housing.yaml"
    path.write_text(
        "fields:\n"
        "  source_key: {from: ref}\n"
        "  ni_number: {from: nino, transform: parse_nin}\n"
        "  shoe_size: {from: shoe}\n"
        "  given_name: {from: a, constant: b}\n"
        "colums: [a]\n"
    )
    with pytest.raises(ConfigError) as err:
        load_mapping(path)
    text = str(err.value)
    assert str(path) in text and "4 problem(s)" in text
    assert "line 3: fields.ni_number.transform: " in text and "unknown transform 'parse_nin'" in text
    assert "known: " in text and "normalise_nino" in text
    assert "line 4: fields.shoe_size.[key]: Input should be 'source_system', 'source_key'" in text
    assert "line 5: fields.given_name" in text and "exactly one of 'from'" in text
    assert "line 6: colums: unknown key" in text


def test_every_shipped_mapping_loads() -> None:
    folder = Path(__file__).resolve().parents[2] / "mappings"
    specs = [load_mapping(p) for p in sorted(folder.glob("*.yaml"))]
    assert len(specs) >= 4 and all("source_key" in s.fields for s in specs)
