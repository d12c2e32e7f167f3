"""Validate a canonical batch with Great Expectations Core and split it: rows that pass go on
to staging; rows that fail go to quarantine with the rule and the field (never the value).

GX runs with an ephemeral context inside the calling task (the GX Airflow provider does not
install beside Airflow 3.3). Suites are GX suite JSON files in ``schemas/expectations``:
``canonical_person.json`` for every source, plus ``<source>.json`` for one source's extras.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from joinedup.paths import project_root
from joinedup.quality.checks import add_check_columns

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
log = logging.getLogger(__name__)
# GX announces every ephemeral context at INFO; the night's log needs only its warnings.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

BASE_SUITE = "canonical_person"


@dataclass
class Failure:
    position: int  # row position in the batch
    rule: str
    field: str | None
    reason: str


@dataclass
class GateResult:
    passed: pd.DataFrame
    failures: list[Failure]
    rows_in: int
    failed_positions: list[int]
    by_rule: dict[str, int] = field(default_factory=dict)
    data_docs: dict[str, Any] = field(default_factory=dict)

    @property
    def failure_rate(self) -> float:
        return len(self.failed_positions) / self.rows_in if self.rows_in else 0.0


class QualityGateFailed(Exception):
    """The share of failing rows is over the source's threshold: its load stops."""


def suite_paths(source_system: str) -> list[Path]:
    folder = project_root() / "schemas" / "expectations"
    paths = [folder / f"{BASE_SUITE}.json"]
    extra = folder / f"{source_system}.json"
    if extra.exists():
        paths.append(extra)
    return paths


@lru_cache(maxsize=32)
def _suite_expectations(path: str) -> tuple[dict[str, Any], ...]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return tuple(data["expectations"])


def _gx_suite(gx: Any, name: str, specs: list[dict[str, Any]]) -> Any:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite = gx.ExpectationSuite(name=name)
    for spec in specs:
        config = ExpectationConfiguration(type=spec["type"], kwargs=spec["kwargs"], meta=spec.get("meta", {}))
        suite.add_expectation_configuration(config)
    return suite


def validate_batch(frame: pd.DataFrame, source_system: str) -> GateResult:
    """Run the suites over ``frame`` (canonical columns + ``mapping_issues``)."""
    import great_expectations as gx

    checked = add_check_columns(frame).reset_index(drop=True)
    specs = [e for p in suite_paths(source_system) for e in _suite_expectations(str(p))]
    failures: list[Failure] = []
    if len(checked):
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = {"globally": False}
        source = context.data_sources.add_pandas(f"{source_system}_batch")
        asset = source.add_dataframe_asset("canonical")
        batch_def = asset.add_batch_definition_whole_dataframe("whole")
        suite = context.suites.add(_gx_suite(gx, f"{source_system}_suite", specs))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{source_system}_gate", data=batch_def, suite=suite)
        )
        result = definition.run(
            batch_parameters={"dataframe": checked},
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": []},
        )
        for res in result.results:
            meta = res.expectation_config.meta or {}
            column = res.expectation_config.kwargs.get("column")
            rule = meta.get("rule", res.expectation_config.type)
            fld = meta.get("field", column)
            if res.exception_info and res.exception_info.get("raised_exception"):
                raise RuntimeError(f"quality rule {rule} could not run on source {source_system}: "
                                   f"{res.exception_info.get('exception_message')}")
            for pos in res.result.get("unexpected_index_list") or []:
                if rule == "value_not_mappable":
                    for bad in str(checked.at[pos, "mapping_issues"]).split("|"):
                        failures.append(Failure(int(pos), rule, bad, f"{bad}: {meta.get('why', '')}"))
                else:
                    failures.append(Failure(int(pos), rule, fld, meta.get("why", rule)))
    failed = sorted({f.position for f in failures})
    by_rule: dict[str, int] = {}
    for f in failures:
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
    passed = frame.reset_index(drop=True).drop(index=failed)
    return GateResult(passed=passed, failures=failures, rows_in=len(frame), failed_positions=failed, by_rule=by_rule)
