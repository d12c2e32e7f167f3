"""A source's execution limits come from its YAML: retries, the timeout, and the Airflow pool
its extract runs in (so several sources on one legacy system do not overload it)."""
from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path

import pytest

from joinedup.adapters.config import SourceConfig

DAGS = Path(__file__).resolve().parents[2] / "dags" / "joinedup_sources.py"


@pytest.fixture(scope="module")
def build_source_dag():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("joinedup_sources_under_test", DAGS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_source_dag


def _config(**extra) -> SourceConfig:  # noqa: ANN003
    return SourceConfig(name="rents", kind="csv", mapping="revenues.yaml", timeout_minutes=45,
                        retries={"attempts": 2, "delay_seconds": 30}, **extra)


def test_the_extract_runs_in_the_configured_pool_with_the_yaml_limits(build_source_dag) -> None:  # noqa: ANN001
    dag = build_source_dag(_config(pool="legacy_mainframe"))
    land = dag.get_task("land")
    assert land.pool == "legacy_mainframe"
    assert dag.get_task("check").pool != "legacy_mainframe"  # only the call to the source is capped
    assert land.retries == 2 and land.execution_timeout == timedelta(minutes=45)
    assert dag.max_active_runs == 1


def test_without_a_pool_the_extract_uses_airflows_default(build_source_dag) -> None:  # noqa: ANN001
    assert build_source_dag(_config()).get_task("land").pool == "default_pool"


def test_a_pool_name_that_is_not_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match="pool"):
        _config(pool="../etc")
