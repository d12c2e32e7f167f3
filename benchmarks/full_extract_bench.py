"""What reusing a full extract's mapped rows saves a night's check step (``extract: full``,
``joinedup.mapping.reuse``), side by side with mapping the batch whole.

For each system that sends a full extract (HR and social care in the synthetic council), the
council's night 0 and night 1 records are written as CSV drop files (the records as the
system sends them; the CSV adapter stands in for the native one, which does not change what
the check step does) into a project of their own. Night 0 is landed and checked with
``extract: full`` (so its mapped rows are kept), night 1 is landed; then night 1's check is
run ``--trials`` times each way, alternating which goes first, each in a fresh process with
the pipeline and GX imported before the clock starts (the import is the same both ways):
``full`` (rows of records night 0 held read back) and ``changes`` (every record mapped). Both
must leave the same hand-over rows and failures (checked). The figures are the check step's
seconds, its process's peak memory, its rows and how many were reused.

Run:  .venv/bin/python benchmarks/full_extract_bench.py --residents 100000 --trials 3
      .venv/bin/python -m benchmarks full_extract -- --residents 1000000
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.support import machine_summary, make_project, project_env, run_child  # noqa: E402

SYSTEMS = ("hr", "socialcare")
MODES = ("full", "changes")
NIGHT_RUNS = ("night-0", "night-1")


def council_records(residents: int, seed: int, night: int, history: str) -> dict[str, list[dict[str, Any]]]:
    """The records of the full-extract systems on ``night``, as the systems send them."""
    from joinedup.simulators.council import iter_council
    from joinedup.simulators.history import NO_HISTORY, RecordHistory

    kept: dict[str, list[dict[str, Any]]] = {s: [] for s in SYSTEMS}
    for kind, system, payload in iter_council(residents, seed, night=night,
                                              history=RecordHistory.named(history) if history != "none" else NO_HISTORY):
        if kind == "record" and system in kept:
            kept[system].append(payload[0])
    return kept


def write_drop(folder: Path, system: str, night: int, records: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for r in records for k in r))
    with open(folder / f"{system}_{night:04d}.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(records)


def configure(home: Path, system: str, extract: str) -> None:
    """The system as a CSV drop source of its own mapping, with ``extract``; the only source."""
    for other in (home / "adapters").glob("*.yaml"):
        other.unlink()
    (home / "adapters" / f"{system}.yaml").write_text("\n".join([
        f"name: {system}", "kind: csv", f"mapping: {system}.yaml", f"extract: {extract}",
        "quality: {max_failure_rate: 0.5}",
        f"options: {{drop_folder: drops/{system}, file_pattern: '{system}_*.csv'}}"]) + "\n", encoding="utf-8")


def child(action: str, system: str, run_id: str, result: Path) -> None:
    """Inside a fresh process: land or check the source's batch; the seconds of a check (the
    pipeline and GX imported before the clock starts) and its figures."""
    from joinedup import pipeline
    from joinedup.quality.gx_loader import great_expectations

    if action == "land":
        pipeline.land(system, run_id)
        result.write_text("{}", encoding="utf-8")
        return
    great_expectations()
    started = time.perf_counter()
    figures = pipeline.check(system, run_id)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's high-water mark (KiB on Linux)
    result.write_text(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "rows_in": figures["rows_in"],
                                  "rows_reused": figures["rows_reused"]}), encoding="utf-8")


def _night_one_again(home: Path, system: str) -> Path:
    """Night one's batch back to landed, its check's files gone; its checked folder."""
    import sqlite3

    con = sqlite3.connect(home / "var" / "mci.sqlite")
    try:
        con.execute("UPDATE landing_batches SET status = 'landed', status_reason = NULL WHERE source_system = ? "
                    "AND run_id = ?", (system, NIGHT_RUNS[1]))
        con.execute("UPDATE quarantine SET status = 'superseded' WHERE run_id = ?", (NIGHT_RUNS[1],))
        con.commit()
        (manifest,) = con.execute("SELECT manifest_path FROM landing_batches WHERE source_system = ? AND run_id = ?",
                                  (system, NIGHT_RUNS[1])).fetchone()
    finally:
        con.close()
    folder = Path(manifest).parent / "checked"
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def _outputs(folder: Path) -> str:
    """A digest of what the check hands over: the passing rows and the failures."""
    import pandas as pd

    digest = hashlib.blake2b(digest_size=16)
    digest.update(pd.read_parquet(folder / "passed.parquet").to_csv(index=False).encode())
    digest.update((folder / "failures.json").read_bytes())
    return digest.hexdigest()


def measure(residents: int, seed: int, history: str, trials: int, work: Path, say=print) -> dict[str, Any]:
    nights = [council_records(residents, seed, night, history) for night in (0, 1)]
    results: dict[str, Any] = {}
    for system in SYSTEMS:
        home = make_project(work / system)
        env = project_env(home)

        def step(action: str, run_id: str) -> dict[str, Any]:
            return run_child([sys.executable, str(Path(__file__).resolve()), "--child", action, system, run_id,
                              str(work / "result.json")], env, work / "result.json")

        configure(home, system, "full")
        for night, records in enumerate(nights):  # night 0 landed and checked (its rows kept), night 1 landed
            write_drop(home / "var" / "drops" / system, system, night, records[system])
            step("land", NIGHT_RUNS[night])
            if night == 0:
                step("check", NIGHT_RUNS[0])
        seconds: dict[str, list[float]] = {m: [] for m in MODES}
        peaks: dict[str, list[float]] = {m: [] for m in MODES}
        seen: dict[str, Any] = {}
        outputs: set[str] = set()  # what every check handed over, each way and each trial: one digest if all the same
        for trial in range(trials):
            for mode in (MODES if trial % 2 == 0 else MODES[::-1]):
                configure(home, system, mode)
                folder = _night_one_again(home, system)
                got = step("check", f"check-{mode}-{trial}")
                seconds[mode].append(got["seconds"])
                peaks[mode].append(got["peak_mb"])
                seen[mode] = {"rows_in": got["rows_in"], "rows_reused": got["rows_reused"]}
                outputs.add(_outputs(folder))
                say(f"{system} trial {trial + 1} {mode:<7} check {got['seconds']:.2f} s, peak {got['peak_mb']:,.0f} MB, "
                    f"{got['rows_reused']:,} of {got['rows_in']:,} rows reused")
        results[system] = {"rows_in": seen["full"]["rows_in"], "rows_reused": seen["full"]["rows_reused"],
                           "seconds": seconds, "peak_mb": peaks, "same_outputs": len(outputs) == 1}
        shutil.rmtree(home)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--history", choices=("full", "none"), default="full",
                        help="the council's record history (full: closed records kept, as in the build benchmark's -full rows)")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--work", type=Path, help="folder for the projects (default: a temporary folder)")
    parser.add_argument("--child", nargs=4, metavar=("ACTION", "SOURCE", "RUN", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child[:3], Path(args.child[3]))
        return 0
    work = Path(tempfile.mkdtemp(prefix="full-extract-", dir=args.work))
    try:
        print(f"full-extract check: {args.residents:,} residents, seed {args.seed}, history {args.history}, "
              f"{args.trials} trials; machine {json.dumps(machine_summary())}")
        results = measure(args.residents, args.seed, args.history, args.trials, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| system | rows in night 1 | rows reused | check, reused (median s) | check, mapped whole (median s) | saved "
          "| peak MB, reused / whole | same hand-over |")
    print("|---|---|---|---|---|---|---|---|")
    for system, r in results.items():
        full, whole = statistics.median(r["seconds"]["full"]), statistics.median(r["seconds"]["changes"])
        print(f"| {system} | {r['rows_in']:,} | {r['rows_reused']:,} | {full:.2f} | {whole:.2f} | {whole - full:.2f} s | "
              f"{max(r['peak_mb']['full']):,.0f} / {max(r['peak_mb']['changes']):,.0f} | "
              f"{'yes' if r['same_outputs'] else 'NO'} |")
    return 0 if all(r["same_outputs"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
