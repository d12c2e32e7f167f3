"""Mapping + validation rows per second on N native records (default 100,000) of each of the
synthetic council's four systems (tiled from a small council, keys made unique), and what GX
Data Docs add per batch.

    .venv/bin/python benchmarks/quality_bench.py [N]

Run on purpose, not in the test suite. Prints one line per system, then the Data Docs cost.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
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


if __name__ == "__main__":
    main()
