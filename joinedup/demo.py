"""The synthetic council for ``make run``: generate the residents, bring their four systems
up on loopback (SOAP, REST, file drops), point the adapters' connections at them, and keep
the ground truth under ``var/council/`` so ``joinedup evaluate`` can score the index.
"""
from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from joinedup.paths import var_dir

DEFAULT_RESIDENTS = 10_000
DEFAULT_SEED = 2026


def council_dir() -> Path:
    path = var_dir() / "council"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_truth(council, folder: Path) -> None:  # noqa: ANN001
    with open(folder / "truth.csv.tmp", "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["source_system", "source_key", "person_id"])
        out.writerows(council.truth)
    with open(folder / "twins.csv.tmp", "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["person_id_a", "person_id_b"])
        out.writerows(sorted(tuple(sorted(pair)) for pair in council.twins))
    for name in ("truth.csv", "twins.csv"):
        (folder / f"{name}.tmp").replace(folder / name)


def _write_csv_drop(records: list[dict], folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    tmp = folder / f".{name}.partial"
    fields = list(records[0]) if records else []
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(records)
    tmp.replace(target)
    return target


def connections_file() -> Path:
    """Where the demo writes its ``airflow connections import`` file (owner-only, 0600)."""
    return council_dir() / "airflow_connections.json"


def connections_mode() -> str:
    """``env`` (default): the adapters read JOINEDUP_CONN_* variables that the demo sets.
    ``airflow`` (``JOINEDUP_DEMO_CONNECTIONS=airflow``): the demo imports its connections
    into Airflow (``airflow connections import``) and sets no variable, so the night reads
    its credentials from Airflow's Connections as in production."""
    mode = (os.environ.get("JOINEDUP_DEMO_CONNECTIONS") or "env").strip().lower()
    if mode not in ("env", "airflow"):
        raise ValueError(f"JOINEDUP_DEMO_CONNECTIONS must be 'env' or 'airflow', not {mode!r}")
    return mode


def import_connections_into_airflow(path: Path) -> None:
    """``airflow connections import --overwrite PATH`` with the project's Airflow settings
    (the ports, hence the URIs, change every run: a stale connection is replaced)."""
    from joinedup.airflow_runner import airflow_env, ensure_metadata_db, import_connections, night_log

    env = airflow_env()
    log_file = night_log("connections")
    ensure_metadata_db(env, log_file)
    if import_connections(path, env, log_file) != 0:
        raise RuntimeError(f"airflow connections import {path} failed; see {log_file}")


@contextlib.contextmanager
def synthetic_council(residents: int = DEFAULT_RESIDENTS, seed: int = DEFAULT_SEED, night: int = 0,
                      *, connections: str | None = None, history=None,
                      changes=None) -> Iterator[dict]:  # noqa: ANN001
    """Serve the council's systems for the duration of the block; yields a description
    (``servers`` is the RunningCouncil, e.g. to take the housing service down in a test).

    The council's connections are always written to ``connections_file()`` for
    ``airflow connections import``; ``connections`` (default: ``connections_mode()``) says
    whether the adapters get them from JOINEDUP_CONN_* variables or from Airflow.
    ``history``: a ``RecordHistory`` or a profile name (``"full"``: the closed records a real
    council keeps, about 2.5 records per resident); default none, the council ``make run`` serves.
    ``changes``: the ``NightlyChanges`` between nights (default: the council's own rates)."""
    from joinedup.adapters.credentials import write_airflow_connections

    mode = connections or connections_mode()
    from joinedup.adapters import load_sources
    from joinedup.simulators.council import build_council, night_datetime
    from joinedup.simulators.history import RecordHistory
    from joinedup.simulators.servers import CouncilOptions, start_council_servers

    if history is None:
        history = RecordHistory()
    elif isinstance(history, str):
        history = RecordHistory.named(history)
    from joinedup.simulators.council import NightlyChanges

    council = build_council(residents, seed, night=night, history=history,
                            changes=changes if changes is not None else NightlyChanges())
    _write_truth(council, council_dir())
    extract_day: date = night_datetime(night).date()
    drop_dir = var_dir() / "drops" / "council"
    configs = {c.name: c for c in load_sources()}
    for name, cfg in configs.items():
        if cfg.kind == "csv" and name in council.records:
            folder = Path(cfg.options.get("drop_folder", f"drops/{name}"))
            folder = folder if folder.is_absolute() else var_dir() / folder
            _write_csv_drop(council.records[name], folder, f"{name}_{extract_day:%Y%m%d}.csv")
    with start_council_servers(council.records, drop_dir, options=CouncilOptions(extract_date=extract_day)) as running:
        conn_file = write_airflow_connections(running.credentials, connections_file())
        variables = running.env() if mode == "env" else {}
        if mode == "airflow":
            import_connections_into_airflow(conn_file)
        saved = {k: os.environ.get(k) for k in running.env()}
        for key in running.env():  # no stale variable from an earlier council shadows the mode
            os.environ.pop(key, None)
        os.environ.update(variables)
        try:
            yield {"residents": council.residents, "night": night,
                   "former_residents": council.former_residents, "history": history.profile,
                   "records": {k: len(v) for k, v in council.records.items()}, "truth": str(council_dir()),
                   "connections": mode, "connections_file": str(conn_file), "servers": running}
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
