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

A large index can be built once and measured later (the build of a million records takes
most of an hour on a loaded 2-core machine; each run appends its figures to the doc):

    .venv/bin/python -m benchmarks api -- --records 1000000 --keep /work/benchwork/api-1m-index
    .venv/bin/python -m benchmarks api -- --index /work/benchwork/api-1m-index --requests 2000
"""
from __future__ import annotations

import argparse
import json
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
from typing import Any

from sqlalchemy import text

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


def _canonical(chunk: list[list[tuple[str, dict]]], specs: dict) -> list[list[dict]]:
    """Each person's native records mapped to canonical records with the production mappings
    (one ``map_records`` call per system per chunk)."""
    from joinedup.mapping.engine import map_records

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
    return canon


def _produce(residents: int, seed: int, max_records: int | None, queue: Any) -> None:
    """The producer process: simulate the council and map it, one chunk at a time.

    Simulating and mapping cost about as much as everything after them (features, golden
    records, inserts), so they run in a process of their own and the two halves overlap."""
    try:
        from joinedup.mapping.spec import load_mapping

        specs = {s: load_mapping(REPO / "mappings" / f"{s}.yaml") for s in ("housing", "revenues", "socialcare", "hr")}
        for chunk in _chunks(_persons(residents, seed, max_records)):
            queue.put(_canonical(chunk, specs))
        queue.put(None)
    except BaseException as exc:  # the consumer must hear of it, not wait for ever
        queue.put(RuntimeError(f"the council producer failed: {type(exc).__name__}: {exc}"))
        raise


def _canonical_chunks(residents: int, seed: int, max_records: int | None) -> Iterator[list[list[dict]]]:
    """Canonical records per person, chunk by chunk, from a producer process (bounded queue:
    at most a few chunks in memory)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue(maxsize=4)
    producer = ctx.Process(target=_produce, args=(residents, seed, max_records, queue), daemon=True)
    producer.start()
    try:
        while True:
            item = queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if producer.is_alive():
            producer.terminate()
        producer.join(timeout=30)


def _bulk_session_pragmas(session: Any) -> None:
    """A benchmark's scratch SQLite database: no fsync per commit and a large page cache while
    bulk loading (the served database is the same file, with the same schema and indexes)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA synchronous=OFF"))
        session.execute(text("PRAGMA cache_size=-400000"))


def build_from_truth(residents: int, seed: int, max_records: int | None) -> tuple[list[dict], dict]:
    """Write the MCI from the ground truth; (query pool of canonical records, figures).

    Persons, source records, events and search keys go in with one Core executemany per
    table per chunk (no ORM objects); the search keys come from ``key_rows``, the function
    ``refresh_search_keys`` writes them with, so the served index has the night's shape."""
    from joinedup.api.models import PersonSearchKey
    from joinedup.api.search_keys import key_rows
    from joinedup.mci.golden import golden_record, survivorship
    from joinedup.mci.match import master_id_for
    from joinedup.mci.staging import content_hash
    from joinedup.mci.store import Person, PersonEvent, SourceRecord, get_engine, session_factory, utcnow

    started = time.perf_counter()
    chunks = _canonical_chunks(residents, seed, max_records)  # the producer forks before any DB connection
    first = next(chunks, None)
    get_engine()  # the real schema (Alembic head)
    rules = survivorship()
    rng = random.Random(seed)
    pool: list[dict] = []
    seq = record_id = keys_written = 0
    seen = 0
    now = utcnow()
    sessions = session_factory()
    tables = [(Person.__table__, "persons"), (SourceRecord.__table__, "sources"),
              (PersonEvent.__table__, "events"), (PersonSearchKey.__table__, "keys")]
    with sessions() as session:
        _bulk_session_pragmas(session)
        for canon in _prepend(first, chunks) if first is not None else []:
            rows: dict[str, list[dict]] = {"persons": [], "sources": [], "events": [], "keys": []}
            linked: list[tuple[int, str, bool, dict]] = []  # what refresh_search_keys reads
            for records in canon:
                seq += 1
                master_id = master_id_for(seq)
                golden, golden_sources = golden_record(records, rules)
                rows["persons"].append({"master_id": master_id, "seq": seq, "status": "active", "merged_into": None,
                                        "golden": golden, "golden_sources": golden_sources,
                                        "created_run_id": "bench-truth", "created_at": now, "updated_at": now})
                rows["events"].append({"master_id": master_id, "kind": "created", "other_master_id": None,
                                       "source_record_id": None, "run_id": "bench-truth", "actor": "bench",
                                       "reason": "built from the synthetic ground truth", "evidence": None, "at": now})
                for r in records:
                    record_id += 1
                    rows["sources"].append({
                        "id": record_id, "source_system": r["source_system"], "source_key": r["source_key"],
                        "content_hash": content_hash(r), "record": r,
                        "special_category": r["source_system"] == "socialcare", "match_status": "matched",
                        "master_id": master_id, "link_rule": "bench:truth", "link_score": None,
                        "first_run_id": "bench-truth", "last_run_id": "bench-truth", "staged_at": now})
                    linked.append((record_id, master_id, r["source_system"] == "socialcare", r))
                    seen += 1
                    if r.get("family_name") and r.get("date_of_birth"):
                        if len(pool) < QUERY_POOL:
                            pool.append(r)
                        elif rng.random() < QUERY_POOL / seen:
                            pool[rng.randrange(QUERY_POOL)] = r
            rows["keys"] = key_rows(linked)  # the night's own function: the same index
            for table, name in tables:
                if rows[name]:
                    session.execute(table.insert(), rows[name])
            session.commit()
            keys_written += len(rows["keys"])
            print(f"  {record_id:>9,} records, {seq:>9,} persons, {keys_written:>10,} keys "
                  f"({time.perf_counter() - started:.0f} s, load {load_average()})", file=sys.stderr, flush=True)
    figures = {"source_records": record_id, "persons": seq, "search_keys": keys_written,
               "build_seconds": round(time.perf_counter() - started, 1)}
    return pool, figures


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (the machine is shared: say how busy it was)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


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

def drive(base: str, token: str, jobs: list[tuple[str, object]], clients: int
          ) -> tuple[dict[str, list[float]], list[int], list[bool]]:
    """Send the jobs from ``clients`` threads; (seconds per answered request by kind, the
    statuses of failed requests, for each answered search whether the true person was in the
    top 3)."""
    import httpx

    timings: dict[str, list[float]] = {"search": [], "get": []}
    errors: list[int] = []
    top3: list[bool] = []
    lock = threading.Lock()
    queue = list(jobs)

    def worker() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    kind, payload = queue.pop()
                t0 = time.perf_counter()
                if kind == "search":
                    query, truth = payload  # type: ignore[misc]
                    r = client.post("/api/v1/persons/search", json=query)
                else:
                    r = client.get(f"/api/v1/persons/{payload}")
                elapsed = time.perf_counter() - t0
                with lock:
                    if r.status_code == 200:
                        timings[kind].append(elapsed)
                        if kind == "search":
                            top3.append(truth in [c["master_id"] for c in r.json()["candidates"][:3]])
                    else:
                        errors.append(r.status_code)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings, errors, top3


def _true_masters(records: list[dict]) -> list[str | None]:
    """The master ID each record is linked to (the truth build links each true person's
    records to one master ID, so this is the person a query made from it should find)."""
    from sqlalchemy import select

    from joinedup.mci.store import SourceRecord, session_factory

    with session_factory()() as session:
        return [session.scalar(select(SourceRecord.master_id).where(SourceRecord.source_system == r["source_system"],
                                                                    SourceRecord.source_key == r["source_key"]))
                for r in records]


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


def _build(args: argparse.Namespace, home: Path) -> tuple[list[dict], dict]:
    """Build the index into ``home`` (a project folder with var/mci.sqlite); record the
    figures and the query pool beside it so ``--index`` can measure it later."""
    _project(home)
    residents = args.residents or int(args.records / RECORDS_PER_RESIDENT) + 100
    load_before = load_average()
    if args.build == "truth":
        pool, figures = build_from_truth(residents, args.seed, args.records)
    else:
        pool, figures = build_with_pipeline(residents, args.seed)
    figures.update(build=args.build, load_before=load_before, load_after=load_average(),
                   builder_peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                   producer_peak_rss_mib=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
    (home / "bench-index.json").write_text(json.dumps({"figures": figures, "pool": pool}), encoding="utf-8")
    return pool, figures


def _reuse(home: Path) -> tuple[list[dict], dict]:
    """An index built earlier with ``--keep``: its query pool and build figures."""
    saved = home / "bench-index.json"
    if not saved.exists():
        sys.exit(f"{home} holds no index built by this benchmark ({saved.name} missing): build it with --keep {home}")
    os.environ.update(JOINEDUP_HOME=str(home), JOINEDUP_VAR=str(home / "var"),
                      JOINEDUP_DB_URL=f"sqlite:///{home / 'var' / 'mci.sqlite'}")
    data = json.loads(saved.read_text(encoding="utf-8"))
    return data["pool"], data["figures"]


def _print_index(figures: dict, persons: int | None, db_bytes: int) -> None:
    who = f"{persons:,} persons" if persons is not None else f"{figures.get('persons', 0):,} persons"
    print(f"index ({figures.get('build', 'truth')} build): {figures['source_records']:,} source records, {who}, "
          f"{figures['search_keys']:,} search keys; SQLite {db_bytes / 2**20:.0f} MiB; "
          f"built in {figures['build_seconds']} s (peak RSS: builder {figures.get('builder_peak_rss_mib', '?')} MiB, "
          f"producer {figures.get('producer_peak_rss_mib', '?')} MiB); load average before the build "
          f"{figures.get('load_before', '?')}, after {figures.get('load_after', '?')}")


def measure(args: argparse.Namespace, home: Path, pool: list[dict], figures: dict) -> None:
    from tests.component.test_api_search_quality import noisy_query

    token, masters, persons = key_and_masters(max(1000, args.requests), args.seed)
    db_bytes = (home / "var" / "mci.sqlite").stat().st_size
    rng = random.Random(args.seed)
    picked = [rng.choice(pool) for _ in range(args.requests // 2)]
    truths = _true_masters(picked)
    jobs: list[tuple[str, object]] = [("search", (noisy_query(r, rng), t)) for r, t in zip(picked, truths)]
    jobs += [("get", rng.choice(masters)) for _ in range(args.requests - len(jobs))]
    rng.shuffle(jobs)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(port, args.workers)
    try:
        wait_until_up(base, server)
        drive(base, token, jobs[: 4 * args.clients], args.clients)  # warm-up: connections, caches
        load_before = load_average()
        t0 = time.perf_counter()
        timings, errors, top3 = drive(base, token, jobs, args.clients)
        wall = time.perf_counter() - t0
        load_after = load_average()
    finally:
        server.terminate()
        server.wait(timeout=30)
    _print_index(figures, persons, db_bytes)
    print(f"load: {args.clients} concurrent clients, {args.workers} uvicorn worker(s), {os.cpu_count()} cores "
          f"shared with the clients and other work; {len(jobs)} requests; every read audited")
    print(f"load average (1/5/15 min) when the requests started {load_before}, when they ended {load_after}")
    print(f"throughput: {sum(len(v) for v in timings.values()) / wall:.0f} requests/s; non-200 answers: {len(errors)}")
    for kind, values in timings.items():
        print(f"{kind:6s} n={len(values)} {_percentiles(values) if values else 'no answers'}")
    if top3:
        print(f"search quality: the true person in the top 3 for {sum(top3) / len(top3):.1%} of "
              f"{len(top3)} noisy queries (default level weights, no trained model)")
    if errors:
        sys.exit(f"{len(errors)} requests failed (first statuses {errors[:5]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--records", type=int, help="source records in the index (truth build)")
    size.add_argument("--residents", type=int, help="residents of the synthetic council")
    size.add_argument("--index", type=Path, metavar="DIR",
                      help="measure an index built earlier with --keep DIR (no build)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="build the index into DIR (new or empty), keep it, and stop (measure later with --index)")
    parser.add_argument("--build", choices=("truth", "pipeline"), default="truth")
    parser.add_argument("--requests", type=int, default=2_000, help="half search, half get")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    if args.records is None and args.residents is None and args.index is None:
        args.records = 20_000
    if args.index is not None:
        home = args.index.resolve()
        pool, figures = _reuse(home)
        measure(args, home, pool, figures)
        return
    if args.keep is not None:
        home = args.keep.resolve()
        if home.exists() and any(home.iterdir()):
            sys.exit(f"--keep {home}: the folder is not empty; give a new one")
        home.mkdir(parents=True, exist_ok=True)
        _pool, figures = _build(args, home)
        db_bytes = (home / "var" / "mci.sqlite").stat().st_size
        _print_index(figures, None, db_bytes)
        print(f"kept in {home}: measure it with --index {home}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        pool, figures = _build(args, Path(tmp))
        measure(args, Path(tmp), pool, figures)


if __name__ == "__main__":
    main()
