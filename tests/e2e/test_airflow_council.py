"""Nights of the synthetic council through real Airflow (``airflow dags test``), with its four
systems up on loopback: credentials from Airflow's Connections only, a rerun that changes no
row, the housing SOAP service down for a night and caught up the next, a backfilled past night.

The clean night (all systems up) is run once for the module and shared: the tests that need a
reference index compare with its snapshot, taken before anything else touched it.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.test_airflow import _airflow_env

RESIDENTS = 300
SEED = 3  # a seed whose small social care extract (7 rows) passes the NHS-number batch rule (>= 90%)
JOINEDUP = shutil.which("joinedup", path=str(Path(sys.executable).parent)) or "joinedup"
SOURCES = ("hr", "housing", "revenues", "socialcare")
TIMING = ("started_at", "finished_at")


def _new_project(root: Path) -> Path:
    home = root / "project"
    for name in ("adapters", "mappings", "schemas", "dags"):
        shutil.copytree(REPO / name, home / name)
    shutil.copy(REPO / "airflow.cfg", home / "airflow.cfg")
    (home / "var").mkdir()
    return home


@contextlib.contextmanager
def _joinedup_home(home: Path) -> Iterator[None]:
    """This process points at ``home`` (the council's servers run here; Airflow in children)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JOINEDUP_HOME", str(home))
        mp.setenv("JOINEDUP_VAR", str(home / "var"))
        for key in list(os.environ):
            if key.startswith(("JOINEDUP_CONN_", "JOINEDUP_DB_URL", "AIRFLOW_", "JOINEDUP_DEMO_")):
                mp.delenv(key)
        yield


def _night(env: dict[str, str], home: Path, night: str) -> subprocess.CompletedProcess:
    return subprocess.run([JOINEDUP, "run", "--no-demo", "--night", night], env=env, cwd=home,
                          capture_output=True, text=True, timeout=900)


def _summary_lines(out: str) -> dict[str, str]:
    return {line.split()[0]: line for line in out.splitlines() if line.split()[:1] in ([s] for s in SOURCES)}


def snapshot(home: Path) -> dict[str, list[tuple]]:
    """Every row of every MCI table, sorted; the runs table without its timing (started_at,
    finished_at, and the ``seconds`` a stage took, kept in its figures)."""
    out: dict[str, list[tuple]] = {}
    with contextlib.closing(sqlite3.connect(home / "var" / "mci.sqlite")) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')
            columns = [c[0] for c in cursor.description]
            rows = []
            for row in cursor:
                record = dict(zip(columns, row))
                if table == "runs":
                    for key in TIMING:
                        record.pop(key)
                    figures = json.loads(record["figures"] or "{}")
                    figures.pop("seconds", None)
                    record["figures"] = json.dumps(figures, sort_keys=True)
                rows.append(tuple(sorted(record.items())))
            out[table] = sorted(rows, key=repr)
    return out


def index_shape(home: Path) -> tuple[set[tuple], set[frozenset]]:
    """The index as a steward sees it, independent of the ids issued: every source record
    (system, key, content hash) and the clusters (which source records share a master ID)."""
    with contextlib.closing(sqlite3.connect(home / "var" / "mci.sqlite")) as db:
        rows = db.execute("SELECT source_system, source_key, content_hash, master_id FROM source_records").fetchall()
    records = {(s, k, h) for s, k, h, _ in rows}
    clusters: dict[str, set] = {}
    for s, k, _, master in rows:
        clusters.setdefault(master, set()).add((s, k))
    return records, {frozenset(c) for c in clusters.values()}


def _grep(folder: Path, secret: str) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file() and path.name != "airflow_connections.json":
            data = path.read_bytes()
            if secret.encode() in data:
                hits.append(str(path.relative_to(folder)))
    return hits


@dataclass
class CleanNight:
    home: Path
    env: dict[str, str]
    first: subprocess.CompletedProcess
    before_rerun: dict[str, list[tuple]]
    rerun: subprocess.CompletedProcess
    after_rerun: dict[str, list[tuple]]
    shape: tuple[set[tuple], set[frozenset]]
    secrets: list[str]


@pytest.fixture(scope="module")
def clean_night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CleanNight]:
    """Night 0 of the council with every system up, credentials only through Airflow's
    Connections (imported with the real `airflow connections import`), then the same night
    run again."""
    from joinedup.demo import synthetic_council

    home = _new_project(tmp_path_factory.mktemp("clean"))
    with _joinedup_home(home):
        env = _airflow_env(home)
        with synthetic_council(RESIDENTS, SEED, 0, connections="airflow") as council:
            assert not any(k.startswith("JOINEDUP_CONN_") for k in os.environ)
            env = {k: v for k, v in env.items() if not k.startswith("JOINEDUP_CONN_")}
            servers = council["servers"]
            secrets = [servers.housing.options.password, servers.revenues.options.client_secret]
            first = _night(env, home, "night-1")
            before = snapshot(home)
            shape = index_shape(home)
            rerun = _night(env, home, "night-1")
            after = snapshot(home)
        yield CleanNight(home, env, first, before, rerun, after, shape, secrets)


@pytest.mark.airflow
def test_the_night_reads_its_credentials_from_airflow_connections_and_never_writes_them(clean_night: CleanNight) -> None:
    night = clean_night
    assert night.first.returncode == 0, night.first.stdout[-3000:] + night.first.stderr[-2000:]
    lines = _summary_lines(night.first.stdout)
    for name in SOURCES:
        assert lines[name].endswith("ok"), lines[name]
        assert int(lines[name].split()[1]) > 0, lines[name]  # housing and revenues only via Airflow's Connections
    # Airflow holds them (imported from the file the demo wrote), the environment did not
    listed = subprocess.run([shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow",
                             "connections", "get", "housing_soap", "-o", "json"], env=night.env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and '"conn_type": "soap"' in listed.stdout, listed.stderr[-1000:]
    assert not any(k.startswith("JOINEDUP_CONN_") for k in night.env)
    # the secrets appear nowhere in what the night wrote: task logs, night log, landing, MCI
    for secret in night.secrets:
        assert len(secret) >= 12
        assert _grep(night.home / "var", secret) == [], "a credential was written to disk"
        assert secret not in night.first.stdout + night.first.stderr


@pytest.mark.airflow
def test_rerunning_the_same_night_through_airflow_changes_no_row(clean_night: CleanNight) -> None:
    assert clean_night.rerun.returncode == 0, clean_night.rerun.stdout[-3000:]
    before, after = clean_night.before_rerun, clean_night.after_rerun
    assert sorted(before) == sorted(after)
    assert len(before["source_records"]) > RESIDENTS and len(before["persons"]) > 0
    for table in before:
        assert before[table] == after[table], f"the rerun changed the table {table}"


def _runs(home: Path, night: str) -> dict[str, tuple[str, dict]]:
    with contextlib.closing(sqlite3.connect(home / "var" / "mci.sqlite")) as db:
        return {stage: (status, json.loads(figures or "{}")) for stage, status, figures in db.execute(
            "SELECT stage, status, figures FROM runs WHERE run_id = ?", (night,))}


@pytest.mark.airflow
def test_housing_down_for_a_night_then_caught_up_with_nothing_lost(tmp_path: Path, clean_night: CleanNight) -> None:
    """The SOAP service refuses connections all night: the housing load retries until its
    tries are spent, the three other sources load, the merge runs on what landed and the
    summary says housing is missing. The next night the service is back: housing catches up,
    and the index is the clean night's (same source records, same clusters)."""
    from joinedup.demo import synthetic_council

    home = _new_project(tmp_path)
    housing_yaml = home / "adapters" / "housing.yaml"
    production_http = "http: {connect_timeout_seconds: 10, read_timeout_seconds: 120, retries: 5, backoff_seconds: 1}"
    assert production_http in housing_yaml.read_text()  # short in-task HTTP retries on this test box
    housing_yaml.write_text(housing_yaml.read_text().replace(
        production_http, "http: {connect_timeout_seconds: 2, read_timeout_seconds: 10, retries: 1, backoff_seconds: 0.1}"))
    with _joinedup_home(home), synthetic_council(RESIDENTS, SEED, 0, connections="env") as council:
        env = {**_airflow_env(home), "JOINEDUP_MAX_RETRY_DELAY_SECONDS": "1"}
        assert "JOINEDUP_CONN_HOUSING_SOAP" in env
        council["servers"].housing.go_down()
        down = _night(env, home, "night-1")
        assert down.returncode == 1, down.stdout[-3000:]
        lines = _summary_lines(down.stdout)
        assert "FAILED" in lines["housing"] and "WSDL could not be fetched" in lines["housing"], lines["housing"]
        for name in ("hr", "revenues", "socialcare"):
            assert lines[name].endswith("ok") and int(lines[name].split()[1]) > 0, lines[name]
        assert "missing tonight: housing" in down.stdout and "never loaded" in down.stdout
        log = (home / "var" / "logs" / "night_night-1.log").read_text()
        marker = "JoinedUp night summary: "  # what the merge task publishes to its Airflow log
        published = next(line for line in log.splitlines() if marker in line).split(marker, 1)[1]
        summary = json.loads(published[:published.rindex("}") + 1])
        assert summary["sources_ok"] == ["hr", "revenues", "socialcare"]
        assert [(m["source"], m["last_good_night"]) for m in summary["sources_missing"]] == [("housing", None)]
        runs = _runs(home, "night-1")
        assert runs["land:housing"][0] == "failed" and runs["merge"][0] == "ok"
        assert runs["merge"][1]["new_persons"] > 0  # the merge ran on the three that landed
        with contextlib.closing(sqlite3.connect(home / "var" / "airflow" / "airflow.db")) as db:
            tries = db.execute("SELECT state, try_number, max_tries FROM task_instance WHERE "
                               "dag_id = 'joinedup_source_housing' AND task_id = 'land'").fetchall()
        assert tries == [("failed", 4, 3)]  # 1 + the 3 retries of adapters/housing.yaml, all spent
        with contextlib.closing(sqlite3.connect(home / "var" / "mci.sqlite")) as db:
            assert db.execute("SELECT count(*) FROM source_records WHERE source_system = 'housing'").fetchone()[0] == 0

        council["servers"].housing.come_up()
        back = subprocess.run([JOINEDUP, "run", "--no-demo", "--night", "night-2", "--source", "housing"],
                              env=env, cwd=home, capture_output=True, text=True, timeout=900)
        assert back.returncode == 0, back.stdout[-3000:]
        assert _summary_lines(back.stdout)["housing"].endswith("ok")
    records, clusters = index_shape(home)
    clean_records, clean_clusters = clean_night.shape
    assert records == clean_records  # nothing lost, nothing duplicated
    assert clusters == clean_clusters


@pytest.mark.airflow
def test_a_past_night_is_backfilled_by_its_logical_date(project: Path) -> None:
    """The revenues extract of 2026-01-05 sat in the drop folder but that night never ran:
    `airflow dags test <dag> <logical date>` runs the source and then the merge for that
    day, under one night id (night-2026-01-05), and the index is built from it."""
    from tests.conftest import csv_drop_source, drop_file

    csv_drop_source(project, max_failure_rate=0.2, retries="{attempts: 0}", only=True)
    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    env = _airflow_env(project)
    airflow = shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow"
    for dag in ("joinedup_source_revenues", "joinedup_merge"):
        out = subprocess.run([airflow, "dags", "test", dag, "2026-01-05T02:00:00+00:00"], env=env, cwd=project,
                             capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    runs = _runs(project, "night-2026-01-05")
    assert {s: r[0] for s, r in runs.items()} == {
        "land:revenues": "ok", "check:revenues": "ok", "stage:revenues": "ok", "merge": "ok"}
    assert runs["land:revenues"][1]["rows_landed"] == 12 and runs["stage:revenues"][1]["new"] == 10
    assert runs["merge"][1]["persons_total"] == 7
    with contextlib.closing(sqlite3.connect(project / "var" / "mci.sqlite")) as db:
        assert db.execute("SELECT count(*) FROM runs WHERE run_id != 'night-2026-01-05'").fetchone()[0] == 0
