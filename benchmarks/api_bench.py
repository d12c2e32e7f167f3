"""Latency of the lookup API: p50/p95/p99 of search and get, 32 concurrent clients on loopback.

What is measured is the API (auth, audit, search-key retrieval, scoring, the person view),
NOT the matcher. So the index is built from the synthetic council's ground truth, in bulk:

1. the population is streamed from ``joinedup.simulators`` (``iter_council``) and each
   system's native records are mapped to canonical records with the production mappings;
2. each true person becomes one master ID (``JU%08d``) with its golden record from the
   production survivorship rules, its source records linked to it (social care as special
   category), and its search keys (the matcher's features through ``standardise``, the same
   keys ``refresh_search_keys`` writes);
3. the rows are written with bulk inserts straight into a SQLite MCI made by the real schema.

``--build pipeline`` instead stages and merges with the real pipeline (small sizes only: the
matcher at a million records is issue 6's benchmark). The API is served by uvicorn in a
subprocess (``--workers`` processes, as ``joinedup api serve --workers N``) and driven by
``--clients`` threads with keep-alive httpx clients. Queries are noisy versions of real
records (nickname, typo, transposed date, postcode spacing: see
tests/component/test_api_search_quality.py); gets are random active master IDs. The search
uses the default level weights (no model is trained in a truth build).

    .venv/bin/python -m benchmarks.api_bench --records 20000 --requests 1000
    .venv/bin/python -m benchmarks api -- --records 1000000 --requests 4000 --workers 2
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RECORDS_PER_RESIDENT = 0.95  # a quarter of residents are in no system; some have two records
CHUNK_RECORDS = 20_000
QUERY_POOL = 5_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))] * 1000  # noqa: E731
    return {"p50_ms": round(pick(0.50), 1), "p95_ms": round(pick(0.95), 1), "p99_ms": round(pick(0.99), 1)}


def _project(home: Path) -> None:
    for name in ("adapters", "mappings", "schemas", "dags"):
        shutil.copytree(REPO / name, home / name)
    (home / "var").mkdir()
    os.environ.update(JOINEDUP_HOME=str(home), JOINEDUP_VAR=str(home / "var"),
                      JOINEDUP_DB_URL=f"sqlite:///{home / 'var' / 'mci.sqlite'}")


# --- the truth build ----------------------------------------------------------------------------

def _persons(residents: int, seed: int, max_records: int | None) -> Iterator[list[tuple[str, dict]]]:
    """Each true person's native records as [(system, record)], streamed."""
    from joinedup.simulators.council import iter_council

    current: list[tuple[str, dict]] = []
    current_id, total = None, 0
    for kind, system, payload in iter_council(residents, seed):
        if kind != "record":
            continue
        record, person_id = payload
        if person_id != current_id and current:
            yield current
            total += len(current)
            if max_records is not None and total >= max_records:
                return
            current = []
        current_id = person_id
        current.append((system, record))
    if current:
        yield current


def _chunks(persons: Iterator[list[tuple[str, dict]]]) -> Iterator[list[list[tuple[str, dict]]]]:
    chunk, n = [], 0
    for person in persons:
        chunk.append(person)
        n += len(person)
        if n >= CHUNK_RECORDS:
            yield chunk
            chunk, n = [], 0
    if chunk:
        yield chunk


def build_from_truth(residents: int, seed: int, max_records: int | None) -> tuple[list[dict], dict]:
    """Write the MCI from the ground truth; (query pool of canonical records, figures)."""
    import pandas as pd
    from sqlalchemy import insert

    from joinedup.api.models import PersonSearchKey
    from joinedup.api.search_keys import feature_keys
    from joinedup.mapping.engine import map_records
    from joinedup.mapping.spec import load_mapping
    from joinedup.mci.golden import golden_record, survivorship
    from joinedup.mci.match import master_id_for
    from joinedup.mci.staging import content_hash
    from joinedup.mci.standardise import standardise
    from joinedup.mci.store import Person, PersonEvent, SourceRecord, get_engine, session_factory, utcnow

    get_engine()  # the real schema
    specs = {s: load_mapping(REPO / "mappings" / f"{s}.yaml") for s in ("housing", "revenues", "socialcare", "hr")}
    rules = survivorship()
    rng = random.Random(seed)
    pool: list[dict] = []
    seq = record_id = keys_written = 0
    seen = 0
    now = utcnow()
    started = time.perf_counter()
    sessions = session_factory()
    for chunk in _chunks(_persons(residents, seed, max_records)):
        by_system: dict[str, list[dict]] = {}
        owner: dict[str, list[int]] = {}
        for p, person in enumerate(chunk):
            for system, native in person:
                by_system.setdefault(system, []).append(native)
                owner.setdefault(system, []).append(p)
        canon: list[list[dict]] = [[] for _ in chunk]
        for system, natives in by_system.items():
            frame = map_records(natives, specs[system], system).drop(columns=["mapping_issues"])
            rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
            for p, row in zip(owner[system], rows):
                canon[p].append(row)
        flat = [(p, r) for p, records in enumerate(canon) for r in records]
        feats = standardise(pd.DataFrame([{**r, "record_id": i} for i, (_, r) in enumerate(flat)])).to_dict("records")
        persons, sources, events, keys = [], [], [], []
        open_keys: list[set[str]] = [set() for _ in chunk]
        special_keys: list[set[str]] = [set() for _ in chunk]
        for (p, r), f in zip(flat, feats):
            (special_keys if r["source_system"] == "socialcare" else open_keys)[p].update(feature_keys(f))
        for p, records in enumerate(canon):
            seq += 1
            master_id = master_id_for(seq)
            golden, golden_sources = golden_record(records, rules)
            persons.append({"master_id": master_id, "seq": seq, "status": "active", "golden": golden,
                            "golden_sources": golden_sources, "created_run_id": "bench-truth",
                            "created_at": now, "updated_at": now})
            events.append({"master_id": master_id, "kind": "created", "run_id": "bench-truth", "actor": "bench",
                           "reason": "built from the synthetic ground truth", "at": now})
            for r in records:
                record_id += 1
                sources.append({"id": record_id, "source_system": r["source_system"], "source_key": r["source_key"],
                                "content_hash": content_hash(r), "record": r,
                                "special_category": r["source_system"] == "socialcare", "match_status": "matched",
                                "master_id": master_id, "link_rule": "bench:truth", "first_run_id": "bench-truth",
                                "last_run_id": "bench-truth", "staged_at": now})
                seen += 1
                if r.get("family_name") and r.get("date_of_birth"):
                    if len(pool) < QUERY_POOL:
                        pool.append(r)
                    elif rng.random() < QUERY_POOL / seen:
                        pool[rng.randrange(QUERY_POOL)] = r
            visible = open_keys[p]
            keys += [{"master_id": master_id, "key": k, "restricted": False} for k in visible]
            keys += [{"master_id": master_id, "key": k, "restricted": True} for k in special_keys[p] - visible]
        with sessions() as session:
            session.execute(insert(Person), persons)
            session.execute(insert(SourceRecord), sources)
            session.execute(insert(PersonEvent), events)
            session.execute(insert(PersonSearchKey), keys)
            session.commit()
        keys_written += len(keys)
        print(f"  {record_id:>9,} records, {seq:>9,} persons, {keys_written:>10,} keys "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    figures = {"source_records": record_id, "persons": seq, "search_keys": keys_written,
               "build_seconds": round(time.perf_counter() - started, 1)}
    return pool, figures


def build_with_pipeline(residents: int, seed: int) -> tuple[list[dict], dict]:
    """Stage and merge with the real pipeline (small councils: the matcher is then timed too)."""
    from benchmarks.mci_bench import canonical_frames
    from joinedup.api.search_keys import build_search_keys
    from joinedup.mci.staging import stage_records
    from joinedup.mci.store import session_factory
    from joinedup.pipeline import merge
    from joinedup.simulators.council import build_council

    started = time.perf_counter()
    frames, _ = canonical_frames(build_council(residents, seed=seed))
    records = []
    with session_factory()() as session:
        for system, frame in frames.items():
            rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
            stage_records(session, rows, "bench", special_category=(system == "socialcare"))
            records += rows
        session.commit()
    merge("bench")
    with session_factory()() as session:
        n = build_search_keys(session)
        session.commit()
    pool = [r for r in records if r.get("family_name") and r.get("date_of_birth")]
    return pool, {"source_records": len(records), "search_keys": n,
                  "build_seconds": round(time.perf_counter() - started, 1)}


def key_and_masters(sample: int, seed: int) -> tuple[str, list[str], int]:
    """A token with every scope, a sample of active master IDs, and how many there are."""
    from sqlalchemy import func, select

    from joinedup.api.keys import create_key
    from joinedup.mci.store import Person, session_factory

    with session_factory()() as session:
        _, token = create_key(session, ["person:read", "socialcare:read"], "bench")
        session.commit()
        total = session.scalar(select(func.count()).select_from(Person).where(Person.status == "active"))
        rng = random.Random(seed)
        seqs = sorted(rng.sample(range(1, total + 1), min(sample, total)))
        masters = list(session.scalars(select(Person.master_id).where(Person.status == "active",
                                                                      Person.seq.in_(seqs))))
    return token, masters, total


# --- driving ----------------------------------------------------------------------------------

def drive(base: str, token: str, jobs: list[tuple[str, object]], clients: int) -> tuple[dict[str, list[float]], list[int]]:
    import httpx

    timings: dict[str, list[float]] = {"search": [], "get": []}
    errors: list[int] = []
    lock = threading.Lock()
    queue = list(jobs)

    def worker() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
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
                    if r.status_code == 200:
                        timings[kind].append(elapsed)
                    else:
                        errors.append(r.status_code)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings, errors


def serve(port: int, workers: int) -> subprocess.Popen:
    code = ("from joinedup.api.serve import serve; "
            f"serve('127.0.0.1', {port}, workers={workers}, rate=1e6, burst=10**6)")
    return subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy(), cwd=str(REPO))


def wait_until_up(base: str, server: subprocess.Popen) -> None:
    import httpx

    for _ in range(1200):
        if server.poll() is not None:
            raise RuntimeError(f"the API server exited with status {server.returncode} before answering")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the API server did not answer /api/v1/health within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--records", type=int, help="source records in the index (truth build)")
    size.add_argument("--residents", type=int, help="residents of the synthetic council")
    parser.add_argument("--build", choices=("truth", "pipeline"), default="truth")
    parser.add_argument("--requests", type=int, default=2_000, help="half search, half get")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    if args.records is None and args.residents is None:
        args.records = 20_000
    residents = args.residents or int(args.records / RECORDS_PER_RESIDENT) + 100
    from tests.component.test_api_search_quality import noisy_query

    with tempfile.TemporaryDirectory() as tmp:
        _project(Path(tmp))
        if args.build == "truth":
            pool, figures = build_from_truth(residents, args.seed, args.records)
        else:
            pool, figures = build_with_pipeline(residents, args.seed)
        token, masters, persons = key_and_masters(max(1000, args.requests), args.seed)
        db_bytes = (Path(tmp) / "var" / "mci.sqlite").stat().st_size
        rng = random.Random(args.seed)
        jobs: list[tuple[str, object]] = [
            ("search", noisy_query(rng.choice(pool), rng)) if i % 2 else ("get", rng.choice(masters))
            for i in range(args.requests)]
        rng.shuffle(jobs)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = serve(port, args.workers)
        try:
            wait_until_up(base, server)
            drive(base, token, jobs[: 4 * args.clients], args.clients)  # warm-up: connections, caches
            t0 = time.perf_counter()
            timings, errors = drive(base, token, jobs, args.clients)
            wall = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(timeout=30)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"index ({args.build} build): {figures['source_records']:,} source records, {persons:,} persons, "
          f"{figures['search_keys']:,} search keys; SQLite {db_bytes / 2**20:.0f} MiB; "
          f"built in {figures['build_seconds']} s (builder peak RSS {peak:.0f} MiB)")
    print(f"load: {args.clients} concurrent clients, {args.workers} uvicorn worker(s), {os.cpu_count()} cores "
          f"shared with the clients; {len(jobs)} requests; every read audited")
    print(f"throughput: {sum(len(v) for v in timings.values()) / wall:.0f} requests/s; non-200 answers: {len(errors)}")
    for kind, values in timings.items():
        print(f"{kind:6s} n={len(values)} {_percentiles(values) if values else 'no answers'}")
    if errors:
        sys.exit(f"{len(errors)} requests failed (first statuses {errors[:5]})")


if __name__ == "__main__":
    main()
