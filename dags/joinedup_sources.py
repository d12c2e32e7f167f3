"""One DAG per source system, generated from adapters/*.yaml: a new YAML file is a new DAG.

    land -> check (drift, mapping, quality gate) -> stage -> verdict

Each source DAG publishes the Asset ``joinedup://staging/<source>``; the merge DAG
(joinedup_merge.py) is scheduled on those Assets. For lineage (OpenLineage reads task inlets
and outlets), every task also names what it reads and writes: the source system, its raw
landing folder, the staging table. This file stays thin: it reads the YAML
files (cheap, no database) and the tasks import the engine only when they run.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, get_current_context, task

from joinedup.airflow_support import failure_callback, night_id, no_retry_for_fatal, retry_args, source_configs_for_dags


def staging_asset(name: str) -> Asset:
    return Asset(f"joinedup://staging/{name}")


def source_system_asset(name: str) -> Asset:
    return Asset(f"joinedup://source/{name}")


def landing_asset(name: str) -> Asset:
    return Asset(f"joinedup://landing/{name}")


def build_source_dag(config):  # noqa: ANN001, ANN201
    @dag(
        dag_id=f"joinedup_source_{config.name}",
        description=config.description or f"Nightly sync of {config.name}",
        schedule=config.schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["joinedup", "source", config.kind],
        default_args={
            **retry_args(config),
            "execution_timeout": timedelta(minutes=config.timeout_minutes),
            "on_failure_callback": failure_callback,
        },
    )
    def source_dag():  # noqa: ANN202
        @task(task_id="land", inlets=[source_system_asset(config.name)], outlets=[landing_asset(config.name)],
              **({"pool": config.pool} if config.pool else {}))
        def land_task() -> dict:
            from joinedup.pipeline import land

            return no_retry_for_fatal(land, config.name, night_id(get_current_context()))

        @task(task_id="check", retries=0, inlets=[landing_asset(config.name)])
        def check_task(_landed: dict) -> dict:
            from joinedup.night import done_tonight
            from joinedup.pipeline import check

            night = night_id(get_current_context())
            done = done_tonight(night, f"check:{config.name}")
            return {"source": config.name, **done} if done else check(config.name, night)

        @task(task_id="stage", retries=1, inlets=[landing_asset(config.name)])
        def stage_task(checked: dict) -> dict:
            from joinedup.night import done_tonight
            from joinedup.pipeline import stage

            night = night_id(get_current_context())
            done = done_tonight(night, f"stage:{config.name}")
            return {**checked, **(done or stage(config.name, night))}

        @task(task_id="verdict", retries=0, outlets=[staging_asset(config.name)])
        def verdict_task(staged: dict) -> dict:
            from joinedup.airflow_support import NIGHT_EXTRA
            from joinedup.pipeline import verdict

            context = get_current_context()
            out = no_retry_for_fatal(verdict, staged)
            # the merge the scheduler starts on this event learns which night landed
            context["outlet_events"][staging_asset(config.name)].extra = {NIGHT_EXTRA: night_id(context)}
            return out

        verdict_task(stage_task(check_task(land_task())))

    return source_dag()


for _config in source_configs_for_dags():
    globals()[f"joinedup_source_{_config.name}"] = build_source_dag(_config)
