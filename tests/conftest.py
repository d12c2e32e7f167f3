"""Shared fixtures: an isolated project folder and MCI database per test, on SQLite and, when
one is reachable, on a real PostgreSQL (``JOINEDUP_TEST_PG_URL``, set by .ci/run)."""
from __future__ import annotations

import os
import shutil
import socket
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

# A pytest-xdist worker runs as `python -c`, so its __main__ has neither __spec__ nor __file__.
# pyspark.sql.connect (imported by Great Expectations) takes that for a doctest run and calls
# sys.exit(0) when Spark Connect's extras are absent, killing any test that validates a batch.
# An empty __file__ (os.devnull: a multiprocessing child that runs it runs nothing) avoids it.
_main = sys.modules["__main__"]
if os.environ.get("PYTEST_XDIST_WORKER") and getattr(_main, "__spec__", None) is None \
        and not hasattr(_main, "__file__"):
    _main.__file__ = os.devnull

# Property tests on a loaded CI machine: how long Hypothesis takes to draw an example (pandas
# frames, nested records) says nothing about the code under test, so that health check is off
# for every test; a failure prints the blob that reproduces its example (@reproduce_failure).
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("joinedup", suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile("joinedup")


def free_port() -> int:
    """A loopback port free now (bound and released), for a test's own server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_canonical_council(folder: Path, residents: int, seed: int) -> Path:
    """Canonical CSVs of a synthetic council (production mappings) with its truth, in ``folder``."""
    from benchmarks.mci_bench import write_canonical_csvs
    from joinedup.demo import _write_truth
    from joinedup.simulators.council import build_council

    council = build_council(residents, seed=seed)
    write_canonical_csvs(council, folder)
    _write_truth(council, folder)
    return folder


LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
_probe: dict[str, str | None] = {}


def pg_url() -> str | None:
    """JOINEDUP_TEST_PG_URL, else a local server on the default port if one answers."""
    if "url" not in _probe:
        url = os.environ.get("JOINEDUP_TEST_PG_URL")
        if not url:
            try:
                import psycopg

                psycopg.connect(LOCAL_PG, connect_timeout=2).close()
                url = LOCAL_PG
            except Exception:  # noqa: BLE001 - no local server: the header says so
                url = None
        _probe["url"] = url
    return _probe["url"]


# Under pytest-xdist (`make test` runs two workers, one module per worker at a time), the folders
# whose modules take minutes are handed out first and the many short unit tests fill the gaps at
# the end, so that no worker is left alone with a long module while the other has finished.
LONGEST_FIRST = ("e2e", "reliability", "component", "unit")


def pytest_collection_modifyitems(config, items):  # noqa: ANN001, ANN201
    if not hasattr(config, "workerinput"):  # a plain run keeps pytest's own order
        return

    def folder_rank(item) -> int:  # noqa: ANN001
        parts = item.nodeid.split("::", 1)[0].split("/")  # tests/<folder>/test_x.py
        folder = parts[1] if len(parts) > 2 and parts[0] == "tests" else ""
        return LONGEST_FIRST.index(folder) if folder in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=folder_rank)  # stable: the order inside a folder is kept


def pytest_report_header(config):  # noqa: ANN001, ANN201
    url = pg_url()
    if url:
        return f"PostgreSQL tests: on ({url.split('@')[-1]})"
    return "PostgreSQL tests: OFF - no server reachable (set JOINEDUP_TEST_PG_URL; .ci/run starts one)"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the council's configuration folders, with var/ inside it, as JOINEDUP_HOME."""
    home = tmp_path / "project"
    for name in ("adapters", "mappings", "schemas", "dags"):
        shutil.copytree(REPO / name, home / name)
    shutil.copy(REPO / "airflow.cfg", home / "airflow.cfg")
    monkeypatch.setenv("JOINEDUP_HOME", str(home))
    monkeypatch.setenv("JOINEDUP_VAR", str(home / "var"))
    monkeypatch.delenv("JOINEDUP_DB_URL", raising=False)
    from joinedup.mci import golden
    from joinedup.quality import gate

    golden._load.cache_clear()
    gate._suite_expectations.cache_clear()
    return home


def _fresh_pg_database(url: str) -> str:
    """A new, empty database on the test server, dropped again by the caller."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"joinedup_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def mci_db(request: pytest.FixtureRequest, project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The MCI database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{project / 'var' / 'mci.sqlite'}"
        (project / "var").mkdir(exist_ok=True)
    else:
        base = pg_url()
        if not base:
            pytest.skip("PostgreSQL not reachable: set JOINEDUP_TEST_PG_URL (.ci/run does)")
        url = _fresh_pg_database(base)
    monkeypatch.setenv("JOINEDUP_DB_URL", url)
    yield url
    from joinedup.mci.store import _engine_for

    engine = _engine_for(url)
    engine.dispose()
    _engine_for.cache_clear()
    if request.param == "postgresql":
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        admin = create_engine(pg_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        admin.dispose()


def csv_drop_source(project: Path, name: str = "revenues", *, mapping: str = "revenues.yaml",
                    max_failure_rate: float = 0.10, special_category: bool = False, retries: str | None = None,
                    file_pattern: str | None = None, only: bool = False, extract: str | None = None,
                    gone_guard: str | None = None) -> Path:
    """Configure source ``name`` as a CSV drop folder (``var/drops/<name>``) read with
    ``mapping`` - by default the revenues layout of tests/fixtures/revenues_small.csv. ``only``
    removes every other source first; ``retries`` is the YAML flow mapping, e.g. "{attempts: 0}";
    ``extract`` is "changes" or "full" (left out: the default, changes); ``gone_guard`` the YAML
    flow mapping, e.g. "{max_share: 0.1, min_records: 2}".
    Writing it again with another ``max_failure_rate`` is how a test moves the threshold."""
    if only:
        for other in (project / "adapters").glob("*.yaml"):
            other.unlink()
    lines = [f"name: {name}", "kind: csv", f"mapping: {mapping}",
             f"special_category: {str(special_category).lower()}",
             f"quality: {{max_failure_rate: {max_failure_rate}}}"]
    if retries:
        lines.append(f"retries: {retries}")
    if extract:
        lines.append(f"extract: {extract}")
    if gone_guard:
        lines.append(f"gone_guard: {gone_guard}")
    lines.append(f"options: {{drop_folder: drops/{name}, file_pattern: '{file_pattern or name + '_*.csv'}'}}")
    path = project / "adapters" / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stage_council_night(session, residents: int, seed: int, night: int) -> int:  # noqa: ANN001
    """Stage one night of the synthetic council (every system, mapped with the production
    mappings, in system name order) into the MCI and commit; the new and changed records."""
    from benchmarks.mci_bench import canonical_frames
    from joinedup.mci.staging import stage_records
    from joinedup.simulators.council import build_council

    frames, _ = canonical_frames(build_council(residents, seed=seed, night=night))
    staged = 0
    for system in sorted(frames):
        frame = frames[system]
        counts = stage_records(session, frame.astype(object).where(frame.notna(), None).to_dict("records"),
                               f"night-{night}")
        staged += counts.new + counts.changed
    session.commit()
    return staged


def drop_file(project: Path, source: str, fixture: str, name: str) -> Path:
    folder = project / "var" / "drops" / source
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.copy(REPO / "tests" / "fixtures" / fixture, target)
    return target
