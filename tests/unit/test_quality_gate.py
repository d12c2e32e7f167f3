"""The quality gate on batches with known defects: the canonical suite merged with a source's
additions quarantines exactly the rows it should, rule by rule; batch rules refuse a batch
without blaming rows; a suite that reuses a rule name is refused with the file named."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def _tenant(i: int, **changes: str | None) -> dict[str, str | None]:
    record = {
        "TenantRef": f"HT{i:06d}", "Title": "Mrs", "Forename": "Siân", "Surname": "O'Brien",
        "DateOfBirth": "1970-01-31", "NINumber": "AB123456C", "PropertyUPRN": str(100023336900 + i),
        "AddressLine1": f"{i} Heol y Bont", "AddressLine2": None, "Town": "Cardiff", "PostCode": "CF10 1AA",
        "Phone": None, "Email": None, "TenancyStart": "2010-04-01", "LastModified": "2026-01-04T10:00:00",
    }
    record.update(changes)
    return record


def _housing_batch() -> list[dict[str, str | None]]:
    rows = [_tenant(i) for i in range(1, 21)]
    rows[1]["NINumber"] = "QQ123456C"  # never issued: ni_number_valid
    rows[2]["TenantRef"] = "T12345"  # housing_tenant_ref_shape
    rows[3]["PropertyUPRN"] = None  # housing_uprn_required
    rows[4]["PropertyUPRN"] = ""  # blank is missing too: housing_uprn_required
    rows[5]["PostCode"] = "XYZ"  # postcode_valid
    rows[6]["DateOfBirth"] = "31/02/1980"  # not in the declared format: value_not_mappable (date_of_birth)
    rows[7]["DateOfBirth"] = "2090-01-01"  # future: date_of_birth_plausible
    rows[8]["TenantRef"] = rows[9]["TenantRef"]  # two records under one key: both source_key_unique_in_batch
    rows[10].update(TenantRef="X1", PropertyUPRN=None)  # two defects in one row
    return rows


def test_housing_batch_with_known_defects_quarantines_exactly_these_rows(project: Path) -> None:
    from joinedup.adapters.config import adapters_dir, load_source
    from joinedup.mapping.engine import map_records
    from joinedup.mapping.spec import load_mapping
    from joinedup.quality.gate import source_suite, validate_batch

    config = load_source(adapters_dir() / "housing.yaml")
    canonical = map_records(_housing_batch(), load_mapping(config.mapping_path()), "housing")
    gate = validate_batch(canonical, "housing", suite=source_suite(config))

    assert gate.by_rule == {
        "ni_number_valid": 1, "housing_tenant_ref_shape": 2, "housing_uprn_required": 3, "postcode_valid": 1,
        "value_not_mappable": 1, "date_of_birth_plausible": 1, "source_key_unique_in_batch": 2,
    }
    assert gate.failed_positions == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert len(gate.passed) == 10 and gate.rows_in == 20
    fields = {(f.position, f.rule): f.field for f in gate.failures}
    assert fields[(6, "value_not_mappable")] == "date_of_birth"
    assert fields[(3, "housing_uprn_required")] == "uprn"
    assert fields[(2, "housing_tenant_ref_shape")] == "source_key"
    assert gate.batch_failures == []


def test_the_same_batch_under_the_canonical_suite_alone_misses_the_housing_rules(project: Path) -> None:
    from joinedup.adapters.config import adapters_dir, load_source
    from joinedup.mapping.engine import map_records
    from joinedup.mapping.spec import load_mapping
    from joinedup.quality.gate import validate_batch

    config = load_source(adapters_dir() / "housing.yaml")
    canonical = map_records(_housing_batch(), load_mapping(config.mapping_path()), "housing")
    gate = validate_batch(canonical, "housing", suite="no_such_suite")
    assert "housing_uprn_required" not in gate.by_rule and "housing_tenant_ref_shape" not in gate.by_rule
    assert gate.by_rule["ni_number_valid"] == 1


def _client(i: int, nhs: str | None) -> dict[str, str | None]:
    return {"ClientId": f"SC{i:07d}", "GivenName": "Gwenllïan", "FamilyName": "Ap Rhys", "PreferredName": None,
            "BirthDate": "1950-06-01", "NHSNumber": nhs, "NINumber": None, "Gender": "2", "Address1": "1 Stryd Fawr",
            "Address2": None, "Town": "Bangor", "Postcode": "LL57 1AA", "CaseStatus": "open",
            "LastUpdated": "2026-01-04T10:00:00"}


def test_a_batch_rule_refuses_the_batch_without_blaming_rows(project: Path) -> None:
    from joinedup.adapters.config import adapters_dir, load_source
    from joinedup.mapping.engine import map_records
    from joinedup.mapping.spec import load_mapping
    from joinedup.quality.gate import source_suite, validate_batch

    config = load_source(adapters_dir() / "socialcare.yaml")
    spec = load_mapping(config.mapping_path())
    lost = [_client(i, None if i <= 3 else "9434765919") for i in range(1, 11)]  # 3 of 10 without: 70% < 90%
    gate = validate_batch(map_records(lost, spec, "socialcare"), "socialcare", suite=source_suite(config))
    assert [(b.rule, b.unexpected, b.rows) for b in gate.batch_failures] == [("socialcare_nhs_number_mostly_present", 3, 10)]
    assert gate.failures == [] and len(gate.passed) == 10
    fine = [_client(i, None if i == 1 else "9434765919") for i in range(1, 11)]  # 1 of 10 without: 90%
    assert validate_batch(map_records(fine, spec, "socialcare"), "socialcare", suite="socialcare").batch_failures == []


def test_validation_result_kept_for_data_docs_holds_counts_not_values(project: Path) -> None:
    from joinedup.adapters.config import adapters_dir, load_source
    from joinedup.mapping.engine import map_records
    from joinedup.mapping.spec import load_mapping
    from joinedup.quality.gate import source_suite, validate_batch

    config = load_source(adapters_dir() / "housing.yaml")
    canonical = map_records(_housing_batch(), load_mapping(config.mapping_path()), "housing")
    gate = validate_batch(canonical, "housing", suite=source_suite(config), run_name="night-1")
    text = json.dumps(gate.validation.to_json_dict())
    assert "QQ123456C" not in text and "XYZ" not in text and "T12345" not in text
    counts = {r.expectation_config.meta["rule"]: r.result.get("unexpected_count") for r in gate.validation.results}
    assert counts["ni_number_valid"] == 1 and counts["housing_uprn_required"] == 3


def test_a_source_suite_reusing_a_canonical_rule_name_is_refused(project: Path) -> None:
    from joinedup.quality.gate import SuiteError, merged_expectations

    (project / "schemas" / "expectations" / "clash.json").write_text(json.dumps({"expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "uprn"}, "meta": {"rule": "postcode_valid"}}]}))
    with pytest.raises(SuiteError, match=r"clash\.json: rule 'postcode_valid' is already defined"):
        merged_expectations("clash")


def test_a_suite_with_an_unknown_level_is_refused(project: Path) -> None:
    from joinedup.quality.gate import SuiteError, merged_expectations

    (project / "schemas" / "expectations" / "odd.json").write_text(json.dumps({"expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "uprn"}, "meta": {"level": "night"}}]}))
    with pytest.raises(SuiteError, match=r"odd\.json, expectation #1: meta.level 'night'"):
        merged_expectations("odd")
