"""Validate a canonical batch with Great Expectations Core and split it: rows that pass go on
to staging; rows that fail go to quarantine with the rule and the field (never the value).

GX runs with an ephemeral context inside the calling task (the GX Airflow provider does not
install beside Airflow 3.3). A night step is a fresh process, so what the gate pays once per
process is most of a small incremental night's cost: GX is imported through
``gx_loader`` (without the libraries no suite of ours uses), and each source's context and
validation definition are built once per process and reused by its later batches. Suites are GX suite JSON files in ``schemas/expectations``:
``canonical_person.json`` for every source, plus ``<suite>.json`` with one source layout's
additions (the pipeline names it after the source's mapping file, so two sources that share
a layout share its checks). The two are merged into one suite.

Two levels of rule, named in each expectation's ``meta``:

- ``row`` (the default): every row the expectation flags is quarantined under the rule.
- ``batch``: a property of the whole extract (say "NHS number on at least 90% of social-care
  records"); when it fails, the batch is refused loudly and no row is blamed for it.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from joinedup.paths import project_root
from joinedup.quality.checks import add_check_columns
from joinedup.quality.gx_loader import great_expectations

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
    order: int = 0  # the expectation's place in the validation result (the quarantine's order)


@dataclass
class BatchRuleFailure:
    """A batch-level rule the extract as a whole broke (counts only)."""

    rule: str
    field: str | None
    why: str
    unexpected: int
    rows: int

    def describe(self) -> str:
        return f"batch rule {self.rule} ({self.field}): {self.unexpected} of {self.rows} rows - {self.why}"


@dataclass
class GateResult:
    passed: pd.DataFrame
    failures: list[Failure]
    rows_in: int
    failed_positions: list[int]
    by_rule: dict[str, int] = field(default_factory=dict)
    batch_failures: list[BatchRuleFailure] = field(default_factory=list)
    # GX's validation result with every value taken out (counts only): what Data Docs render.
    validation: Any = None
    suite_name: str = ""

    @property
    def failure_rate(self) -> float:
        return len(self.failed_positions) / self.rows_in if self.rows_in else 0.0


class QualityGateFailed(Exception):
    """The batch is refused (failure rate over the source's threshold, or a batch-level rule
    broken): its load stops. ``quarantine`` holds the rows that failed, as quarantine entries
    (rule, field, source key, landing file/row; no values), so they are recorded all the same."""

    def __init__(self, message: str, quarantine: list[dict[str, Any]] | None = None,
                 figures: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.quarantine = quarantine or []
        self.figures = figures or {}


class SuiteError(ValueError):
    """An expectation suite file is not usable; the message names the file and the problem."""


def source_suite(config: Any) -> str:
    """The per-source suite of a source (a ``SourceConfig``): named after its mapping file,
    because the additions check the source's layout (its key shape, the fields it must send)."""
    return Path(config.mapping).stem


def suite_paths(source_system: str, suite: str | None = None) -> list[Path]:
    """The canonical suite, then ``<suite>.json`` (default: the source's name) if it exists."""
    folder = project_root() / "schemas" / "expectations"
    paths = [folder / f"{BASE_SUITE}.json"]
    extra = folder / f"{suite or source_system}.json"
    if extra.exists() and extra != paths[0]:
        paths.append(extra)
    return paths


@lru_cache(maxsize=32)
def _suite_expectations(path: str) -> tuple[dict[str, Any], ...]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        specs = tuple(data["expectations"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SuiteError(f"expectation suite {path} cannot be read ({exc}); it must be JSON with an "
                         "'expectations' list") from None
    for n, spec in enumerate(specs):
        if not isinstance(spec, dict) or "type" not in spec or "kwargs" not in spec:
            raise SuiteError(f"expectation suite {path}, expectation #{n + 1}: needs 'type' and 'kwargs'")
        level = (spec.get("meta") or {}).get("level", "row")
        if level not in ("row", "batch"):
            raise SuiteError(f"expectation suite {path}, expectation #{n + 1}: meta.level {level!r}; known: row, batch")
    return specs


def merged_expectations(source_system: str, suite: str | None = None) -> list[dict[str, Any]]:
    """The canonical expectations plus the source's additions, each rule name used once."""
    specs: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for path in suite_paths(source_system, suite):
        for spec in _suite_expectations(str(path)):
            rule = (spec.get("meta") or {}).get("rule", spec["type"])
            if rule in seen and (spec.get("meta") or {}).get("rule"):
                raise SuiteError(f"expectation suite {path}: rule {rule!r} is already defined in {seen[rule]}; "
                                 "give the source's rule its own name")
            seen.setdefault(rule, path)
            specs.append(spec)
    return specs


def _gx_suite(gx: Any, name: str, specs: list[dict[str, Any]]) -> Any:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite = gx.ExpectationSuite(name=name)
    for spec in specs:
        config = ExpectationConfiguration(type=spec["type"], kwargs=spec["kwargs"], meta=spec.get("meta", {}))
        suite.add_expectation_configuration(config)
    return suite


def _counts_only(result: Any) -> Any:
    """GX's result with every list of values removed: Data Docs and stored results must not
    carry personal data (a regex rule's 'unexpected values' are NI numbers and postcodes)."""
    for res in result.results:
        kept = {k: v for k, v in (res.result or {}).items()
                if isinstance(v, (int, float, bool)) or v is None}
        res.result = kept
    return result


@dataclass
class _Prepared:
    """One source's validation definition, in an ephemeral GX context of its own, and the
    merged suite it was built from."""

    specs: list[dict[str, Any]]
    context: Any
    definition: Any


_prepared: dict[tuple[str, str], _Prepared] = {}


def _definition(gx: Any, source_system: str, suite_key: str, specs: list[dict[str, Any]]) -> _Prepared:
    """The source's GX validation definition, built once per process: a night step validates
    one source's batches, all against the same merged suite. Built anew (in a fresh context)
    when the suite files have changed since."""
    key = (source_system, suite_key)
    ready = _prepared.get(key)
    if ready is not None and ready.specs == specs:
        return ready
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    source = context.data_sources.add_pandas(f"{source_system}_batch")
    asset = source.add_dataframe_asset(source_system)
    batch_def = asset.add_batch_definition_whole_dataframe("whole")
    gx_suite = context.suites.add(_gx_suite(gx, f"{source_system}_suite", specs))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{source_system}_gate", data=batch_def, suite=gx_suite)
    )
    _prepared[key] = ready = _Prepared(specs, context, definition)
    return ready


def _forget_results(context: Any) -> None:
    """Empty the ephemeral context's in-memory result store: it would otherwise keep every
    batch's full result (with its unexpected values) for as long as the process lives."""
    store = context.validation_results_store
    for key in store.list_keys():
        store.remove_key(key)


def validate_batch(frame: pd.DataFrame, source_system: str, *, suite: str | None = None,
                   run_name: str | None = None, duplicated: Any = None) -> GateResult:
    """Run the merged suites over ``frame`` (canonical columns + ``mapping_issues``).

    ``suite``: the per-source suite's name (default: ``source_system``); ``run_name``: how
    the validation is labelled in Data Docs (say the landed batch's run id).
    ``duplicated``: when ``frame`` is one chunk of a larger batch, per row of ``frame``
    whether its source key is held by another row of the whole batch (see
    ``duplicated_keys``); the source-key uniqueness rule then judges by it instead of by the
    chunk alone, so its failures and counts are those of the whole batch.

    GX is imported once per process (``gx_loader``) and the source's validation definition is
    built once per process; every expectation of the merged suite runs on every batch."""
    checked = add_check_columns(frame).reset_index(drop=True)
    specs = merged_expectations(source_system, suite)
    suite_name = f"{source_system}_suite"
    failures: list[Failure] = []
    batch_failures: list[BatchRuleFailure] = []
    validation = None
    if len(checked):
        gx = great_expectations()
        from great_expectations.core.run_identifier import RunIdentifier

        prepared = _definition(gx, source_system, suite or source_system, specs)
        try:
            result = prepared.definition.run(
                batch_parameters={"dataframe": checked},
                result_format={"result_format": "COMPLETE", "unexpected_index_column_names": []},
                run_id=RunIdentifier(run_name=run_name) if run_name else None,
            )
        finally:
            _forget_results(prepared.context)
        for order, res in enumerate(result.results):
            meta = res.expectation_config.meta or {}
            column = res.expectation_config.kwargs.get("column")
            if duplicated is not None and _is_key_uniqueness(res.expectation_config):
                _judge_uniqueness(res, np.asarray(duplicated, dtype=bool))
            rule = meta.get("rule", res.expectation_config.type)
            fld = meta.get("field", column)
            if res.exception_info and res.exception_info.get("raised_exception"):
                raise RuntimeError(f"quality rule {rule} could not run on source {source_system}: "
                                   f"{res.exception_info.get('exception_message')}")
            if meta.get("level") == "batch":
                if not res.success:
                    batch_failures.append(BatchRuleFailure(rule, fld, meta.get("why", rule),
                                                           int(res.result.get("unexpected_count") or 0), len(checked)))
                continue
            for pos in res.result.get("unexpected_index_list") or []:
                if rule == "value_not_mappable":
                    for bad in str(checked.at[pos, "mapping_issues"]).split("|"):
                        failures.append(Failure(int(pos), rule, bad, f"{bad}: {meta.get('why', '')}", order))
                else:
                    failures.append(Failure(int(pos), rule, fld, meta.get("why", rule), order))
        validation = _counts_only(result)
    failed = sorted({f.position for f in failures})
    by_rule: dict[str, int] = {}
    for f in failures:
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
    passed = frame.reset_index(drop=True).drop(index=failed)
    return GateResult(passed=passed, failures=failures, rows_in=len(frame), failed_positions=failed,
                      by_rule=by_rule, batch_failures=batch_failures, validation=validation, suite_name=suite_name)


# -- a batch validated in chunks ------------------------------------------------------------
# A large landed batch is mapped and validated a chunk at a time (joinedup.pipeline), so the
# check step's memory does not grow with the batch. Every rule that judges a row by that row's
# own values (regex, set membership, not null...) gives the same verdicts chunk by chunk, and
# its counts add up across chunks. Two things need the whole batch: the source key's
# uniqueness (passed in as ``duplicated``, computed from the key column alone) and the
# batch-level rules and figures (rebuilt from the summed counts by ``combine_chunks``).
# A suite with any other kind of expectation is validated in one piece (``chunkable``).

ROW_BY_ROW = frozenset({
    "expect_column_values_to_not_be_null", "expect_column_values_to_be_null",
    "expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex",
    "expect_column_values_to_match_regex_list", "expect_column_values_to_not_match_regex_list",
    "expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_be_between", "expect_column_value_lengths_to_be_between",
    "expect_column_value_lengths_to_equal", "expect_column_values_to_match_strftime_format",
})
UNIQUE = "expect_column_values_to_be_unique"
KEY = "source_key"


def _is_key_uniqueness(config: Any) -> bool:
    return config.type == UNIQUE and config.kwargs.get("column") == KEY and not config.kwargs.get("row_condition")


def chunkable(source_system: str, suite: str | None = None) -> bool:
    """True when every expectation of the merged suite can be judged chunk by chunk: a
    row-by-row rule without a row condition, or the source key's uniqueness."""
    for spec in merged_expectations(source_system, suite):
        kwargs = spec.get("kwargs") or {}
        if kwargs.get("row_condition"):
            return False
        if spec["type"] == UNIQUE:
            if kwargs.get("column") != KEY:
                return False
        elif spec["type"] not in ROW_BY_ROW:
            return False
    return True


def duplicated_keys(keys: pd.Series) -> np.ndarray:
    """Per row, whether its (non-empty) source key is also another row's: what GX's
    ``expect_column_values_to_be_unique`` flags (every holder of a repeated key; empty keys
    are left to the not-null rule)."""
    keys = keys.reset_index(drop=True)
    return (keys.notna() & keys.duplicated(keep=False)).to_numpy(dtype=bool)


def _map_counts(result: dict[str, Any], element: int, unexpected: int, missing: int | None, mostly: float,
                null_is_unexpected: bool) -> bool:
    """Set a column-map result's counts and percentages as GX's ``_format_map_output`` does
    (only the keys the result already has); returns the expectation's success as GX decides it."""
    nonnull = element - missing if missing is not None else None
    computed: dict[str, Any] = {"element_count": element, "unexpected_count": unexpected}
    if missing is not None:
        computed["missing_count"] = missing
    total_pct = unexpected / element * 100 if element > 0 else None
    if missing is not None:
        computed["missing_percent"] = missing / element * 100 if element > 0 else None
        nonmissing_pct = unexpected / nonnull * 100 if element > 0 and nonnull else None
    else:
        nonmissing_pct = total_pct
    computed.update(unexpected_percent=nonmissing_pct, unexpected_percent_total=total_pct,
                    unexpected_percent_nonmissing=nonmissing_pct)
    for key, value in computed.items():
        if key in result:
            result[key] = value
    if null_is_unexpected:  # expect_column_values_to_not_be_null judges against every row
        return True if not element else (element - unexpected) / element >= mostly
    considered = nonnull if nonnull is not None else element
    if not element or not considered:
        return True
    return (float(considered) - float(unexpected)) / float(considered) >= mostly


def _mostly(config: Any) -> float:
    value = config.kwargs.get("mostly")
    return 1.0 if value is None else float(value)


def _judge_uniqueness(res: Any, duplicated: np.ndarray) -> None:
    """Give the source-key uniqueness result the whole batch's verdict for this chunk's rows."""
    result = res.result
    rows = np.flatnonzero(duplicated)
    result["unexpected_index_list"] = rows.tolist()
    for key in ("unexpected_list", "partial_unexpected_list", "partial_unexpected_index_list",
                "partial_unexpected_counts", "unexpected_index_query"):
        result.pop(key, None)  # values of this chunk's view only; the gate keeps counts alone
    res.success = _map_counts(result, int(result.get("element_count") or len(duplicated)), int(len(rows)),
                              result.get("missing_count"), _mostly(res.expectation_config), False)


def combine_chunks(chunks: list[tuple[int, GateResult]]) -> GateResult:
    """One batch's gate result from its chunks' (``(first row's position, result)``, in batch
    order, each validated with ``duplicated``): failures at batch positions in the order a
    whole-batch validation gives them, counts summed, the batch-level rules judged on the
    summed counts, and one counts-only validation result for Data Docs. ``passed`` is left
    empty: the caller has handed each chunk's passing rows over already."""
    failures: list[Failure] = []
    failed: list[int] = []
    by_rule: dict[str, int] = {}
    rows_in = 0
    for offset, gate in chunks:
        failures.extend(Failure(f.position + offset, f.rule, f.field, f.reason, f.order) for f in gate.failures)
        failed.extend(p + offset for p in gate.failed_positions)
        for rule, n in gate.by_rule.items():
            by_rule[rule] = by_rule.get(rule, 0) + n
        rows_in += gate.rows_in
    failures.sort(key=lambda f: (f.order, f.position))  # stable: a row's fields keep their order
    by_rule = {f.rule: by_rule[f.rule] for f in failures}  # first-failure order, as one validation gives
    validations = [g.validation for _, g in chunks if g.validation is not None]
    validation = _combine_validations(validations) if validations else None
    batch_failures: list[BatchRuleFailure] = []
    for res in (validation.results if validation is not None else []):
        meta = res.expectation_config.meta or {}
        if meta.get("level") == "batch" and not res.success:
            rule = meta.get("rule", res.expectation_config.type)
            batch_failures.append(BatchRuleFailure(rule, meta.get("field", res.expectation_config.kwargs.get("column")),
                                                   meta.get("why", rule), int(res.result.get("unexpected_count") or 0),
                                                   rows_in))
    suite_name = next((g.suite_name for _, g in chunks if g.suite_name), "")
    empty = chunks[0][1].passed.iloc[:0] if chunks else pd.DataFrame()
    return GateResult(passed=empty, failures=failures, rows_in=rows_in, failed_positions=failed, by_rule=by_rule,
                      batch_failures=batch_failures, validation=validation, suite_name=suite_name)


def _combine_validations(validations: list[Any]) -> Any:
    """The first chunk's counts-only result, its counts replaced by every chunk's sums and
    each expectation's success decided again on them (as GX would on the whole batch)."""
    combined = validations[0]
    for i, res in enumerate(combined.results):
        results = [v.results[i].result or {} for v in validations]
        if "element_count" not in results[0] or "unexpected_count" not in results[0]:
            continue  # not a column-map result (a chunkable suite has none)
        element = sum(int(r.get("element_count") or 0) for r in results)
        unexpected = sum(int(r.get("unexpected_count") or 0) for r in results)
        missing = (sum(int(r.get("missing_count") or 0) for r in results)
                   if results[0].get("missing_count") is not None else None)
        res.success = _map_counts(res.result, element, unexpected, missing, _mostly(res.expectation_config),
                                  res.expectation_config.type == "expect_column_values_to_not_be_null")
    successful = sum(bool(r.success) for r in combined.results)
    evaluated = len(combined.results)
    combined.success = successful == evaluated
    stats = combined.statistics or {}
    updates = {"evaluated_expectations": evaluated, "successful_expectations": successful,
               "unsuccessful_expectations": evaluated - successful,
               "success_percent": successful / evaluated * 100 if evaluated else None, "success": combined.success}
    for key, value in updates.items():
        if key in stats:
            stats[key] = value
    return combined
