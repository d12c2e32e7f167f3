"""Shared measuring tools for the benchmarks: stage clocks with peak memory, an isolated
project folder, the machine's load, and the figures kept as JSON under docs/benchmarks/.

How peak memory is measured (and why it is honest):

- each pipeline stage runs in a fresh child process (see ``build_bench``), so one stage's
  leftovers never count against the next;
- inside that process a :class:`StageClock` attributes time *exclusively* to the innermost
  named stage (a nested stage pauses its parent), and records each stage's peak resident set
  size (RSS) two ways: a sampling thread reads ``/proc/self/statm`` every 20 ms, and at every
  stage boundary the kernel's own high-water mark (``ru_maxrss``) is read — when it rose while
  a stage was running, that stage set the process's peak and the exact figure is kept.
  A stage that never set a new high-water mark has its sampled peak (good to about 20 ms).
- RSS includes the interpreter and its imports (about 150-250 MB with pandas, DuckDB and GX):
  read small figures as "the floor", not as the stage's own appetite.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FIGURES_DIR = REPO / "docs" / "benchmarks"
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

#: The stages of a build, in the order the data flows (issue 11's list), plus "other" for
#: bookkeeping no named stage owns (the merge's run table and match report).
STAGES: tuple[str, ...] = ("extract", "land", "map", "validate", "stage", "match", "cluster", "golden", "other")


def rss_bytes() -> int:
    """This process's resident set size now (Linux /proc; falls back to the peak)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * PAGE
    except OSError:
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """The kernel's high-water mark of this process's RSS (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class StageFigures:
    seconds: float = 0.0
    peak_rss: int = 0
    calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 3), "peak_rss_mb": round(self.peak_rss / 2**20, 1), "calls": self.calls}


@dataclass
class StageClock:
    """Exclusive wall time and peak RSS per named stage, within one process.

    ``with clock.stage("map"): ...`` — nested stages pause the enclosing one, so the times add
    up to the wall time of everything measured. Not thread-safe by design: the pipeline's
    stages run on one thread; the sampler thread only reads memory.
    """

    interval: float = 0.02
    figures: dict[str, StageFigures] = field(default_factory=dict)
    _stack: list[str] = field(default_factory=list)
    _since: float = 0.0
    _high_water: int = 0
    _sampler: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._high_water = peak_rss_bytes()

    # -- sampling ---------------------------------------------------------------------------
    def start_sampling(self) -> "StageClock":
        if self._sampler is None:
            self._sampler = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
            self._sampler.start()
        return self

    def stop_sampling(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=1)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            stack = self._stack
            if stack:
                self._note_peak(stack[-1], rss_bytes())

    def _note_peak(self, name: str, rss: int) -> None:
        fig = self.figures.setdefault(name, StageFigures())
        if rss > fig.peak_rss:
            fig.peak_rss = rss

    # -- boundaries -------------------------------------------------------------------------
    def _switch(self) -> None:
        """Close the running interval: charge its time and, if the kernel's high-water mark
        rose during it, that exact peak, to the innermost stage."""
        now = time.perf_counter()
        if self._stack:
            name = self._stack[-1]
            fig = self.figures.setdefault(name, StageFigures())
            fig.seconds += now - self._since
            hw = peak_rss_bytes()
            self._note_peak(name, max(rss_bytes(), hw if hw > self._high_water else 0))
            self._high_water = max(self._high_water, hw)
        self._since = now

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._switch()
        self._stack.append(name)
        self.figures.setdefault(name, StageFigures()).calls += 1
        self._note_peak(name, rss_bytes())
        try:
            yield
        finally:
            self._switch()
            self._stack.pop()

    def wrap(self, owner: Any, attr: str, name: str) -> bool:
        """Time every call of ``owner.attr`` as stage ``name`` (generators: each step).
        False when ``owner`` has no such attribute (the code moved on: say so, do not fail)."""
        original = getattr(owner, attr, None)
        if original is None or getattr(original, "_stage_clock_wrapped", False):
            return original is not None
        clock = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            with clock.stage(name):
                return original(*args, **kwargs)

        timed._stage_clock_wrapped = True  # type: ignore[attr-defined]
        timed.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(owner, attr, timed)
        return True

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {k: v.as_dict() for k, v in self.figures.items()}


def timed_iterator(clock: StageClock, name: str, iterator: Iterator[Any]) -> Iterator[Any]:
    """Charge the work of producing each item of ``iterator`` to ``name`` (an extract's
    pages: the time inside the adapter, not the time the consumer spends on each page)."""
    it = iter(iterator)
    while True:
        with clock.stage(name):
            try:
                item = next(it)
            except StopIteration:
                return
        yield item


# -- the project folder ---------------------------------------------------------------------

def make_project(home: Path) -> Path:
    """A copy of the council's configuration (adapters, mappings, schemas, dags) with its own
    var/ — so a benchmark never touches the checkout's var/ or MCI."""
    if home.exists():
        shutil.rmtree(home)
    for name in ("adapters", "mappings", "schemas", "dags"):
        shutil.copytree(REPO / name, home / name)
    shutil.copy(REPO / "airflow.cfg", home / "airflow.cfg")
    (home / "var").mkdir(parents=True, exist_ok=True)
    return home


def project_env(home: Path, db_url: str | None = None) -> dict[str, str]:
    env = {"JOINEDUP_HOME": str(home), "JOINEDUP_VAR": str(home / "var"), "GX_ANALYTICS_ENABLED": "false",
           "JOINEDUP_DB_URL": db_url or f"sqlite:///{home / 'var' / 'mci.sqlite'}"}
    return env


# -- the machine ----------------------------------------------------------------------------

def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def machine_summary() -> dict[str, Any]:
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_gib": mem_gib, "python": platform.python_version(),
            "load_average": [round(x, 2) for x in load_average()]}


class LoadWatch:
    """The 1-minute load average sampled every few seconds while a benchmark runs: the box is
    shared, so every figure carries the load it was measured under."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(every):
                return

    def __enter__(self) -> "LoadWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def summary(self) -> dict[str, float]:
        s = self.samples or [os.getloadavg()[0]]
        return {"mean": round(sum(s) / len(s), 2), "max": round(max(s), 2)}


# -- figures kept as JSON, for the plots ----------------------------------------------------

def save_figures(kind: str, key: str, figures: dict[str, Any], folder: Path = FIGURES_DIR) -> Path:
    """Merge ``figures`` under ``key`` into ``docs/benchmarks/<kind>.json`` (one file per
    benchmark, one entry per size/run; a later run of the same key replaces it)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data[key] = {**figures, "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_figures(kind: str, folder: Path = FIGURES_DIR) -> dict[str, Any]:
    path = folder / f"{kind}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def run_child(argv: list[str], env: dict[str, str], result_file: Path, cwd: Path = REPO,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run ``argv`` in a fresh process with ``env`` added; it writes its figures as JSON to
    ``result_file``. Returns them with the wall time seen from outside (start-up and imports
    included)."""
    import subprocess

    result_file.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    output, _ = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0 or not result_file.exists():
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise RuntimeError(f"benchmark step {' '.join(argv[-3:])} failed (exit {proc.returncode}); "
                           f"its last lines:\n{tail}")
    figures = json.loads(result_file.read_text(encoding="utf-8"))
    figures["wall_seconds_outside"] = round(wall, 3)
    if log and output.strip():
        log(output.strip()[-2000:])
    return figures
