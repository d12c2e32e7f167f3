"""What the DAG files need from the engine, kept light enough for Airflow's parse loop."""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("joinedup.airflow")


def source_configs_for_dags() -> list[Any]:
    """The sources in adapters/. A broken file is logged and left out, so one bad YAML file
    does not take every other source's DAG down with it (its error shows in the log)."""
    from joinedup.adapters.config import adapters_dir, load_source

    configs = []
    for path in sorted(adapters_dir().glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        try:
            configs.append(load_source(path))
        except Exception as exc:  # noqa: BLE001 - reported, and the DAG for it is missing
            log.error("adapters/%s is not valid, no DAG built for it: %s", path.name, exc)
    return configs


def night_id(context: Any) -> str:
    """The id that ties one night's source runs and merge together: ``conf['night']`` when
    ``joinedup run`` triggers the DAGs, else Airflow's own run id."""
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    return str(conf.get("night") or context["run_id"])


def failure_callback(context: Any) -> None:
    """A clear one-line message for the on-call engineer (no record contents, no secrets)."""
    ti = context.get("task_instance")
    exc = context.get("exception")
    log.error(
        "JoinedUp task failed: dag=%s task=%s run=%s try=%s error=%s",
        getattr(ti, "dag_id", "?"), getattr(ti, "task_id", "?"), context.get("run_id"),
        getattr(ti, "try_number", "?"), f"{type(exc).__name__}: {exc}" if exc else "unknown",
    )
