"""Where JoinedUp keeps things: the project folder (the council's configuration) and ``var/``.

The project folder holds ``adapters/``, ``mappings/``, ``schemas/`` and ``dags/``. It is the
folder named by ``JOINEDUP_HOME``, else the current folder if it has an ``adapters/`` folder,
else the source checkout this engine was installed from. Run-time state (landing files, the
SQLite MCI, reports, Airflow's metadata DB) goes under ``<project>/var`` unless
``JOINEDUP_VAR`` names another folder.
"""
from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def project_root() -> Path:
    env = os.environ.get("JOINEDUP_HOME")
    if env:
        return Path(env).resolve()
    cwd = Path.cwd()
    if (cwd / "adapters").is_dir() and (cwd / "schemas").is_dir():
        return cwd.resolve()
    return _CHECKOUT


def var_dir() -> Path:
    env = os.environ.get("JOINEDUP_VAR")
    path = Path(env) if env else project_root() / "var"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def landing_dir() -> Path:
    return _sub("landing")


def reports_dir() -> Path:
    return _sub("reports")


def _sub(name: str) -> Path:
    path = var_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
