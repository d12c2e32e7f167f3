"""What the DAG files need from the engine, kept light enough for Airflow's parse loop."""
from __future__ import annotations

import logging
import os
from datetime import timedelta
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


NIGHT_EXTRA = "night"  # the key of a staging Asset event's extra that names its night


def night_id(context: Any) -> str:
    """The id that ties one night's source runs and merge together.

    - ``conf['night']`` when ``joinedup run`` triggers the DAGs;
    - ``night-YYYY-MM-DD`` (the logical date's day) for scheduled and backfill runs, and for
      a manual run given a past logical date (``airflow dags test <dag> 2026-01-06``): every
      source's run and the merge of that day share it, and a backfill of a day reruns that
      night (idempotent) rather than starting a new one;
    - for a merge the scheduler starts on the sources' Asset events: the night those events
      carry (each source's verdict task writes it into its event's ``extra``), the latest if
      several nights' events arrive together;
    - else Airflow's own run id (a manual run for now)."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    if conf.get("night"):
        return str(conf["night"])
    run_type = getattr(dag_run, "run_type", "")
    run_type = str(getattr(run_type, "value", run_type) or "")
    if run_type == "asset_triggered":
        nights = nights_of_events(context.get("triggering_asset_events") or {})
        if nights:
            return nights[-1]
    logical = context.get("logical_date") or getattr(dag_run, "logical_date", None)
    if logical is not None:
        after = getattr(dag_run, "run_after", None)
        past = after is not None and logical.date() < after.date()
        if run_type in ("scheduled", "backfill") or past:
            return f"night-{logical:%Y-%m-%d}"
    return str(context["run_id"])


def nights_of_events(events_by_asset: Any) -> list[str]:
    """The nights named in Asset events' ``extra`` (sorted; night ids sort by date)."""
    nights = set()
    for events in events_by_asset.values():
        for event in events:
            night = (getattr(event, "extra", None) or {}).get(NIGHT_EXTRA)
            if night:
                nights.add(str(night))
    return sorted(nights)


def failure_callback(context: Any) -> None:
    """A clear one-line message for the on-call engineer (no record contents, no secrets)."""
    ti = context.get("task_instance")
    exc = context.get("exception")
    log.error(
        "JoinedUp task failed: dag=%s task=%s run=%s try=%s error=%s",
        getattr(ti, "dag_id", "?"), getattr(ti, "task_id", "?"), context.get("run_id"),
        getattr(ti, "try_number", "?"), f"{type(exc).__name__}: {exc}" if exc else "unknown",
    )


def retry_args(config: Any) -> dict[str, Any]:
    """Retries from the source's YAML. ``JOINEDUP_MAX_RETRY_DELAY_SECONDS`` caps the wait
    between tries: ``joinedup run`` sets it for a night run at the terminal, where a source
    that is down should not hold the night for the production delays."""
    delay = timedelta(seconds=config.retries.delay_seconds)
    args: dict[str, Any] = {"retries": config.retries.attempts, "retry_delay": delay, "retry_exponential_backoff": True}
    cap = int(os.environ.get("JOINEDUP_MAX_RETRY_DELAY_SECONDS") or 0)
    if cap:
        args["retry_delay"] = min(delay, timedelta(seconds=cap))
        args["max_retry_delay"] = timedelta(seconds=cap)
    return args


def no_retry_for_fatal(fn: Any, *args: Any) -> Any:
    """Run a stage; an error that retrying cannot cure (bad credentials, a missing drop folder,
    schema drift, a batch over the quality threshold) fails the task at once, without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from joinedup.adapters.base import FatalSourceError
    from joinedup.mapping.engine import SchemaDriftError
    from joinedup.quality.gate import QualityGateFailed

    try:
        return fn(*args)
    except (FatalSourceError, SchemaDriftError, QualityGateFailed) as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
