"""One night of the sync: every source, then the merge; and the summary ``joinedup run`` prints."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from joinedup.mci.store import Run, session_factory
from joinedup.pipeline import new_run_id

log = logging.getLogger(__name__)


@dataclass
class NightOutcome:
    night: str
    sources: list[str]
    stages: dict[str, Run] = field(default_factory=dict)
    log_file: Path | None = None

    def figures(self, stage: str) -> dict[str, Any]:
        run = self.stages.get(stage)
        return (run.figures or {}) if run else {}

    @property
    def failed_sources(self) -> list[str]:
        failed = []
        for name in self.sources:
            runs = [self.stages.get(f"{k}:{name}") for k in ("land", "check", "stage")]
            if any(r is None or r.status != "ok" for r in runs):
                failed.append(name)
        return failed

    @property
    def merge_failed(self) -> bool:
        merge = self.stages.get("merge")
        return merge is None or merge.status != "ok"


def load_outcome(night: str, sources: list[str]) -> NightOutcome:
    with session_factory()() as session:
        stages = {r.stage: r for r in session.scalars(select(Run).where(Run.run_id == night))}
    return NightOutcome(night, sources, stages)


def run_night(sources: list[str], *, night: str | None = None, via_airflow: bool = True) -> NightOutcome:
    night = night or new_run_id("night")
    log_file = None
    if via_airflow:
        from joinedup.airflow_runner import airflow_env, ensure_metadata_db, night_log, test_dag

        env = airflow_env()
        log_file = night_log(night)
        print(f"Airflow output: {log_file}", flush=True)
        ensure_metadata_db(env, log_file)
        for name in sources:
            print(f"  source {name}: airflow dags test joinedup_source_{name}", flush=True)
            test_dag(f"joinedup_source_{name}", night, env, log_file)
        print("  merge: airflow dags test joinedup_merge", flush=True)
        test_dag("joinedup_merge", night, env, log_file)
    else:
        from joinedup.pipeline import merge, sync_source

        for name in sources:
            try:
                sync_source(name, night)
            except Exception as exc:  # noqa: BLE001 - one source's failure must not stop the others
                log.error("source %s failed: %s", name, exc)
        try:
            merge(night)
        except Exception as exc:  # noqa: BLE001
            log.error("merge failed: %s", exc)
    outcome = load_outcome(night, sources)
    outcome.log_file = log_file
    return outcome


def print_summary(outcome: NightOutcome, seconds: float | None = None) -> None:
    from joinedup.cli.mci import index_stats

    stats = index_stats()
    merge = outcome.figures("merge")
    print()
    print(f"JoinedUp night {outcome.night}" + (f" ({seconds:.0f} s)" if seconds is not None else ""))
    print(f"{'source':14} {'read':>8} {'quarantined':>12} {'new':>8} {'changed':>8}  status")
    for name in outcome.sources:
        land, check, stage = (outcome.figures(f"{k}:{name}") for k in ("land", "check", "stage"))
        status = "FAILED" if name in outcome.failed_sources else "ok"
        problems = check.get("problems") or []
        if problems:
            status += f" ({problems[0][:100]})"
        elif name in outcome.failed_sources:
            errors = [outcome.figures(f"{k}:{name}").get("error") for k in ("land", "check", "stage")]
            status += f" ({next((e for e in errors if e), 'did not run')[:100]})"
        print(f"{name:14} {land.get('rows_landed', '-'):>8} {check.get('rows_failed', '-'):>12} "
              f"{stage.get('new', '-'):>8} {stage.get('changed', '-'):>8}  {status}")
    print(f"persons in the MCI:      {stats['persons']}")
    print(f"source records linked:   {stats['linked_records']} of {stats['source_records']}")
    print(f"links made tonight:      {merge.get('linked', '-')}")
    print(f"new persons tonight:     {merge.get('new_persons', '-')}")
    print(f"pairs left for review:   {stats['review_pairs_open']}")
    print(f"rows in quarantine:      {stats['quarantine_open']}")
    if outcome.merge_failed:
        print(f"merge: FAILED ({outcome.figures('merge').get('error', 'did not run')})")
    from joinedup.paths import reports_dir
    from joinedup.landing import safe_run_id

    path = reports_dir() / f"match_report_{safe_run_id(outcome.night)}.html"
    print(f"match report:            {path if path.exists() else '(not written)'}")
    if outcome.log_file:
        print(f"Airflow log:             {outcome.log_file}")
