"""`airflow db migrate` runs once per Airflow version and metadata DB, not on every night.

Airflow itself is replaced here by a recorder of the commands it would run (a real migrate
takes a minute; the e2e tests run the real one through this same function)."""
from __future__ import annotations

from pathlib import Path

import sqlite3

import pytest

from joinedup import airflow_runner
from tests.conftest import REPO


def migrate_to(db: Path, revision: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("DELETE FROM alembic_version")
        conn.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    conn.close()


@pytest.fixture()
def airflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], list[list[str]]]:
    home = tmp_path / "airflow"
    home.mkdir()
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW_CONFIG": str(REPO / "airflow.cfg")}
    calls: list[list[str]] = []

    def run(args: list[str], env: dict[str, str], log: Path) -> int:
        calls.append(args)
        migrate_to(Path(env["AIRFLOW_HOME"]) / "airflow.db", "a1b2c3")  # what a migrate leaves
        return 0

    monkeypatch.setattr(airflow_runner, "_run", run)
    return env, calls


def test_the_second_night_does_not_migrate_again(airflow, tmp_path: Path) -> None:
    env, calls = airflow
    airflow_runner.ensure_metadata_db(env, tmp_path / "log")
    airflow_runner.ensure_metadata_db(env, tmp_path / "log")
    assert calls == [["db", "migrate"]]


def test_a_new_or_reset_metadata_db_is_migrated(airflow, tmp_path: Path) -> None:
    env, calls = airflow
    airflow_runner.ensure_metadata_db(env, tmp_path / "log")
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    db.unlink()
    sqlite3.connect(db).close()  # an empty database in its place: no schema revision
    airflow_runner.ensure_metadata_db(env, tmp_path / "log")
    assert len(calls) == 2


def test_a_metadata_db_at_another_revision_is_migrated(airflow, tmp_path: Path) -> None:
    env, calls = airflow
    airflow_runner.ensure_metadata_db(env, tmp_path / "log")
    migrate_to(Path(env["AIRFLOW_HOME"]) / "airflow.db", "0ld")  # restored from a backup, say
    airflow_runner.ensure_metadata_db(env, tmp_path / "log")
    assert len(calls) == 2


def test_another_airflow_version_migrates(airflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, calls = airflow
    airflow_runner.ensure_metadata_db(env, tmp_path / "log")
    marker = Path(env["AIRFLOW_HOME"]) / airflow_runner.MIGRATED_MARKER
    marker.write_text(marker.read_text().replace("airflow ", "airflow 0.0.0-older "), encoding="utf-8")
    airflow_runner.ensure_metadata_db(env, tmp_path / "log")
    assert len(calls) == 2


def test_a_metadata_db_set_by_the_environment_is_always_migrated(airflow, tmp_path: Path) -> None:
    env, calls = airflow
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = "postgresql://airflow@db.example/airflow"
    airflow_runner.ensure_metadata_db(env, tmp_path / "log")
    airflow_runner.ensure_metadata_db(env, tmp_path / "log")
    assert calls == [["db", "migrate"], ["db", "migrate"]]
    assert not (Path(env["AIRFLOW_HOME"]) / airflow_runner.MIGRATED_MARKER).exists()


def test_a_failed_migrate_leaves_no_marker(airflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, _ = airflow
    monkeypatch.setattr(airflow_runner, "_run", lambda args, env, log: 1)
    with pytest.raises(RuntimeError, match="airflow db migrate failed"):
        airflow_runner.ensure_metadata_db(env, tmp_path / "log")
    assert not (Path(env["AIRFLOW_HOME"]) / airflow_runner.MIGRATED_MARKER).exists()
