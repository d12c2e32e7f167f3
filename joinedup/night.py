"""One night of the sync: every source, then the merge; and the summary ``joinedup run`` prints."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from joinedup.mci.store import Run, session_factory
from joinedup.pipeline import new_run_id, source_problems

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


def done_tonight(night: str, stage: str) -> dict[str, Any] | None:
    """The recorded figures of ``stage`` (``check:<source>``, ``stage:<source>`` or ``merge``)
    when it already finished ``ok`` for this night and nothing new waits for it; else None.

    Why: a stage re-run with no work left would overwrite the night's figures with zeros
    ("checked 0 rows"), so a rerun of the night would change the runs table. A task that is
    done for the night returns what it did instead of doing it again; a stage with work
    waiting (a batch landed since, records still pending) runs as usual."""
    from sqlalchemy import func

    from joinedup.mci.store import LandingBatch, SourceRecord

    with session_factory()() as session:
        row = session.scalar(select(Run).where(Run.run_id == night, Run.stage == stage))
        if row is None or row.status != "ok":
            return None
        kind, _, source = stage.partition(":")
        if kind == "merge":
            waiting = session.scalar(select(func.count()).select_from(SourceRecord)
                                     .where(SourceRecord.match_status == "pending"))
        elif kind in ("check", "stage"):
            statuses = ("landed", "failed") if kind == "check" else ("checked",)
            waiting = session.scalar(select(func.count()).select_from(LandingBatch).where(
                LandingBatch.source_system == source, LandingBatch.status.in_(statuses)))
        else:
            return None
        if waiting:
            return None
        log.info("%s already done for night %s, nothing waiting: not run again", stage, night)
        return {**(row.figures or {}), "already_done": True}


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
        from joinedup.locks import run_lock
        from joinedup.pipeline import check, land, merge, stage, verdict

        for name in sources:
            try:  # what the source's DAG does, with the same "done tonight" guard
                with run_lock(f"source:{name}", night):
                    out = land(name, night)
                    out.update(done_tonight(night, f"check:{name}") or check(name, night))
                    out.update(done_tonight(night, f"stage:{name}") or stage(name, night))
                verdict(out)
            except Exception as exc:  # noqa: BLE001 - one source's failure must not stop the others
                log.error("source %s failed: %s", name, exc)
        try:
            done_tonight(night, "merge") or merge(night)
        except Exception as exc:  # noqa: BLE001
            log.error("merge failed: %s", exc)
    outcome = load_outcome(night, sources)
    outcome.log_file = log_file
    return outcome


def missing_lines(outcome: NightOutcome) -> list[str]:
    """One line per source that did not load tonight, with the last night it did: what the
    on-call engineer needs to judge how stale the index is for that system."""
    if not outcome.failed_sources:
        return []
    from joinedup.steward.report import missing_sources

    with session_factory()() as session:
        missing = missing_sources(session, outcome.night, outcome.failed_sources, outcome.stages)
    lines = []
    for m in missing:
        since = (f"last good night {m['last_good_night']} ({m['last_good_at']:%Y-%m-%d %H:%M} UTC)"
                 if m["last_good_night"] else "never loaded")
        lines.append(f"missing tonight: {m['source']} ({m['why']}); {since}")
    return lines


def night_summary(night: str, sources: list[str]) -> dict[str, Any]:
    """The night at a glance, counts and ids only (safe for logs and XCom): which sources
    loaded, which are missing and since when, and the merge's figures. The merge task logs
    and returns it, so the on-call engineer sees it in Airflow without opening the report."""
    outcome = load_outcome(night, sources)
    missing = []
    if outcome.failed_sources:
        from joinedup.steward.report import missing_sources

        with session_factory()() as session:
            for m in missing_sources(session, night, outcome.failed_sources, outcome.stages):
                at = m.get("last_good_at")
                missing.append({"source": m["source"], "why": m["why"], "last_good_night": m["last_good_night"],
                                "last_good_at": at.isoformat() if at else None})
    merge = outcome.figures("merge")
    return {
        "night": night,
        "sources_ok": [s for s in sources if s not in outcome.failed_sources],
        "sources_missing": missing,
        "records_landed": {s: outcome.figures(f"land:{s}").get("rows_landed") for s in sources},
        "merge": {k: v for k, v in merge.items() if isinstance(v, (int, float, str)) or v is None},
    }


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
        problems = source_problems({**check, **stage})
        if problems:
            status += f" ({problems[0][:100]})"
        elif name in outcome.failed_sources:
            errors = [outcome.figures(f"{k}:{name}").get("error") for k in ("land", "check", "stage")]
            status += f" ({next((e for e in errors if e), 'did not run')[:100]})"
        print(f"{name:14} {land.get('rows_landed', '-'):>8} {check.get('rows_failed', '-'):>12} "
              f"{stage.get('new', '-'):>8} {stage.get('changed', '-'):>8}  {status}")
    for line in missing_lines(outcome):
        print(line)
    print(f"persons in the MCI:      {stats['persons']}")
    print(f"source records linked:   {stats['linked_records']} of {stats['source_records']}")
    print(f"links made tonight:      {merge.get('linked', '-')}")
    print(f"new persons tonight:     {merge.get('new_persons', '-')}")
    gone = {name: outcome.figures(f"stage:{name}").get("gone_from_source") for name in outcome.sources}
    if any(gone.values()):
        print("gone from source tonight: " + ", ".join(f"{n} {c}" for n, c in gone.items() if c))
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
