"""Mapping + validation rows per second on N native records (default 100,000) of each of the
synthetic council's four systems (tiled from a small council, keys made unique), and what GX
Data Docs add per batch.

    .venv/bin/python benchmarks/quality_bench.py [N]
    .venv/bin/python benchmarks/quality_bench.py --import-only [ROUNDS]

Run on purpose, not in the test suite. Prints one line per system, then the Data Docs cost.
``--import-only``: what a fresh night step pays to import GX, the plain ``import
great_expectations`` against ``joinedup.quality.gx_loader`` (Altair and SciPy's statistics
lazy), alternating in fresh processes, CPU and wall seconds with the load average beside.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 100_000
KEYS = {"housing": ("TenantRef", lambda i: f"HT{i:06d}"), "revenues": ("customer_ref", lambda i: f"5{i:08d}"),
        "socialcare": ("ClientId", lambda i: f"SC{i:07d}"), "hr": ("EMPNO", lambda i: f"E{i:07d}")}


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="joinedup-quality-bench-"))
    os.environ["JOINEDUP_HOME"] = str(Path(__file__).resolve().parents[1])
    os.environ["JOINEDUP_VAR"] = str(home / "var")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    from joinedup.adapters.config import adapters_dir, load_source
    from joinedup.mapping.engine import map_records
    from joinedup.mapping.spec import load_mapping
    from joinedup.quality import data_docs
    from joinedup.quality.gate import source_suite, validate_batch
    from joinedup.simulators.council import build_council

    council = build_council(4000, 1)
    t0 = time.perf_counter()
    validate_batch(map_records(council.records["hr"][:10], load_mapping(load_source(adapters_dir() / "hr.yaml").mapping_path()), "hr"), "hr")
    print(f"GX import and first validation (once per process): {time.perf_counter() - t0:.1f} s")
    print(f"{'system':<11} {'rows':>8} {'map s':>7} {'gate s':>7} {'rows/s':>9} {'quarantined':>11}")
    last = None
    for system, (key, make_key) in KEYS.items():
        config = load_source(adapters_dir() / f"{system}.yaml")
        spec = load_mapping(config.mapping_path())
        base = council.records[system]
        records = []
        for i in range(N):
            record = dict(base[i % len(base)])
            record[key] = make_key(i + 1)
            records.append(record)
        t0 = time.perf_counter()
        canonical = map_records(records, spec, system)
        t1 = time.perf_counter()
        gate = validate_batch(canonical, system, suite=source_suite(config), run_name="bench")
        t2 = time.perf_counter()
        print(f"{system:<11} {N:>8,} {t1 - t0:>7.1f} {t2 - t1:>7.1f} {N / (t2 - t0):>9,.0f} {len(gate.failed_positions):>11,}")
        last = (gate, system)
    gate, system = last
    costs = []
    for night in range(5):
        t0 = time.perf_counter()
        data_docs.publish(gate.validation, system, f"bench-{night}")
        costs.append(time.perf_counter() - t0)
    print(f"GX Data Docs per batch (page + suite + index, {len(costs)} batches): first {costs[0]:.2f} s, "
          f"then {sum(costs[1:]) / (len(costs) - 1):.2f} s each")


def import_probe(how: str) -> None:
    """In a fresh process: import GX one way; print CPU and wall seconds as JSON."""
    import json

    import joinedup.pipeline  # noqa: F401 - what a night step has imported before the gate

    cpu, wall = time.process_time(), time.perf_counter()
    if how == "loader":
        from joinedup.quality.gx_loader import great_expectations

        great_expectations()
    else:
        import great_expectations  # noqa: F401
    print(json.dumps({"how": how, "cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}))


def import_only(rounds: int) -> None:
    import json
    import statistics
    import subprocess

    figures: dict[str, list[dict[str, float]]] = {"plain": [], "loader": []}
    loads = []
    for _ in range(rounds):
        for how in figures:
            done = subprocess.run([sys.executable, __file__, "--import-probe", how], capture_output=True,
                                  text=True, check=True)
            figures[how].append(json.loads(done.stdout.strip().splitlines()[-1]))
            loads.append(os.getloadavg()[0])
    for how, runs in figures.items():
        print(f"GX import, {how:>6}: median CPU {statistics.median(r['cpu'] for r in runs):.2f} s, "
              f"median wall {statistics.median(r['wall'] for r in runs):.2f} s ({rounds} fresh processes)")
    print(f"load average during the runs: {min(loads):.1f}-{max(loads):.1f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--import-probe"]:
        import_probe(sys.argv[2])
    elif sys.argv[1:2] == ["--import-only"]:
        import_only(int(sys.argv[2]) if len(sys.argv) > 2 else 5)
    else:
        main()
