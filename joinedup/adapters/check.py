"""The standard adapter check: the test every source passes before it joins the night.

``joinedup adapter check NAME`` (or ``check_source(name)``) walks the path a night takes, one
step at a time, and stops at the first step that fails with what to do about it:

    configuration  adapters/NAME.yaml and its options are valid
    mapping        mappings/<file> is valid
    connection     the connection id resolves (values never shown)
    health         the adapter can reach its source
    first page     one page (or one file) is fetched - nothing is moved or stored
    schema         the records have the columns the mapping expects (drift)
    quality        the mapped page passes the quality gate within the source's threshold

The verdict shows counts, field names and rule names only, never record values.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joinedup.adapters.base import Page, SourceError


@dataclass
class CheckStep:
    name: str
    ok: bool
    detail: str


@dataclass
class CheckReport:
    source: str
    steps: list[CheckStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    def render(self) -> str:
        width = max((len(s.name) for s in self.steps), default=10)
        lines = [f"adapter check: {self.source}"]
        for step in self.steps:
            lines.append(f"  {'ok  ' if step.ok else 'FAIL'}  {step.name.ljust(width)}  {step.detail}")
        lines.append(f"verdict: {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)


def _first_page(adapter: Any) -> Page | None:
    """One page without side effects: a file adapter reads its first waiting file in place
    (no move to processed/ or rejected/); others fetch the first page and stop."""
    from joinedup.adapters.files import FileDropAdapter

    if isinstance(adapter, FileDropAdapter):
        files = adapter.pending_files()
        if not files:
            return None
        return Page(records=adapter.read_file(files[0]), cursor=None, origin=files[0].name)
    pages = adapter.extract(None)
    try:
        return next(iter(pages), None)
    finally:
        close = getattr(pages, "close", None)
        if close:
            close()


def check_source(name: str, adapters_folder: Path | None = None) -> CheckReport:
    """Run the standard check on source ``name``; never raises for a source problem."""
    from joinedup.adapters.config import adapters_dir, load_source
    from joinedup.adapters.credentials import get_connection
    from joinedup.adapters.files import RejectedFile
    from joinedup.adapters.registry import build_adapter
    from joinedup.configfile import ConfigError
    from joinedup.mapping.engine import SchemaDriftError

    report = CheckReport(name)
    state: dict[str, Any] = {}

    def step(title: str, fn: Callable[[], str]) -> bool:
        try:
            detail = fn()
        except (ConfigError, SourceError, RejectedFile, OSError, ValueError, SchemaDriftError) as exc:
            report.steps.append(CheckStep(title, False, str(exc).replace("\n", " ")[:600]))
            return False
        report.steps.append(CheckStep(title, True, detail))
        return True

    def configuration() -> str:
        path = (adapters_folder or adapters_dir()) / f"{name}.yaml"
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist (joinedup adapter list shows the sources)")
        state["config"] = config = load_source(path)
        return f"{path.name}: kind {config.kind}"

    def mapping() -> str:
        from joinedup.mapping.spec import load_mapping

        state["spec"] = spec = load_mapping(state["config"].mapping_path())
        return f"{state['config'].mapping}: {len(spec.fields)} canonical field(s)"

    def connection() -> str:
        conn_id = state["config"].connection_id
        if not conn_id:
            return "none needed"
        conn = get_connection(conn_id)
        return f"{conn_id} found ({conn.origin})"

    def health() -> str:
        state["adapter"] = adapter = build_adapter(state["config"])
        result = adapter.health()
        if not result.ok:
            raise ValueError(result.detail)
        return result.detail

    def first_page() -> str:
        page = _first_page(state["adapter"])
        state["page"] = page
        if page is None:
            return "nothing waiting at the source (no page to check; schema and quality skipped)"
        return f"{len(page.records)} record(s) from {page.origin}"

    def schema() -> str:
        from joinedup.mapping.engine import map_records

        records = state["page"].records
        state["canonical"] = map_records(records, state["spec"], state["config"].name)
        columns = {c for r in records for c in r}
        return f"{len(columns)} column(s), as the mapping expects"

    def quality() -> str:
        from joinedup.quality.gate import source_suite, validate_batch

        config = state["config"]
        gate = validate_batch(state["canonical"], config.name, suite=source_suite(config))
        threshold = state["config"].quality.max_failure_rate
        rules = ", ".join(f"{rule}: {n}" for rule, n in sorted(gate.by_rule.items())) or "no failures"
        detail = (f"{len(gate.failed_positions)} of {gate.rows_in} row(s) would be quarantined "
                  f"({gate.failure_rate:.1%}, threshold {threshold:.1%}); {rules}")
        if gate.failure_rate > threshold:
            raise ValueError(detail + " - fix the mapping or the source, or raise quality.max_failure_rate")
        return detail

    for title, fn in (("configuration", configuration), ("mapping", mapping), ("connection", connection),
                      ("health", health), ("first page", first_page)):
        if not step(title, fn):
            return report
    if state.get("page") is not None:
        if step("schema", schema):
            step("quality", quality)
    return report
