"""The nights after a first build: do a night's new block keys cost more in a key index that
was filled in key order (what a first build's staged keys leave) than in one filled chunk by
chunk (what the first build did before, and what nights leave)?

A B-tree filled in key order has full pages, so the first keys added into it split pages; one
filled at random places has room in most. Both layouts are made from the keys one SQLite MCI
holds, on two copies of it: each copy's keys are gathered in a temporary table and the key
table emptied (foreign keys off, so SQLite empties it at once); then **ordered** moves them back
as ``FirstKeyLoad`` does (the by-record index dropped, one ``INSERT ... ORDER BY block_key,
record_id``, the index made again), **chunked** inserts each 50,000 records' keys at once, in
record order, as the chunk-by-chunk path did. Then ``--nights`` synthetic nights: each inserts
15 random keys for 1% of the records into both copies, alternating which goes first, with the
product's settings (write-ahead log, foreign keys on, one ``executemany`` in one transaction,
as ``bulk.insert_values`` does on SQLite). Both copies end with the same keys (checked).

Input: ``--db`` a SQLite MCI with its stored match index (``build_bench.py``'s work folder has
one: ``<work>/project/var/mci.sqlite``), or ``--residents N`` to stage and index the synthetic
council (without record history) first. Needs twice the database's size free in ``--work``.
Run:  .venv/bin/python benchmarks/index_nights_bench.py --residents 10000
      .venv/bin/python benchmarks/index_nights_bench.py --db var/bench/build-1000000-full/project/var/mci.sqlite --work /big/disk
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.index_store_bench import KEY_CHECKSUM_SQL, _new_database  # noqa: E402 - after the path set-up

LAYOUTS = ("ordered", "chunked")
CHUNK_RECORDS = 50_000
KEYS_PER_RECORD = 15


def lay_out(path: Path, layout: str) -> float:
    """Re-fill the key table of ``path`` in ``layout``; seconds the filling took."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA foreign_keys=OFF")
        con.execute("CREATE TEMP TABLE k AS SELECT record_id, block_key, rule_index FROM record_block_keys")
        con.execute("CREATE INDEX temp.k_record ON k (record_id)")
        con.execute("DELETE FROM record_block_keys")
        started = time.perf_counter()
        if layout == "ordered":
            con.execute("BEGIN")
            con.execute("DROP INDEX ix_record_block_keys_record")
            con.execute("INSERT INTO record_block_keys (record_id, block_key, rule_index) "
                        "SELECT record_id, block_key, rule_index FROM k ORDER BY block_key, record_id")
            con.execute("CREATE INDEX ix_record_block_keys_record ON record_block_keys (record_id)")
            con.execute("COMMIT")
        else:
            low, high = con.execute("SELECT min(record_id), max(record_id) FROM k").fetchone()
            for start in range(low or 0, (high or -1) + 1, CHUNK_RECORDS):
                con.execute("BEGIN")
                con.execute("INSERT INTO record_block_keys (record_id, block_key, rule_index) "
                            "SELECT record_id, block_key, rule_index FROM k WHERE record_id >= ? AND record_id < ?",
                            (start, start + CHUNK_RECORDS))
                con.execute("COMMIT")
        seconds = time.perf_counter() - started
        con.execute("DROP TABLE k")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return seconds
    finally:
        con.close()


def night_keys(record_ids: list[int], rng: random.Random) -> list[tuple[int, int, int]]:
    """One synthetic night's new keys: 15 random 60-bit keys for 1% of the records."""
    chosen = rng.sample(record_ids, max(1, len(record_ids) // 100))
    return [(r, rng.getrandbits(60), rng.randrange(8)) for r in chosen for _ in range(KEYS_PER_RECORD)]


def insert_night(path: Path, rows: list[tuple[int, int, int]]) -> float:
    """Seconds to insert ``rows`` and commit, as a night's merge writes them on SQLite."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA foreign_keys=ON")
        started = time.perf_counter()
        con.execute("BEGIN")
        con.executemany("INSERT INTO record_block_keys (record_id, block_key, rule_index) VALUES (?, ?, ?)", rows)
        con.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        con.close()


def key_checksum(path: Path) -> tuple[int, int, int]:
    con = sqlite3.connect(path)
    try:
        return tuple(con.execute(KEY_CHECKSUM_SQL).fetchone())
    finally:
        con.close()


def measure(source: Path, work: Path, nights: int, seed: int = 7, say=print) -> dict:
    """Both layouts from ``source`` (copied into ``work``), then ``nights`` nights into each."""
    copies = {layout: work / f"{layout}.sqlite" for layout in LAYOUTS}
    for copy in copies.values():
        shutil.copyfile(source, copy)
    filled = {}
    for layout, copy in copies.items():
        filled[layout] = round(lay_out(copy, layout), 2)
        say(f"  {layout:8} key index filled in {filled[layout]:8.1f} s")
    con = sqlite3.connect(copies["ordered"])
    record_ids = [r[0] for r in con.execute("SELECT id FROM source_records ORDER BY id")]
    con.close()
    rng = random.Random(seed)
    seconds: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    for night in range(1, nights + 1):
        rows = night_keys(record_ids, rng)
        for layout in (LAYOUTS if night % 2 else tuple(reversed(LAYOUTS))):
            took = insert_night(copies[layout], rows)
            seconds[layout].append(round(took, 2))
            say(f"  night {night} {layout:8} {len(rows):,} keys in {took:6.2f} s   load {os.getloadavg()[0]:.2f}")
    same = key_checksum(copies["ordered"]) == key_checksum(copies["chunked"])
    for copy in copies.values():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
    return {"filled": filled, "nights": seconds, "same_keys": same}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--db", type=Path, help="a SQLite MCI with its stored index (copied, never changed)")
    given.add_argument("--residents", type=int, default=10_000, help="else: stage and index this synthetic council first")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--nights", type=int, default=4)
    parser.add_argument("--work", type=Path, help="where the two copies go (default: a temporary folder)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="jup-index-nights-", dir=args.work) as tmp:
        work = Path(tmp)
        os.environ.setdefault("JOINEDUP_VAR", str(work / "var"))
        source = args.db
        if source is None:
            source = work / "source.sqlite"
            _new_database(source, args.residents, args.seed, with_index=True)
        print(f"index nights benchmark: {source if args.db else f'{args.residents:,} residents, seed {args.seed}'}; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        got = measure(source, work, args.nights, say=lambda s: print(s, flush=True))
    first = {layout: got["nights"][layout][0] for layout in LAYOUTS}
    later = {layout: sum(got["nights"][layout][1:]) for layout in LAYOUTS}
    print(f"night 1: ordered {first['ordered']:.2f} s, chunked {first['chunked']:.2f} s; nights 2-{args.nights}: "
          f"ordered {later['ordered']:.2f} s, chunked {later['chunked']:.2f} s; "
          f"same keys in both: {'yes' if got['same_keys'] else 'NO'}")
    return 0 if got["same_keys"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
