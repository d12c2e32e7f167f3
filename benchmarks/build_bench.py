"""Full build and incremental night of the synthetic council: wall time and peak memory per
stage (extract, land, map, validate, stage, match, cluster, golden), at a given size.

What it runs is the direct-mode night (``joinedup run --direct``), stage by stage:

1. serves the synthetic council of N residents on loopback (SOAP, REST, XML and fixed-width
   drops; ``joinedup.demo.synthetic_council``) in this process — not counted;
2. runs every pipeline step (``land``, ``check``, ``stage`` per source, then ``merge``) in a
   **fresh child process** with a :class:`benchmarks.support.StageClock` wrapped around the
   calls inside it, so each fine stage gets its own exclusive time and peak RSS
   (see the support module for how memory is measured);
3. scores the index against the truth (``joinedup evaluate``) and exports the staged canonical
   records per source as CSV (for ``peers_bench`` and ``threshold_bench``);
4. serves the council's next night (about 1% of records new or changed) and runs the same
   steps again: the incremental night, with its ratio to the full build;
5. keeps the figures in ``docs/benchmarks/build.json`` and redraws
   ``docs/build_scaling.png`` (log-log, each stage's seconds and peak memory against size)
   from every size recorded so far.

Where the stages come from: ``extract`` is the time inside the adapter (building it and
pulling its pages), ``land`` the landing writer (pages to disk, manifest, cursor),
``map``/``validate`` ``map_records``/``validate_batch`` (``validate`` also the gate's reports:
the batch's Data Docs page, the source's data-quality page and a refused batch's quarantine
rows; before 2026-12-07 these fell to ``map``), ``stage`` ``stage_records``,
``match`` loading and standardising the index, the model (trained on the first night) and
scoring candidate pairs (on a night also reading the stored index for them: the candidates
found by the stored block keys, their persons, their stored features and term frequencies;
before 2026-12-07 these fell to ``other``), ``cluster`` planning and writing clusters, links
and review pairs, ``golden`` survivorship and the CRM search keys; what no finer call claims
goes to the step's own stage (``STEP_DEFAULT``: landing bookkeeping to ``land``, reading the landed pages
back and the hand-over file to ``map``, the staging transaction's commit to ``stage``) and
the merge's remainder (run table, match report) to ``other``. The runs table's own per-step
seconds are kept beside them as a cross-check.

``--records-per-resident-profile full`` builds the council with the record history a real
council's systems keep (``joinedup.simulators.history``: closed accounts at earlier homes,
ended tenancies, kept leavers, closed cases, people who left or died; about 2.5 source
records per resident instead of about 1.0). Its figures are saved under ``<residents>-full``
beside the default rows, and the plot draws them as separate points.

Run:  .venv/bin/python benchmarks/build_bench.py --residents 10000 [--seed 2026]
      .venv/bin/python -m benchmarks build -- --residents 100000
      .venv/bin/python -m benchmarks build -- --residents 10000 --records-per-resident-profile full
      ... --profile: each step under cProfile (night-<n>/step-<step>-<source>.prof; not saved)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.support import (  # noqa: E402
    FIGURES_DIR, STAGES, LoadWatch, StageClock, load_figures, machine_summary, make_project,
    project_env, run_child, save_figures, timed_iterator,
)

STEPS = ("land", "check", "stage")
#: Where a step's time goes when no finer call claims it: the land step's bookkeeping
#: (manifest, batch row, cursor) is landing; the check step's reading of the landed pages,
#: de-duplication and hand-over file are the mapping's input and output; the stage step's
#: reading of the hand-over and its transaction's commit (where the rows are written) are
#: staging; the merge's remainder (run table, match report) is ``other``.
STEP_DEFAULT = {"land": "land", "check": "map", "stage": "stage", "merge": "other"}
DEFAULT_SEED = 2026
#: Set (by ``--profile``) for the step processes: each runs its step under cProfile.
PROFILE_ENV = "JOINEDUP_BENCH_PROFILE"


# -- inside one child process ---------------------------------------------------------------

def instrument(clock: StageClock) -> tuple[list[str], Callable[[], None]]:
    """Wrap the pipeline's calls with the clock. Returns the names of the calls it could not
    find (their time then falls to ``other``: the report says so) and a function that puts
    the originals back (for the in-process mode, so a test process is left as it was)."""
    import joinedup.landing as landing
    import joinedup.mci.features as stored
    import joinedup.mci.match as match
    import joinedup.pipeline as pipeline
    import joinedup.quality.data_docs as data_docs
    import joinedup.quality.pages as quality_pages
    import joinedup.quality.quarantine as quarantine
    import joinedup.steward.report as report

    missing = []
    plan = [
        (landing.LandingWriter, "write_page", "land"), (landing.LandingWriter, "complete", "land"),
        (pipeline, "_register_batch", "land"),
        (pipeline, "map_records", "map"), (pipeline, "validate_batch", "validate"),
        (data_docs, "publish_quietly", "validate"), (quality_pages, "write_quality_pages", "validate"),
        (quarantine, "record_failures", "validate"),
        (pipeline, "stage_records", "stage"),
        (match, "_load_frame", "match"), (match, "standardise", "match"),
        (match, "choose_model", "match"), (match, "decide_pairs", "match"),
        (stored, "candidates", "match"), (stored, "load_features", "match"),
        (stored, "term_frequencies", "match"), (match, "_masters_of", "match"), (match, "_members_of", "match"),
        (match, "links_from", "cluster"), (match, "cluster_records", "cluster"),
        (match, "_write_plan", "cluster"), (match, "refresh_golden", "golden"),
        (report, "write_match_report", "other"),
    ]
    originals = [(owner, attr, getattr(owner, attr, None)) for owner, attr, _ in plan]
    originals.append((pipeline, "build_adapter", pipeline.build_adapter))
    for owner, attr, name in plan:
        if not clock.wrap(owner, attr, name):
            missing.append(f"{owner.__name__}.{attr}")

    original_build = pipeline.build_adapter

    def build_adapter(config):  # noqa: ANN001, ANN202 - same signature as the original
        with clock.stage("extract"):
            adapter = original_build(config)
        extract = adapter.extract
        try:
            adapter.extract = lambda cursor=None: timed_iterator(clock, "extract", extract(cursor))
            clock.wrap(adapter, "acknowledge", "extract")  # a drop adapter files the processed drop
        except (AttributeError, TypeError):
            missing.append("adapter.extract (not wrappable: its time falls to land)")
        return adapter

    pipeline.build_adapter = build_adapter

    def restore() -> None:
        for owner, attr, original in originals:
            if original is not None:
                setattr(owner, attr, original)

    return missing, restore


def child_main(step: str, source: str, run_id: str, result_file: Path) -> int:
    """One pipeline step in this (fresh) process, measured; figures to ``result_file``."""
    started = time.perf_counter()
    import joinedup.pipeline  # noqa: F401 - the imports count as start-up, not as the step

    if os.environ.get(PROFILE_ENV):  # --profile: the step under cProfile, its stats beside its figures
        import cProfile

        profiler = cProfile.Profile()
        figures = profiler.runcall(measure_step, step, source, run_id, started)
        profiler.dump_stats(str(result_file.with_suffix(".prof")))
    else:
        figures = measure_step(step, source, run_id, started)
    result_file.write_text(json.dumps(figures), encoding="utf-8")
    return 0


def measure_step(step: str, source: str, run_id: str, started: float | None = None) -> dict[str, Any]:
    """One pipeline step, instrumented, in this process; its figures (originals restored)."""
    import joinedup.pipeline as pipeline
    from benchmarks.support import peak_rss_bytes

    started = time.perf_counter() if started is None else started
    clock = StageClock()
    missing, restore = instrument(clock)
    imported = time.perf_counter()
    clock.start_sampling()
    try:
        with clock.stage(STEP_DEFAULT[step]):
            if step == "merge":
                outcome = pipeline.merge(run_id)
            else:
                outcome = getattr(pipeline, step)(source, run_id)
    finally:
        clock.stop_sampling()
        restore()
    finished = time.perf_counter()
    return {
        "step": step, "source": source, "stages": clock.as_dict(),
        "seconds_in_step": round(finished - imported, 3),
        "seconds_startup": round(imported - started, 3),
        # The sampled stage peaks, not ru_maxrss: on Linux a child's ru_maxrss starts at the
        # parent's high-water mark (kept across fork and exec), which is the served council.
        "peak_rss_mb": max((s["peak_rss_mb"] for s in clock.as_dict().values()), default=0.0),
        "ru_maxrss_mb": round(peak_rss_bytes() / 2**20, 1),
        "not_instrumented": missing,
        "outcome": {k: v for k, v in outcome.items() if isinstance(v, (int, float, str, bool)) or v is None},
    }


# -- the parent: one night, then the next --------------------------------------------------

def night_plan(sources: list[str]) -> list[tuple[str, str]]:
    """The night's steps in order: land, check, stage per source, then the one merge."""
    return [(step, source) for source in sources for step in STEPS] + [("merge", "-")]


def step_file(work: Path, step: str, source: str) -> Path:
    return work / f"step-{step}-{source}.json"


class StoppedBeforeMerge(Exception):
    """``--stop-before-merge``: night 0's source steps are done and its merge is not started."""


def run_night_steps(sources: list[str], run_id: str, env: dict[str, str], work: Path,
                    say=print, in_process: bool = False, resume: bool = False,  # noqa: ANN001
                    stop_before_merge: bool = False) -> dict[str, Any]:
    """Every step of one night in its own process (or all in this one: ``in_process``, for a
    quick look and the smoke test — peaks then include the earlier steps' leftovers).
    ``resume``: a step whose figures file is already in ``work`` is not run again; its
    figures are taken from the file (a long build interrupted after its last finished step).
    ``stop_before_merge``: raise :class:`StoppedBeforeMerge` instead of running the merge."""
    steps: list[dict[str, Any]] = []
    for step, source in night_plan(sources):
        if stop_before_merge and step == "merge" and not (resume and step_file(work, step, source).exists()):
            raise StoppedBeforeMerge(str(work))
        if resume and step_file(work, step, source).exists():
            fig = json.loads(step_file(work, step, source).read_text(encoding="utf-8"))
            fig.setdefault("wall_seconds_outside", fig["seconds_in_step"] + fig["seconds_startup"])
            fig["resumed"] = True
            # a figures file from before the sampled peak was the step's peak: take the stages'
            fig["peak_rss_mb"] = max((st["peak_rss_mb"] for st in fig["stages"].values()), default=0.0)
            say(f"  {step:6} {source:11} {fig['seconds_in_step']:8.1f} s   (measured before; resumed)")
            steps.append(fig)
            continue
        with LoadWatch() as load:
            if in_process:
                t0 = time.perf_counter()
                fig = measure_step(step, source, run_id)
                fig["wall_seconds_outside"] = round(time.perf_counter() - t0, 3)
            else:
                result = step_file(work, step, source)
                argv = [sys.executable, str(Path(__file__).resolve()), "--child", step, source, run_id, str(result)]
                fig = run_child(argv, env, result)
        fig["load_average"] = load.summary()
        if not in_process:  # kept with the step's figures, so a resumed night still says its load
            result.write_text(json.dumps(fig), encoding="utf-8")
        steps.append(fig)
        say(f"  {step:6} {source:11} {fig['seconds_in_step']:8.1f} s   peak {fig['peak_rss_mb']:7.0f} MB"
            f"   (start-up {fig['seconds_startup']:.1f} s)")
    return summarise(steps)


def summarise(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Per stage: seconds summed over every process, peak RSS the largest of any process."""
    stages = {name: {"seconds": 0.0, "peak_rss_mb": 0.0} for name in STAGES}
    for fig in steps:
        for name, s in fig["stages"].items():
            into = stages.setdefault(name, {"seconds": 0.0, "peak_rss_mb": 0.0})
            into["seconds"] = round(into["seconds"] + s["seconds"], 3)
            into["peak_rss_mb"] = max(into["peak_rss_mb"], s["peak_rss_mb"])
    measured = round(sum(s["seconds"] for s in stages.values()), 3)
    loads = [(f["seconds_in_step"], f["load_average"]) for f in steps if f.get("load_average")]
    return {
        # each step's sampled load, weighted by its time (steps from before loads were kept: none)
        "load_average": {"mean": round(sum(t * l["mean"] for t, l in loads) / max(sum(t for t, _ in loads), 1e-9), 2),
                         "max": max(l["max"] for _, l in loads)} if loads else None,
        "stages": stages,
        "seconds_measured": measured,
        "seconds_startup": round(sum(f["seconds_startup"] for f in steps), 3),
        "seconds_outside": round(sum(f["wall_seconds_outside"] for f in steps), 3),
        "peak_rss_mb": max(f["peak_rss_mb"] for f in steps),
        "steps": [{k: f[k] for k in ("step", "source", "seconds_in_step", "seconds_startup", "peak_rss_mb",
                                     "outcome", "not_instrumented")} | {"load_average": f.get("load_average")}
                  for f in steps],
    }


def runs_table(run_id: str) -> dict[str, Any]:
    """What the pipeline itself recorded for the night (``runs``: seconds per step)."""
    from sqlalchemy import select

    from joinedup.mci.store import Run, session_factory

    with session_factory()() as session:
        return {r.stage: {"status": r.status, "seconds": (r.figures or {}).get("seconds")}
                for r in session.scalars(select(Run).where(Run.run_id == run_id))}


def quality() -> dict[str, Any]:
    from joinedup.cli.simulate import evaluate_index

    result, systems = evaluate_index()
    q = result.as_dict()
    return {k: q[k] for k in ("records", "persons", "clusters", "precision", "recall", "f1",
                              "false_merges", "missed_merges", "twin_pairs", "twins_merged")}


def export_canonical(folder: Path) -> dict[str, int]:
    """The staged canonical records, one CSV per source (what ``joinedup link``, Splink alone
    and recordlinkage are compared on), with the council's truth beside them."""
    import shutil

    import pandas as pd
    from sqlalchemy import select

    from joinedup.canonical import person_fields
    from joinedup.demo import council_dir
    from joinedup.mci.store import SourceRecord, session_factory

    folder.mkdir(parents=True, exist_ok=True)
    fields = [f for f in person_fields() if f != "source_system"]
    counts: dict[str, int] = {}
    with session_factory()() as session:
        rows = session.execute(select(SourceRecord.source_system, SourceRecord.record)).all()
    by_source: dict[str, list[dict]] = {}
    for system, record in rows:
        by_source.setdefault(system, []).append(record)
    for system, records in by_source.items():
        pd.DataFrame(records).reindex(columns=fields).to_csv(folder / f"{system}.csv", index=False)
        counts[system] = len(records)
    for name in ("truth.csv", "twins.csv"):
        shutil.copy(council_dir() / name, folder / name)
    return counts


def night(residents: int, seed: int, council_night: int, env: dict[str, str], work: Path,
          say=print, sources: list[str] | None = None, in_process: bool = False,
          resume: bool = False, history: str = "none", change_scale: float = 1.0,
          stop_before_merge: bool = False) -> dict[str, Any]:  # noqa: ANN001
    """One night, measured. Its run id and what the council served are kept in
    ``night-<n>/night.json`` in ``work`` (beside its steps' figures files) before any step
    runs, so ``resume`` can take up an interrupted night with the same run id; when only the
    merge is left, the council is not served again (the merge reads only the MCI)."""
    from joinedup.adapters import load_sources
    from joinedup.demo import synthetic_council
    from joinedup.simulators.council import NightlyChanges

    changes = NightlyChanges().scaled(change_scale)
    sources = sources or [c.name for c in load_sources()]
    work = work / f"night-{council_night}"
    work.mkdir(parents=True, exist_ok=True)
    kept = work / "night.json"
    if resume and kept.exists():
        served_night = json.loads(kept.read_text(encoding="utf-8"))
        say(f"night {council_night}: resuming run {served_night['run_id']}")
    else:
        served_night = None
    with contextlib.ExitStack() as stack:
        pending = [(st, so) for st, so in night_plan(sources)
                   if not (served_night and step_file(work, st, so).exists())]
        if served_night is None or any(st != "merge" for st, _ in pending):
            t0 = time.perf_counter()
            council = stack.enter_context(synthetic_council(residents, seed, council_night, history=history,
                                                              changes=changes))
            served = time.perf_counter() - t0
            served_night = {"run_id": (served_night or {}).get("run_id")
                            or f"bench{council_night}__{time.strftime('%Y%m%dT%H%M%S')}",
                            "council_records": council["records"], "council_residents": council["residents"],
                            "council_former_residents": council["former_residents"],
                            "seconds_serving": round(served, 1)}
            kept.write_text(json.dumps(served_night), encoding="utf-8")
            say(f"night {council_night}: {sum(council['records'].values()):,} records served "
                f"({json.dumps(council['records'])}) in {served:.0f} s (not counted)")
        with LoadWatch() as load:
            figures = run_night_steps(sources, served_night["run_id"], env, work, say, in_process, resume,
                                      stop_before_merge)
    figures.update(served_night, runs_table=runs_table(served_night["run_id"]), quality=quality())
    figures["load_average"] = figures["load_average"] or load.summary()
    staged = [s["outcome"] for s in figures["steps"] if s["step"] == "stage"]
    figures["records_new"] = sum(int(o.get("new", 0)) for o in staged)
    figures["records_changed"] = sum(int(o.get("changed", 0)) for o in staged)
    return figures


def measure(residents: int, seed: int, work: Path, *, incremental: bool = True, db_url: str | None = None,
            say=print, sources: list[str] | None = None, in_process: bool = False,
            resume: bool = False, history: str = "none", change_scale: float = 1.0,
            stop_before_merge: bool = False) -> dict[str, Any]:  # noqa: ANN001
    """The full build and (optionally) the next night, in a fresh project under ``work``
    (``resume``: in the project already there, taking up where an interrupted run stopped).
    ``history``: the council's record-history profile (``none`` or ``full``; see
    ``joinedup.simulators.history``). ``change_scale``: the council's nightly change rates
    times this (the first build does not depend on them). Sets JOINEDUP_HOME/JOINEDUP_VAR/JOINEDUP_DB_URL in this
    process's environment."""
    home = work / "project" if resume and (work / "project").is_dir() else make_project(work / "project")
    env = project_env(home, db_url)
    os.environ.update(env)
    out: dict[str, Any] = {"residents": residents, "seed": seed, "machine": machine_summary(),
                           "store": "postgresql" if db_url and db_url.startswith("postgres") else "sqlite",
                           "mode": "in-process" if in_process else "process per step",
                           "records_per_resident_profile": history, "change_rate_scale": change_scale}
    out["full"] = night(residents, seed, 0, env, work, say, sources, in_process, resume, history,
                        stop_before_merge=stop_before_merge)
    out["canonical_csvs"] = str(work / "canonical")
    out["canonical_records"] = export_canonical(work / "canonical")
    if incremental:
        out["incremental"] = night(residents, seed, 1, env, work, say, sources, in_process, resume, history,
                                   change_scale)
        full, inc = out["full"]["seconds_measured"], out["incremental"]["seconds_measured"]
        records = sum(out["incremental"]["council_records"].values())
        touched = out["incremental"]["records_new"] + out["incremental"]["records_changed"]
        out["incremental"]["share_of_records_changed"] = round(touched / max(records, 1), 4)
        out["speedup_measured"] = round(full / inc, 1) if inc else None
        out["speedup_with_startup"] = round(
            (full + out["full"]["seconds_startup"]) / (inc + out["incremental"]["seconds_startup"]), 1)
    return out


# -- printing and the plot ------------------------------------------------------------------

def table(figures: dict[str, Any]) -> str:
    full, inc = figures["full"], figures.get("incremental")
    lines = ["| stage | full build s | full peak MB | incremental s | incremental peak MB | ratio |",
             "|---|---|---|---|---|---|"]
    for name in STAGES:
        f = full["stages"].get(name, {"seconds": 0, "peak_rss_mb": 0})
        if inc:
            i = inc["stages"].get(name, {"seconds": 0, "peak_rss_mb": 0})
            ratio = f"{f['seconds'] / i['seconds']:.1f}x" if i["seconds"] > 0.005 else "-"
            lines.append(f"| {name} | {f['seconds']:.1f} | {f['peak_rss_mb']:.0f} | {i['seconds']:.2f} | "
                         f"{i['peak_rss_mb']:.0f} | {ratio} |")
        else:
            lines.append(f"| {name} | {f['seconds']:.1f} | {f['peak_rss_mb']:.0f} | - | - | - |")
    lines.append(f"| **all stages** | {full['seconds_measured']:.1f} | {full['peak_rss_mb']:.0f} | "
                 + (f"{inc['seconds_measured']:.2f} | {inc['peak_rss_mb']:.0f} | {figures['speedup_measured']}x |"
                    if inc else "- | - | - |"))
    return "\n".join(lines)


def profile_of(figures: dict[str, Any]) -> str:
    """The record-history profile a saved row was built with (rows from before the option: none)."""
    return figures.get("records_per_resident_profile", "none")


def figures_key(residents: int, store: str, profile: str) -> str:
    """The row's key in build.json: ``10000``, ``10000-postgresql``, ``10000-full``."""
    return f"{residents}" + ("" if store == "sqlite" else f"-{store}") + ("" if profile == "none" else f"-{profile}")


def plot(folder: Path = FIGURES_DIR, out: Path | None = None) -> Path | None:
    """docs/build_scaling.png: each stage's seconds and peak MB against residents, log-log,
    full build (solid) and incremental night (dashed), from docs/benchmarks/build.json.
    Lines join the default council's sizes; builds with record history (about 2.5 records
    per resident) are drawn as unjoined squares (full build) and diamonds (next night).
    A third panel sets the whole build and night side by side per store (SQLite, PostgreSQL)
    and council profile, so the PostgreSQL runs are drawn too."""
    data = load_figures("build", folder)
    sqlite = [v for v in data.values() if "full" in v and v.get("store", "sqlite") == "sqlite"]
    rows = sorted((v for v in sqlite if profile_of(v) == "none"), key=lambda v: v["residents"])
    extra = sorted((v for v in sqlite if profile_of(v) != "none"), key=lambda v: v["residents"])
    if not rows and not extra:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = out or folder.parent / "build_scaling.png"
    fig, (ax_t, ax_m, ax_s) = plt.subplots(1, 3, figsize=(19, 5.5))
    colours = plt.get_cmap("tab10")
    for i, name in enumerate(STAGES):
        for kind, style, marker in (("full", "-", "o"), ("incremental", "--", "x")):
            pts = [(r["residents"], r[kind]["stages"].get(name, {})) for r in rows if kind in r]
            xs = [x for x, s in pts if s.get("seconds", 0) > 0]
            if not xs:
                continue
            ax_t.plot(xs, [s["seconds"] for _, s in pts if s.get("seconds", 0) > 0], style, marker=marker,
                      color=colours(i), label=name if kind == "full" else None)
            ax_m.plot(xs, [s["peak_rss_mb"] for _, s in pts if s.get("seconds", 0) > 0], style, marker=marker,
                      color=colours(i), label=name if kind == "full" else None)
        for kind, marker in (("full", "s"), ("incremental", "D")):
            pts = [(r["residents"], r[kind]["stages"].get(name, {})) for r in extra if kind in r]
            pts = [(x, s) for x, s in pts if s.get("seconds", 0) > 0]
            if pts:
                ax_t.scatter([x for x, _ in pts], [s["seconds"] for _, s in pts], marker=marker,
                             facecolors="none", edgecolors=colours(i))
                ax_m.scatter([x for x, _ in pts], [s["peak_rss_mb"] for _, s in pts], marker=marker,
                             facecolors="none", edgecolors=colours(i))
    _plot_totals(ax_s, [v for v in data.values() if "full" in v])
    for ax, what in ((ax_t, "seconds (exclusive, summed over processes)"), (ax_m, "peak RSS, MB (per stage)"),
                     (ax_s, "seconds, all stages")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("residents")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=8, ncol=2, title="solid/o: full build; dashed/x: next night"
                + ("\nsquares/diamonds: with record history (~2.5 records/resident)" if extra else ""),
                title_fontsize=8)
    fig.suptitle("JoinedUp build of the synthetic council: cost per stage against size")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _plot_totals(ax, runs: list[dict[str, Any]]) -> None:  # noqa: ANN001 - a matplotlib Axes
    """All stages' seconds against residents, one line per (store, council profile): full build
    solid, next night dashed, so SQLite and PostgreSQL can be compared at each size."""
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        series.setdefault((run.get("store", "sqlite"), profile_of(run)), []).append(run)
    styles = {"sqlite": "tab:blue", "postgresql": "tab:red"}
    for (store, profile), group in sorted(series.items()):
        group.sort(key=lambda r: r["residents"])
        label = f"{'PostgreSQL' if store == 'postgresql' else 'SQLite'}" + (", with record history" if profile != "none" else "")
        marker = "s" if profile != "none" else "o"
        for kind, style in (("full", "-"), ("incremental", "--")):
            pts = [(r["residents"], r[kind]["seconds_measured"]) for r in group if kind in r and r[kind].get("seconds_measured")]
            if pts:
                ax.plot([x for x, _ in pts], [y for _, y in pts], style, marker=marker, color=styles.get(store, "grey"),
                        alpha=1.0 if profile == "none" else 0.55, label=label if kind == "full" else None)
    ax.legend(fontsize=8, title="solid: full build; dashed: next night", title_fontsize=8)
    ax.set_title("whole build and night, per store", fontsize=10)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _, step, source, run_id, result = argv
        return child_main(step, source, run_id, Path(result))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--work", type=Path, help="work folder (default var/bench/build-<residents>)")
    parser.add_argument("--no-incremental", action="store_true")
    parser.add_argument("--db-url", help="MCI database URL (default a fresh SQLite file); an EMPTY database")
    parser.add_argument("--no-save", action="store_true", help="do not record in docs/benchmarks/build.json")
    parser.add_argument("--resume", action="store_true",
                        help="take up an interrupted run in --work: finished steps are not run again "
                             "(restore the MCI to its state after the last finished step first)")
    parser.add_argument("--source", action="append", help="only these sources (repeatable; not saved)")
    parser.add_argument("--in-process", action="store_true",
                        help="every step in this process (quick look; not saved: peaks are not per step)")
    from joinedup.simulators.history import HISTORY_PROFILES

    parser.add_argument("--records-per-resident-profile", choices=sorted(HISTORY_PROFILES), default="none",
                        help="the council's record history: none (about 1.0 source record per resident) or "
                             "full (closed accounts, ended tenancies, leavers, closed cases: about 2.5); "
                             "saved under <residents>-<profile>")
    parser.add_argument("--change-rate-scale", type=float, default=1.0,
                        help="the council's nightly change rates times this for the next night (default 1 "
                             "changed 1.76%% of records at 1M; about 0.57 for 1%% of the default council's "
                             "records, about 1.43 for 1%% of a council with record history)")
    parser.add_argument("--stop-before-merge", action="store_true",
                        help="run the full build's source steps and stop before its merge: copy the work "
                             "folder (and the database) then, to measure the merge again from there with --resume")
    parser.add_argument("--profile", action="store_true",
                        help="run each step under cProfile and keep its statistics beside its figures "
                             "(night-<n>/step-<step>-<source>.prof; read with python -m pstats). "
                             "Profiling slows the steps: not saved")
    args = parser.parse_args(argv)
    if args.profile:
        os.environ[PROFILE_ENV] = "1"
    profile = args.records_per_resident_profile
    work = args.work or REPO / "var" / "bench" / ("build-" + figures_key(args.residents, "sqlite", profile))
    work.mkdir(parents=True, exist_ok=True)
    print(f"build benchmark: {args.residents:,} residents, seed {args.seed}, record history {profile}, "
          f"work folder {work}", flush=True)
    print(f"machine: {json.dumps(machine_summary())}", flush=True)
    try:
        figures = measure(args.residents, args.seed, work, incremental=not args.no_incremental, db_url=args.db_url,
                          say=lambda s: print(s, flush=True), sources=args.source, in_process=args.in_process,
                          resume=args.resume, history=profile, change_scale=args.change_rate_scale,
                          stop_before_merge=args.stop_before_merge)
    except StoppedBeforeMerge:
        print(f"stopped before the full build's merge: copy {work} (and the database, if not SQLite) to measure "
              "the merge again from this point; then run the same command with --resume", flush=True)
        return 0
    full = figures["full"]
    records = sum(full["council_records"].values())
    residents = max(full["council_residents"], 1)
    full["records_per_resident"] = {s: round(c / residents, 3) for s, c in full["council_records"].items()}
    print()
    print(f"records: {records:,} from {full['council_residents']:,} residents "
          f"({records / residents:.2f} per resident: {json.dumps(full['records_per_resident'])}; "
          f"{full.get('council_former_residents', 0):,} former residents' closed records included)")
    print(table(figures))
    print(f"full build: {full['seconds_measured']:.1f} s in the stages + {full['seconds_startup']:.1f} s "
          f"process start-up/imports ({len(full['steps'])} processes); peak {full['peak_rss_mb']:.0f} MB; "
          f"load average mean {full['load_average']['mean']}, max {full['load_average']['max']}")
    if "incremental" in figures:
        inc = figures["incremental"]
        print(f"incremental night: {inc['records_new']:,} new + {inc['records_changed']:,} changed records "
              f"({inc['share_of_records_changed']:.2%}); {inc['seconds_measured']:.2f} s in the stages + "
              f"{inc['seconds_startup']:.1f} s start-up; {figures['speedup_measured']}x faster than the full "
              f"build ({figures['speedup_with_startup']}x counting start-up); load mean {inc['load_average']['mean']}")
    q = full["quality"]
    print(f"quality after the full build: precision {q['precision']:.4f} recall {q['recall']:.4f} F1 {q['f1']:.4f} "
          f"twins merged {q['twins_merged']} of {q['twin_pairs']}")
    missing = sorted({m for s in full["steps"] for m in s["not_instrumented"]})
    if missing:
        print(f"not instrumented (time in 'other'): {', '.join(missing)}")
    print(f"runs table (seconds per step, full build): "
          f"{json.dumps({k: v['seconds'] for k, v in sorted(full['runs_table'].items())})}")
    if not (args.no_save or args.source or args.in_process or args.profile):
        key = figures_key(args.residents, figures["store"], profile)
        path = save_figures("build", key, figures)
        png = plot()
        print(f"figures: {path.relative_to(REPO)}; plot: {png.relative_to(REPO) if png else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
