"""Drive a night through real Airflow (``airflow dags test``) from ``joinedup run``.

Airflow's own output goes to a log file under var/logs, not to the terminal; the outcome of
each stage is read back from the MCI's ``runs`` table, which the tasks write.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from joinedup.paths import project_root, var_dir


def airflow_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(base if base is not None else os.environ)
    home = project_root()
    env.setdefault("JOINEDUP_HOME", str(home))
    env.setdefault("AIRFLOW_HOME", str(var_dir() / "airflow"))
    env.setdefault("AIRFLOW_CONFIG", str(home / "airflow.cfg"))
    env.setdefault("JOINEDUP_VAR", str(var_dir()))
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    env.setdefault("NO_COLOR", "1")
    env.setdefault("JOINEDUP_MAX_RETRY_DELAY_SECONDS", "5")  # a night at the terminal: short waits
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    if not env.get("AIRFLOW__CORE__FERNET_KEY"):
        env["AIRFLOW__CORE__FERNET_KEY"] = local_fernet_key(Path(env["AIRFLOW_HOME"]))
    return env


def local_fernet_key(airflow_home: Path) -> str:
    """The Fernet key with which Airflow encrypts Connections' passwords in its metadata DB,
    kept (0600) beside that DB and made once. Without one Airflow stores them in clear
    ("empty cryptography key"). Production sets AIRFLOW__CORE__FERNET_KEY from its secret
    store instead, and this file is never made."""
    path = airflow_home / "fernet.key"
    if not path.exists():
        from cryptography.fernet import Fernet

        tmp = path.with_name(f".fernet.key.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key())
        try:
            os.link(tmp, path)  # first writer wins; a racing process reads the winner's key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text(encoding="ascii").strip()


def airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else (shutil.which("airflow") or "airflow")


def _run(args: list[str], env: dict[str, str], log: Path) -> int:
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ airflow {' '.join(args)}\n")
        fh.flush()
        return subprocess.run([airflow_bin(), *args], env=env, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode


MIGRATED_MARKER = ".joinedup-db-migrated"


def ensure_metadata_db(env: dict[str, str], log: Path) -> None:
    """``airflow db migrate``, unless this Airflow version already migrated this very database.

    A no-op migrate still costs Airflow's start-up (about 15 s), on every night and every
    connections import. So after a successful migrate of the project's own SQLite metadata DB
    a marker beside it records the Airflow version and the schema revision the DB is at; while
    both are the same the migrate is skipped (a new or reset DB has no revision). A metadata DB set by AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
    (production's PostgreSQL) is always migrated: it can change under us."""
    marker = Path(env["AIRFLOW_HOME"]) / MIGRATED_MARKER
    if (key := _metadata_db_identity(env)) is not None and marker.exists() \
            and marker.read_text(encoding="utf-8") == key:
        return
    if _run(["db", "migrate"], env, log) != 0:
        raise RuntimeError(f"airflow db migrate failed; see {log}")
    if (key := _metadata_db_identity(env)) is not None:
        tmp = marker.with_name(f"{MIGRATED_MARKER}.{os.getpid()}")
        tmp.write_text(key, encoding="utf-8")
        tmp.replace(marker)
    else:
        marker.unlink(missing_ok=True)


def _metadata_db_identity(env: dict[str, str]) -> str | None:
    """The installed Airflow's version, the configuration file's text and the schema revision
    the SQLite metadata DB says it is at (read with sqlite3: milliseconds); None when the
    metadata DB is not the project's SQLite file, or has no revision (new, or reset)."""
    import sqlite3
    from importlib.metadata import version

    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        return None
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    config = Path(env.get("AIRFLOW_CONFIG", ""))
    if not db.is_file() or not config.is_file() \
            or "sqlite:///${AIRFLOW_HOME}/airflow.db" not in config.read_text(encoding="utf-8"):
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    if not revision:
        return None
    digest = hashlib.sha256(config.read_bytes()).hexdigest()[:16]
    return f"airflow {version('apache-airflow')} config {digest} schema {revision[0]}"


def import_connections(path: Path, env: dict[str, str], log: Path) -> int:
    """``airflow connections import --overwrite PATH`` (Airflow prints only the ids)."""
    return _run(["connections", "import", "--overwrite", str(path)], env, log)


def test_dag(dag_id: str, night: str, env: dict[str, str], log: Path) -> int:
    return _run(["dags", "test", dag_id, "-c", json.dumps({"night": night})], env, log)


def night_log(night: str) -> Path:
    folder = var_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"night_{night.replace(':', '_')}.log"
