"""Smoke test of the build benchmark's harness: a 300-resident council, two sources, every
step in this process — the figures must be complete and plausible (never timed)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from benchmarks.support import STAGES, StageClock, load_figures, save_figures


def test_stage_clock_charges_time_exclusively_and_memory_to_the_stage_that_used_it() -> None:
    clock = StageClock(interval=0.005).start_sampling()
    started = time.perf_counter()
    with clock.stage("outer"):
        with clock.stage("big"):
            ballast = bytearray(300 * 2**20)  # touched pages: 300 MB of RSS
            ballast[:: 4096] = b"x" * len(ballast[:: 4096])
            # held while the sampler looks (the kernel's high-water mark alone cannot show it
            # when this worker peaked higher earlier in the run)
            time.sleep(20 * clock.interval)
            del ballast
        with clock.stage("small"):
            sum(range(1000))
    wall = time.perf_counter() - started
    clock.stop_sampling()
    figs = clock.as_dict()
    assert {k: v["calls"] for k, v in figs.items()} == {"outer": 1, "big": 1, "small": 1}
    # exclusive: the three add up to (at most) the wall time of the block, never twice it
    assert sum(v["seconds"] for v in figs.values()) <= wall + 1e-3
    assert figs["big"]["peak_rss_mb"] >= figs["small"]["peak_rss_mb"] + 200


def test_stage_clock_wrap_reports_a_missing_call_instead_of_failing() -> None:
    class Thing:
        @staticmethod
        def work(x: int) -> int:
            return x + 1

    clock = StageClock()
    assert clock.wrap(Thing, "work", "map") is True
    assert clock.wrap(Thing, "gone", "map") is False
    assert Thing.work(1) == 2
    assert clock.figures["map"].calls == 1


def _charged_while_instrumented(calls: list[tuple[object, str]], step: str, run) -> dict:  # noqa: ANN001
    """Instrument the pipeline, check every call in ``calls`` is wrapped, ``run()`` inside the
    step's default stage, restore, check the originals are back; the clock's figures."""
    from benchmarks import build_bench

    originals = [getattr(owner, name) for owner, name in calls]
    clock = StageClock()
    missing, restore = build_bench.instrument(clock)
    try:
        assert missing == []
        assert all(getattr(owner, name) is not original for (owner, name), original in zip(calls, originals))
        with clock.stage(build_bench.STEP_DEFAULT[step]):
            run()
    finally:
        restore()
    assert all(getattr(owner, name) is original for (owner, name), original in zip(calls, originals))
    return clock.figures


def test_the_gate_reports_are_charged_to_validate() -> None:
    """The batch's Data Docs page, the data-quality page and a refused batch's quarantine rows
    are the quality gate's work: charged to ``validate``, not to the check step's default
    (``map``)."""
    import joinedup.quality.data_docs as data_docs
    import joinedup.quality.pages as quality_pages
    import joinedup.quality.quarantine as quarantine

    figures = _charged_while_instrumented(
        [(data_docs, "publish_quietly"), (quality_pages, "write_quality_pages"), (quarantine, "record_failures")],
        "check", lambda: data_docs.publish_quietly(None, "hr", "night-1"))  # nothing to publish: returns at once
    assert figures["validate"].calls == 1 and "map" in figures and figures["map"].calls == 1


def test_a_nights_reads_of_the_stored_index_are_charged_to_match() -> None:
    """On a night the merge finds its candidates by the stored block keys and reads their
    persons, features and term frequencies: matching work, charged to ``match`` rather than
    to the merge's remainder (``other``)."""
    import joinedup.mci.features as stored
    import joinedup.mci.match as match

    figures = _charged_while_instrumented(
        [(stored, "candidates"), (stored, "load_features"), (stored, "term_frequencies"),
         (match, "_masters_of"), (match, "_members_of")],
        "merge", lambda: match._masters_of(None, set()))  # no ids: bulk.select_in never touches the session
    assert figures["match"].calls == 1


def test_figures_file_keeps_one_entry_per_key(tmp_path: Path) -> None:
    save_figures("build", "300", {"residents": 300}, folder=tmp_path)
    save_figures("build", "300", {"residents": 301}, folder=tmp_path)
    save_figures("build", "1000", {"residents": 1000}, folder=tmp_path)
    data = load_figures("build", folder=tmp_path)
    assert sorted(data) == ["1000", "300"] and data["300"]["residents"] == 301


def test_a_small_build_and_next_night_give_complete_plausible_figures(project: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import build_bench

    for key in ("JOINEDUP_HOME", "JOINEDUP_VAR", "JOINEDUP_DB_URL"):
        monkeypatch.setenv(key, "")  # restored after the test: measure() points them at its own project
    work = tmp_path / "bench"
    figures = build_bench.measure(300, 11, work, sources=["hr", "revenues"], in_process=True, say=lambda s: None)

    full, inc = figures["full"], figures["incremental"]
    for night in (full, inc):
        assert set(STAGES) <= set(night["stages"])
        assert all(s["seconds"] >= 0 and 50 < s["peak_rss_mb"] < 8000
                   for name, s in night["stages"].items() if s["seconds"] > 0)
        assert [(s["step"], s["source"]) for s in night["steps"]] == [
            ("land", "hr"), ("check", "hr"), ("stage", "hr"),
            ("land", "revenues"), ("check", "revenues"), ("stage", "revenues"), ("merge", "-")]
        for step in night["steps"]:
            assert step["not_instrumented"] == []
            assert step["load_average"]["max"] >= step["load_average"]["mean"] >= 0
        # the night's load is its steps' (kept with each step, so a resumed night still has it)
        assert night["load_average"]["max"] == max(s["load_average"]["max"] for s in night["steps"])
        # the exclusive stage times account for the steps' time (within the clock's overhead)
        in_steps = sum(s["seconds_in_step"] for s in night["steps"])
        assert night["seconds_measured"] == pytest.approx(in_steps, rel=0.05, abs=0.2)
        assert {r: v["status"] for r, v in night["runs_table"].items()} == {
            **{f"{k}:{s}": "ok" for k in ("land", "check", "stage") for s in ("hr", "revenues")}, "merge": "ok"}

    # every named stage of the full build did some work
    assert all(full["stages"][name]["seconds"] > 0 for name in STAGES if name != "other"), full["stages"]
    staged = {s["source"]: s["outcome"]["new"] for s in full["steps"] if s["step"] == "stage"}
    assert staged["revenues"] > 100 and staged["hr"] > 0
    assert full["quality"]["precision"] > 0.9 and full["quality"]["recall"] > 0.5

    # the next night touches a few records, far fewer than the full build loaded
    touched = inc["records_new"] + inc["records_changed"]
    assert 0 < touched < sum(staged.values()) / 5
    assert 0 < inc["share_of_records_changed"] < 0.2
    assert figures["speedup_measured"] > 0

    # the canonical CSVs for the side-by-side comparison, with the truth beside them
    canonical = work / "canonical"
    assert {p.name for p in canonical.iterdir()} == {"hr.csv", "revenues.csv", "truth.csv", "twins.csv"}
    assert figures["canonical_records"] == staged
    assert len((canonical / "revenues.csv").read_text(encoding="utf-8").splitlines()) == staged["revenues"] + 1
    assert "Smith" not in build_bench.table(figures)  # the printed table holds figures only


def test_stop_before_merge_leaves_the_records_staged_and_unmatched(project: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import func, select

    from benchmarks import build_bench
    from joinedup.mci.store import Person, SourceRecord, session_factory

    for key in ("JOINEDUP_HOME", "JOINEDUP_VAR", "JOINEDUP_DB_URL"):
        monkeypatch.setenv(key, "")
    with pytest.raises(build_bench.StoppedBeforeMerge):
        build_bench.measure(120, 11, tmp_path / "bench", sources=["hr"], in_process=True, say=lambda s: None,
                            stop_before_merge=True)
    with session_factory()() as session:
        statuses = dict(session.execute(select(SourceRecord.match_status, func.count())
                                        .group_by(SourceRecord.match_status)).all())
        persons = session.scalar(select(func.count()).select_from(Person))
    assert set(statuses) == {"pending"} and statuses["pending"] > 0 and persons == 0


def test_the_plot_is_drawn_from_the_recorded_figures(tmp_path: Path) -> None:
    from benchmarks import build_bench

    stages = {name: {"seconds": 1.0 + i, "peak_rss_mb": 100.0 + i} for i, name in enumerate(STAGES)}
    for n in (1000, 10000):
        save_figures("build", str(n), {"residents": n, "store": "sqlite",
                                       "full": {"stages": stages}, "incremental": {"stages": stages}},
                     folder=tmp_path / "benchmarks")
    out = build_bench.plot(tmp_path / "benchmarks", tmp_path / "build_scaling.png")
    assert out is not None and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_builds_with_record_history_are_saved_apart_and_plotted_as_points(tmp_path: Path) -> None:
    from benchmarks import build_bench

    assert build_bench.figures_key(10000, "sqlite", "none") == "10000"
    assert build_bench.figures_key(10000, "sqlite", "full") == "10000-full"
    assert build_bench.figures_key(10000, "postgresql", "full") == "10000-postgresql-full"
    stages = {name: {"seconds": 1.0 + i, "peak_rss_mb": 100.0 + i} for i, name in enumerate(STAGES)}
    folder = tmp_path / "benchmarks"
    save_figures("build", "10000", {"residents": 10000, "store": "sqlite", "full": {"stages": stages}},
                 folder=folder)
    save_figures("build", "10000-full", {"residents": 10000, "store": "sqlite", "records_per_resident_profile": "full",
                                         "full": {"stages": stages}, "incremental": {"stages": stages}},
                 folder=folder)
    assert sorted(load_figures("build", folder)) == ["10000", "10000-full"]
    plain = build_bench.plot(folder, tmp_path / "with_history.png")
    assert plain is not None and plain.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    only_history = tmp_path / "only"
    save_figures("build", "1000-full", {"residents": 1000, "store": "sqlite", "records_per_resident_profile": "full",
                                        "full": {"stages": stages}}, folder=only_history)
    assert build_bench.plot(only_history, tmp_path / "only.png") is not None


def test_the_record_history_flag_is_checked() -> None:
    from benchmarks import build_bench

    with pytest.raises(SystemExit):
        build_bench.main(["--records-per-resident-profile", "everything", "--no-save"])
