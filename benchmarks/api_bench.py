"""Latency of the lookup API: p50/p95/p99 of search and get, 32 concurrent clients on loopback.

Builds a synthetic council (``--residents``, default 5,000: about 6,700 source records),
stages and merges it with the real pipeline into a SQLite MCI in a temporary folder, serves
the API with uvicorn in a subprocess, and drives it with 32 threads (httpx clients). Queries
are noisy versions of real records (see tests/component/test_api_search_quality.py).

    .venv/bin/python -m benchmarks.api_bench --residents 5000 --requests 2000
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))] * 1000  # noqa: E731
    return {"p50_ms": round(pick(0.50), 1), "p95_ms": round(pick(0.95), 1), "p99_ms": round(pick(0.99), 1)}


def build(home: Path, residents: int, seed: int) -> tuple[list[dict], list[str], str]:
    """(records, master ids, token) for a freshly built MCI under ``home``."""
    for name in ("adapters", "mappings", "schemas", "dags"):
        shutil.copytree(REPO / name, home / name)
    (home / "var").mkdir()
    os.environ.update(JOINEDUP_HOME=str(home), JOINEDUP_VAR=str(home / "var"),
                      JOINEDUP_DB_URL=f"sqlite:///{home / 'var' / 'mci.sqlite'}")
    from benchmarks.mci_bench import canonical_frames
    from joinedup.api.keys import create_key
    from joinedup.api.search_keys import build_search_keys
    from joinedup.mci.staging import stage_records
    from joinedup.mci.store import Base, Person, get_engine, session_factory
    from joinedup.pipeline import merge
    from joinedup.simulators.council import build_council
    from sqlalchemy import select

    frames, _ = canonical_frames(build_council(residents, seed=seed))
    records = []
    with session_factory()() as session:
        for system, frame in frames.items():
            rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
            stage_records(session, rows, "bench", special_category=(system == "socialcare"))
            records += rows
        session.commit()
    t0 = time.perf_counter()
    merge("bench")
    print(f"merged {len(records)} records in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    from joinedup.api import models  # noqa: F401

    Base.metadata.create_all(get_engine())
    with session_factory()() as session:
        t0 = time.perf_counter()
        n = build_search_keys(session)
        print(f"search keys: {n} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        _, token = create_key(session, ["person:read", "socialcare:read"], "bench")
        masters = list(session.scalars(select(Person.master_id).where(Person.status == "active")))
        session.commit()
    return records, masters, token


def drive(base: str, token: str, jobs: list[tuple[str, object]], clients: int) -> dict[str, list[float]]:
    import httpx

    timings: dict[str, list[float]] = {"search": [], "get": []}
    errors: list[int] = []
    lock = threading.Lock()
    queue = list(jobs)

    def worker() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    kind, payload = queue.pop()
                t0 = time.perf_counter()
                if kind == "search":
                    r = client.post("/api/v1/persons/search", json=payload)
                else:
                    r = client.get(f"/api/v1/persons/{payload}")
                elapsed = time.perf_counter() - t0
                with lock:
                    (timings[kind] if r.status_code == 200 else errors).append(elapsed if r.status_code == 200 else r.status_code)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(f"non-200 answers: {len(errors)} (first {errors[:5]})", file=sys.stderr)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=2_000, help="half search, half get")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.component.test_api_search_quality import noisy_query

    with tempfile.TemporaryDirectory() as tmp:
        records, masters, token = build(Path(tmp), args.residents, args.seed)
        rng = random.Random(args.seed)
        named = [r for r in records if r.get("family_name") and r.get("date_of_birth")]
        jobs: list[tuple[str, object]] = []
        for i in range(args.requests):
            if i % 2:
                jobs.append(("search", noisy_query(rng.choice(named), rng)))
            else:
                jobs.append(("get", rng.choice(masters)))
        rng.shuffle(jobs)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-c",
             "import uvicorn; from joinedup.api import create_api; "
             f"uvicorn.run(create_api(rate_per_second=1e6, burst=10**6), host='127.0.0.1', port={port}, log_level='warning')"],
            env=os.environ.copy(), cwd=str(REPO))
        try:
            import httpx

            for _ in range(200):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            drive(f"http://127.0.0.1:{port}", token, jobs[:64], args.clients)  # warm-up
            t0 = time.perf_counter()
            timings = drive(f"http://127.0.0.1:{port}", token, jobs, args.clients)
            wall = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"index: {args.residents} residents, {len(records)} source records, {len(masters)} persons; "
          f"{args.clients} clients, one uvicorn worker, SQLite")
    print(f"throughput: {sum(len(v) for v in timings.values()) / wall:.0f} requests/s")
    for kind, values in timings.items():
        print(f"{kind:6s} n={len(values)} {_percentiles(values)}")


if __name__ == "__main__":
    main()
