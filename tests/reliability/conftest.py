"""Fixtures of the fault tests: a small synthetic council served on loopback, a project folder
tuned so a fault can land between pages, the real ``joinedup`` CLI in a subprocess, and the
index of a clean run of the same night to compare every recovered index with."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.index_check import IndexSnapshot, index_snapshot

REPO = Path(__file__).resolve().parents[2]
RESIDENTS, SEED, NIGHT = 200, 8, "night-1"
JOINEDUP = Path(sys.executable).parent / "joinedup"

# Small pages so that a fault can strike between pages; one quick retry so that a source that
# stays dead fails the run in seconds instead of backing off for minutes.
TUNING = {
    "housing.yaml": [("page_size: 500", "page_size: 10"),
                     ("retries: 5, backoff_seconds: 1", "retries: 1, backoff_seconds: 0, jitter_seconds: 0")],
    "revenues.yaml": [("page_size: 500", "page_size: 40"),
                      ("retries: 5, backoff_seconds: 1", "retries: 1, backoff_seconds: 0, jitter_seconds: 0")],
}


def tune_project(home: Path) -> None:
    for name, edits in TUNING.items():
        path = home / "adapters" / name
        text = path.read_text(encoding="utf-8")
        for old, new in edits:
            assert old in text, f"adapters/{name} no longer has {old!r}: update tests/reliability/conftest.py TUNING"
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")


def make_project(home: Path) -> Path:
    for name in ("adapters", "mappings", "schemas", "dags"):
        shutil.copytree(REPO / name, home / name)
    tune_project(home)
    (home / "var").mkdir(parents=True, exist_ok=True)
    return home


@pytest.fixture(scope="session")
def council_records() -> dict[str, list[dict]]:
    """The council's four systems' native records on night 0 (deterministic: fixed seed)."""
    from joinedup.simulators.council import build_council

    return build_council(RESIDENTS, SEED, night=0).records


@contextlib.contextmanager
def serve_council(records: dict[str, list[dict]], var: Path) -> Iterator:
    """The SOAP and REST systems on loopback and the two drop files under var/drops/council."""
    from joinedup.simulators.council import night_datetime
    from joinedup.simulators.servers import CouncilOptions, start_council_servers

    options = CouncilOptions(extract_date=night_datetime(0).date())
    with start_council_servers(records, var / "drops" / "council", options=options) as running:
        yield running


def cli_env(home: Path, db_url: str, council, fault: str | None = None) -> dict[str, str]:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOINEDUP_", "AIRFLOW"))}
    env.update(council.env())
    env.update(JOINEDUP_HOME=str(home), JOINEDUP_VAR=str(home / "var"), JOINEDUP_DB_URL=db_url,
               GX_ANALYTICS_ENABLED="false")
    if fault:
        env["JOINEDUP_FAULT"] = fault
    return env


def run_cli(args: list[str], env: dict[str, str], *, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real ``joinedup`` command in a subprocess (its output captured, for messages)."""
    return subprocess.run([str(JOINEDUP), *args], env=env, cwd=env["JOINEDUP_HOME"], capture_output=True,
                          text=True, timeout=timeout, check=False)


def night_args(night: str = NIGHT) -> list[str]:
    return ["run", "--direct", "--no-demo", "--night", night]


@pytest.fixture(scope="session")
def clean_index(tmp_path_factory: pytest.TempPathFactory, council_records) -> IndexSnapshot:  # noqa: ANN001
    """The index after a clean night (no fault), built once per test session."""
    home = make_project(tmp_path_factory.mktemp("clean") / "project")
    url = f"sqlite:///{home / 'var' / 'mci.sqlite'}"
    with serve_council(council_records, home / "var") as council:
        done = run_cli(night_args(), cli_env(home, url, council))
    assert done.returncode == 0, f"the clean night failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return index_snapshot(url)


@pytest.fixture
def faulty(tmp_path: Path, council_records, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """A tuned project on SQLite with the council served; the test injects the fault."""
    home = make_project(tmp_path / "project")
    url = f"sqlite:///{home / 'var' / 'mci.sqlite'}"
    monkeypatch.setenv("JOINEDUP_HOME", str(home))
    monkeypatch.setenv("JOINEDUP_VAR", str(home / "var"))
    monkeypatch.setenv("JOINEDUP_DB_URL", url)
    monkeypatch.delenv("JOINEDUP_FAULT", raising=False)
    from joinedup.mci import golden
    from joinedup.quality import gate

    golden._load.cache_clear()
    gate._suite_expectations.cache_clear()
    with serve_council(council_records, home / "var") as council:
        for key, value in council.env().items():
            monkeypatch.setenv(key, value)
        yield Faulty(home, url, council, council_records)
    from joinedup.mci.store import _engine_for

    _engine_for(url).dispose()
    _engine_for.cache_clear()


class Faulty:
    """What a fault test works with: the project, its MCI URL, the running council."""

    def __init__(self, home: Path, db_url: str, council, records: dict[str, list[dict]]) -> None:  # noqa: ANN001
        self.home, self.db_url, self.council, self.records = home, db_url, council, records

    @property
    def var(self) -> Path:
        return self.home / "var"

    def env(self, fault: str | None = None) -> dict[str, str]:
        return cli_env(self.home, self.db_url, self.council, fault)

    def cli(self, args: list[str], fault: str | None = None) -> subprocess.CompletedProcess:
        return run_cli(args, self.env(fault))
