"""Storing a first build's match index: the staged path against the chunk-by-chunk path.

A first build writes every source record's match features and blocking keys (about 15 keys
a record) into ``record_features`` and ``record_block_keys``. Two ways, both in
``joinedup.mci.features``:

- **staged** (what a first build does, ``store_index``): features chunk by chunk; the keys
  gathered in a staging table and moved into their table in key order at the end
  (``FirstKeyLoad``);
- **chunked** (what a build does when keys are already stored, and what a first build did
  before): ``store_features`` per 50,000 records, each chunk's keys inserted into the
  indexed table at once, at random places of its B-tree.

With ``--rebuild``, the two ways of a re-build instead (an upgrade changed the features
version, so every stored row is stale; the key definitions, and so nearly every key, stay):
**chunked** is what ``store_index`` does, diff each record's keys against its stored ones
(those that stay are not written); **staged** empties both tables inside the transaction, as
a merge would have to (SQLite then visits every row: with foreign keys on it does not use its
truncate shortcut), and stores them as a first build does. This is the measurement behind
``store_index`` keeping the diffing path for a re-build.

Each trial takes a fresh copy of one SQLite MCI database, empties the two tables (or, with
``--rebuild``, marks every stored row as an older version's), standardises the whole index
(not timed), then times one path with its commit; the paths
alternate (staged, chunked, staged, ...) so a machine that slows down part-way through
weighs on both. Both must leave the same rows (their count and two checksums are printed).

Input: ``--db`` a SQLite MCI that a build left (``build_bench.py``'s work folder has one:
``<work>/project/var/mci.sqlite``), or ``--residents N`` to stage the synthetic council
(without record history) into a new one first.
Run:  .venv/bin/python benchmarks/index_store_bench.py --residents 10000
      .venv/bin/python benchmarks/index_store_bench.py --db var/bench/build-100000/project/var/mci.sqlite
      .venv/bin/python benchmarks/index_store_bench.py --db ... --rebuild
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PATHS = ("staged", "chunked")
CHUNK = 50_000  # records per store_features call: what the merge used and uses
#: The stored keys, summed up: equal for two tables holding the same keys (both benchmarks' check).
KEY_CHECKSUM_SQL = ("SELECT count(*), sum(block_key % 1000003), sum(record_id * (rule_index + 1)) "
                    "FROM record_block_keys")


def _new_database(path: Path, residents: int, seed: int, *, with_index: bool = False) -> None:
    """Stage the synthetic council into a new SQLite MCI (and store its index: something to
    re-build)."""
    from benchmarks.scale_bench import _records, _stage
    from joinedup.mci import features as stored
    from joinedup.mci.blocking import DEFAULT_BLOCKING_RULES
    from joinedup.mci.match import _standardised_index
    from joinedup.mci.store import get_engine, session_factory

    url = f"sqlite:///{path}"
    with session_factory(url)() as session:
        _stage(session, _records(residents, seed), "index-store-bench")
        if with_index:
            stored.ensure_tables(session)
            stored.store_index(session, _standardised_index(session), list(DEFAULT_BLOCKING_RULES))
            session.commit()
    get_engine(url).dispose()  # the last connection closed: the write-ahead log is checkpointed


def trial(source: Path, path: str, work: Path, rebuild: bool = False) -> dict:
    """One path on a fresh copy of ``source``: seconds to store the index, and its rows."""
    from sqlalchemy import text

    from joinedup.mci import features as stored
    from joinedup.mci.blocking import DEFAULT_BLOCKING_RULES
    from joinedup.mci.match import _standardised_index
    from joinedup.mci.store import get_engine, session_factory

    copy = work / f"copy-{path}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, copy)
    if Path(f"{source}-wal").exists():  # a database in WAL mode: its log is part of it
        shutil.copyfile(f"{source}-wal", f"{copy}-wal")
    url = f"sqlite:///{copy}"
    rules = list(DEFAULT_BLOCKING_RULES)
    try:
        with session_factory(url)() as session:
            stored.ensure_tables(session)
            if rebuild:
                if session.scalar(text("SELECT count(*) FROM record_block_keys")) == 0:
                    raise SystemExit(f"{source} has no stored index to re-build")
                session.execute(text("UPDATE record_features SET signature = 'older version'"))
            else:
                session.execute(text("DELETE FROM record_block_keys"))
                session.execute(text("DELETE FROM record_features"))
            session.commit()
            features = _standardised_index(session)
            started = time.perf_counter()
            if path == "staged":
                if rebuild:  # emptied in the timed transaction: store_index then takes the first build's way
                    session.execute(text("DELETE FROM record_block_keys"))
                    session.execute(text("DELETE FROM record_features"))
                stored.store_index(session, features, rules, chunk=CHUNK)
            elif rebuild:
                stored.store_index(session, features, rules, chunk=CHUNK)  # keys stored: the diffing path
            else:
                for start in range(0, len(features), CHUNK):
                    stored.store_features(session, features.iloc[start : start + CHUNK], rules)
            session.commit()
            seconds = time.perf_counter() - started
            keys = tuple(session.execute(text(KEY_CHECKSUM_SQL)).one())
            rows = session.scalar(text("SELECT count(*) FROM record_features"))
        return {"path": path, "seconds": round(seconds, 2), "records": len(features), "feature_rows": rows,
                "keys": keys}
    finally:
        get_engine(url).dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--db", type=Path, help="a SQLite MCI database a build left (copied, never changed)")
    given.add_argument("--residents", type=int, default=10_000, help="else: stage this synthetic council first")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--trials", type=int, default=2, help="trials of each path (alternating)")
    parser.add_argument("--rebuild", action="store_true",
                        help="a re-build (every stored row an older version's) instead of a first build")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="jup-index-store-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("JOINEDUP_VAR", str(work / "var"))
        source = args.db
        if source is None:
            source = work / "source.sqlite"
            _new_database(source, args.residents, args.seed, with_index=args.rebuild)
        print(f"index store benchmark ({'re-build' if args.rebuild else 'first build'}): "
              f"{source if args.db else f'{args.residents:,} residents, seed {args.seed}'}; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        results = []
        for n in range(args.trials):
            for path in PATHS:
                got = trial(source, path, work, rebuild=args.rebuild)
                results.append(got)
                print(f"  {path:8} trial {n + 1}: {got['seconds']:7.2f} s   {got['records']:,} records, "
                      f"{got['keys'][0]:,} block keys   load {os.getloadavg()[0]:.2f}", flush=True)
    same = len({(r["feature_rows"], r["keys"]) for r in results}) == 1
    best = {p: min(r["seconds"] for r in results if r["path"] == p) for p in PATHS}
    print(f"best of {args.trials}: staged {best['staged']:.1f} s, chunked {best['chunked']:.1f} s "
          f"({best['chunked'] / max(best['staged'], 0.01):.1f}x); same rows from both: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
