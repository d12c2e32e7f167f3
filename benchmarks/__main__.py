"""``make bench``: run each benchmark script and append its output, with the date, the
machine and the exact command, to docs/benchmarks.md.

    python -m benchmarks                   # every benchmark at its quick size
    python -m benchmarks population        # one of them
    python -m benchmarks population -- 1000000   # arguments after -- go to the script
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"

# name -> (script, quick arguments)
BENCHMARKS: dict[str, tuple[str, list[str]]] = {
    "population": ("population_bench.py", ["100000"]),
    "match": ("match_bench.py", []),
    "mci": ("mci_bench.py", []),
    "adapters": ("adapter_bench.py", []),
    "api": ("api_bench.py", ["--residents", "5000", "--requests", "1000"]),
    "build": ("build_bench.py", ["--residents", "10000"]),
    "peers": ("peers_bench.py", ["--canonical", "var/bench/build-10000/canonical"]),
    "thresholds": ("threshold_bench.py", ["--canonical", "var/bench/build-10000/canonical"]),
    "quality": ("quality_bench.py", []),
    "scale": ("scale_bench.py", ["--records", "100000"]),
    "index_store": ("index_store_bench.py", ["--residents", "10000"]),
    "index_nights": ("index_nights_bench.py", ["--residents", "10000"]),
    "full_extract": ("full_extract_bench.py", ["--residents", "10000"]),
    "phone_confound": ("phone_confound_bench.py", ["--canonical", "var/bench/build-10000/canonical"]),
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem = f"{mem_kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        mem = "unknown memory"
    return f"{os.cpu_count()} cores ({cpu}), {mem}, Python {platform.python_version()}, {platform.system()}"


def run(name: str, extra: list[str]) -> int:
    script, quick = BENCHMARKS[name]
    path = HERE / script
    if not path.exists():
        print(f"benchmark {name}: {script} is not there yet", file=sys.stderr)
        return 1
    args = extra or quick
    command = f"python benchmarks/{script} {' '.join(args)}".strip()
    print(f"== {command}", flush=True)
    proc = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, cwd=HERE.parent)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr[-4000:])
    with DOC.open("a", encoding="utf-8") as doc:
        doc.write(f"\n### {name} — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n")
        doc.write(f"Machine: {machine()}  \nCommand: `{command}`  \nExit status: {proc.returncode}\n\n")
        doc.write("```\n" + proc.stdout.strip() + "\n```\n")
    return proc.returncode


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    return max((run(n, extra) for n in names), default=0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
