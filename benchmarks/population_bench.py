"""Benchmark: write a synthetic council of N residents with ``write_council`` (streaming).

Prints wall time, peak memory (ru_maxrss) and the counts written. Run on purpose:

    .venv/bin/python benchmarks/population_bench.py            # 1,000,000 residents (slow)
    .venv/bin/python benchmarks/population_bench.py 100000     # a quicker check
    .venv/bin/python benchmarks/population_bench.py 100000 --night 1 --keep out/

Peak memory is the process's maximum resident set size, so it includes the interpreter and
imports (about 60-80 MB); the point is that it does not grow with N.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from joinedup.simulators import NoiseConfig, write_council


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--night", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write here instead of a temporary folder")
    args = parser.parse_args(argv)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory(prefix="joinedup-council-") as tmp:
        out = args.keep or Path(tmp)
        start = time.perf_counter()
        manifest = write_council(out, args.n, args.seed, NoiseConfig(), args.night)
        wall = time.perf_counter() - start
        size = sum(f.stat().st_size for f in Path(out).iterdir())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    records = sum(manifest["records"].values())
    print(f"residents      {manifest['residents']:,} (n={args.n:,}, seed={args.seed}, "
          f"night={args.night})")
    print(f"records        {records:,}  " + "  ".join(
        f"{s} {c:,}" for s, c in manifest["records"].items()))
    print(f"twin pairs     {manifest['twin_pairs']:,}")
    print(f"wall time      {wall:,.1f} s  ({manifest['residents'] / wall:,.0f} residents/s)")
    print(f"peak memory    {peak / 1024:,.0f} MiB (ru_maxrss; {rss_before / 1024:,.0f} MiB "
          f"after imports)")
    print(f"files written  {size / 2**20:,.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
