"""The merge DAG: match new and changed records into the master citizen index, refresh golden
records and write the match report. Scheduled on the staging Assets of the source DAGs, so it
runs once sources have landed (data-aware scheduling)."""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, AssetAny, dag, get_current_context, task

from joinedup.airflow_support import failure_callback, night_id, source_configs_for_dags

_sources = [c.name for c in source_configs_for_dags()]


@dag(
    dag_id="joinedup_merge",
    description="Match, cluster, golden records and the match report",
    schedule=AssetAny(*(Asset(f"joinedup://staging/{name}") for name in _sources)) if _sources else None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["joinedup", "merge"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2), "on_failure_callback": failure_callback},
)
def joinedup_merge():  # noqa: ANN201
    @task(task_id="match_and_report", inlets=[Asset(f"joinedup://staging/{name}") for name in _sources],
          outlets=[Asset("joinedup://mci/persons")])
    def match_and_report() -> dict:
        import json

        from joinedup.night import done_tonight, night_summary
        from joinedup.pipeline import merge

        night = night_id(get_current_context())
        result = done_tonight(night, "merge") or merge(night)
        summary = night_summary(night, _sources)
        print("JoinedUp night summary: " + json.dumps(summary, default=str), flush=True)  # to the task log
        return {**result, "summary": summary}

    match_and_report()


joinedup_merge()
