"""Real Airflow: the DAG files import cleanly, and a night runs through ``airflow dags test``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, csv_drop_source, drop_file, pg_url

DAGBAG_SCRIPT = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder="{dags}")
print("DAGBAG:" + json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}},
      "dags": sorted(bag.dag_ids),
      "tasks": {{d: [t.task_id for t in bag.get_dag(d).tasks] for d in bag.dag_ids}},
      "lineage": {{d: {{t.task_id: [sorted(a.uri for a in t.inlets), sorted(a.uri for a in t.outlets)]
                     for t in bag.get_dag(d).tasks}} for d in bag.dag_ids}}}}))
"""


_MIGRATED: dict[str, Path] = {}


def _airflow_env(project: Path) -> dict[str, str]:
    """Airflow pointed at the test project, with a migrated metadata DB (migrated once per
    session, then copied: `airflow db migrate` takes a while)."""
    from joinedup.airflow_runner import airflow_env, ensure_metadata_db

    env = airflow_env({k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "JOINEDUP_DB"))})
    home = project / "var" / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    if "db" not in _MIGRATED:
        template = project.parent / "airflow-template"
        template.mkdir(exist_ok=True)
        ensure_metadata_db({**env, "AIRFLOW_HOME": str(template)}, template / "migrate.log")
        _MIGRATED["db"] = template / "airflow.db"
    shutil.copy(_MIGRATED["db"], home / "airflow.db")
    env["AIRFLOW_HOME"] = str(home)
    if os.environ.get("JOINEDUP_DB_URL"):
        env["JOINEDUP_DB_URL"] = os.environ["JOINEDUP_DB_URL"]
    return env


def _dagbag(project: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", DAGBAG_SCRIPT.format(dags=project / "dags")],
                         env=_airflow_env(project), capture_output=True, text=True, timeout=300)
    line = next((l for l in out.stdout.splitlines() if l.startswith("DAGBAG:")), None)
    assert line, f"DagBag did not report; stderr tail: {out.stderr[-2000:]}"
    return json.loads(line[len("DAGBAG:"):])


@pytest.mark.airflow
def test_every_dag_imports_and_a_broken_adapter_file_does_not_take_the_others_down(project: Path) -> None:
    """One DagBag (a subprocess importing Airflow: seconds) over the council's adapters plus a
    broken one: the broken file yields no DAG and no import error, every other DAG is whole."""
    sources = sorted(p.stem for p in (project / "adapters").glob("*.yaml") if not p.name.startswith("_"))
    (project / "adapters" / "broken.yaml").write_text("name: broken\nkind: nosuchkind\nmapping: x.yaml\n")
    bag = _dagbag(project)
    assert bag["errors"] == {}
    assert "joinedup_source_broken" not in bag["dags"]
    assert bag["dags"] == sorted(["joinedup_merge", *(f"joinedup_source_{s}" for s in sources)])
    for s in sources:
        assert bag["tasks"][f"joinedup_source_{s}"] == ["land", "check", "stage", "verdict"]
    # lineage (OpenLineage reads inlets/outlets): source system -> landing -> staging -> MCI
    lineage = bag["lineage"]["joinedup_source_housing"]
    assert lineage["land"] == [["joinedup://source/housing"], ["joinedup://landing/housing"]]
    assert lineage["check"][0] == lineage["stage"][0] == ["joinedup://landing/housing"]
    assert lineage["verdict"][1] == ["joinedup://staging/housing"]
    assert bag["lineage"]["joinedup_merge"]["match_and_report"] == [
        sorted(f"joinedup://staging/{s}" for s in sources), ["joinedup://mci/persons"]]


# The production store when one is reachable. The Airflow night on SQLite is run by every test
# of test_airflow_council.py (the council's nights), so a second SQLite night here adds nothing.
PRODUCTION_STORE = "postgresql" if pg_url() else "sqlite"


@pytest.mark.airflow
@pytest.mark.parametrize("mci_db", [PRODUCTION_STORE], indirect=True)
def test_night_through_airflow_builds_the_index(project: Path, mci_db: str) -> None:
    csv_drop_source(project, max_failure_rate=0.2, retries="{attempts: 0}", only=True)
    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    env = _airflow_env(project)
    joinedup = shutil.which("joinedup", path=str(Path(sys.executable).parent)) or "joinedup"
    out = subprocess.run([joinedup, "run", "--no-demo", "--night", "night-1"], env=env, cwd=project,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "persons in the MCI:      7" in out.stdout
    assert "rows in quarantine:      2" in out.stdout
    stats = subprocess.run([joinedup, "mci", "stats", "--json"], env=env, cwd=project, capture_output=True, text=True, timeout=120)
    figures = json.loads(stats.stdout)
    assert figures["persons"] == 7 and figures["source_records"] == 10 and figures["linked_records"] == 10
    assert (project / "var" / "reports" / "match_report_night-1.html").exists()
    # Airflow really ran it: its metadata DB has the DAG runs
    log = next((project / "var" / "logs").glob("night_night-1.log")).read_text()
    assert "dags test joinedup_source_revenues" in log and "dags test joinedup_merge" in log
    # the staging Asset event names its night, so a merge the scheduler starts on it joins that night
    import sqlite3

    with sqlite3.connect(project / "var" / "airflow" / "airflow.db") as db:
        extras = [json.loads(e) if isinstance(e, str) else e for (e,) in db.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.uri = 'joinedup://staging/revenues'")]
    assert extras and all(e.get("night") == "night-1" for e in extras), extras


@pytest.mark.airflow
def test_joinedup_airflow_passes_through_with_the_projects_configuration(project: Path) -> None:
    env = _airflow_env(project)
    joinedup = shutil.which("joinedup", path=str(Path(sys.executable).parent)) or "joinedup"
    out = subprocess.run([joinedup, "airflow", "config", "get-value", "core", "dags_folder"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith(str(project / "dags"))


@pytest.mark.airflow
def test_a_failed_source_does_not_block_the_others_and_catches_up_next_night(project: Path) -> None:
    """The housing extract is missing tonight: its DAG fails at once (no retries for a fatal
    error), revenues still loads, the merge still runs; the next night housing catches up."""
    for other in (project / "adapters").glob("*.yaml"):
        other.unlink()
    for name in ("revenues", "housing"):
        csv_drop_source(project, name, max_failure_rate=0.2, retries="{attempts: 3, delay_seconds: 600}",
                        file_pattern="*.csv")
    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    env = _airflow_env(project)
    joinedup = shutil.which("joinedup", path=str(Path(sys.executable).parent)) or "joinedup"
    first = subprocess.run([joinedup, "run", "--no-demo", "--night", "night-1"], env=env, cwd=project,
                           capture_output=True, text=True, timeout=900)
    assert first.returncode == 1, first.stdout[-3000:]
    lines = {line.split()[0]: line for line in first.stdout.splitlines() if line.split()[:1] in (["housing"], ["revenues"])}
    assert "FAILED" in lines["housing"] and "drop folder" in lines["housing"]
    assert lines["revenues"].split()[1:4] == ["12", "2", "10"] and lines["revenues"].endswith("ok")
    assert "persons in the MCI:      7" in first.stdout  # the merge ran on what landed
    # Next night the housing extract is there (same records under housing keys): it catches up.
    drop_file(project, "housing", "revenues_small.csv", "housing_20260106.csv")
    second = subprocess.run([joinedup, "run", "--no-demo", "--night", "night-2"], env=env, cwd=project,
                            capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:]
    assert "source records linked:   20 of 20" in second.stdout
