"""``joinedup airflow ...``: Airflow's own command line, pointed at this project's airflow.cfg,
dags/ and var/airflow (e.g. ``joinedup airflow standalone`` for a UI to click through)."""
from __future__ import annotations

import os

import typer


def airflow(ctx: typer.Context) -> None:
    """Run `airflow <args>` with JoinedUp's configuration (AIRFLOW_HOME=var/airflow)."""
    from joinedup.airflow_runner import airflow_bin, airflow_env

    env = airflow_env()
    os.execve(airflow_bin(), [airflow_bin(), *ctx.args], env)
