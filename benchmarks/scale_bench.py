"""Matcher-only scale benchmark: a full build of the MCI, then a 1%-changed incremental night.

What it times (the matcher alone: no adapters, no quality gate; issue 11's build_bench.py
times the whole pipeline):

1. a synthetic council sized to about ``--records`` source records, mapped to canonical
   records with the production mappings and staged into a fresh MCI database;
2. the FULL BUILD: ``run_match`` on every record (standardise, store features and block
   keys, train the model, block, score, cluster, write persons and golden records);
3. an INCREMENTAL NIGHT with 1% of the records changed: half of them existing records
   edited (a new phone number and email), half new records (another account of an
   existing resident, with a new source key and a typo in the given name);
4. the ratio full build / incremental night (issue 6 asks for at least 20x).

Database: a SQLite file in a temporary folder (or ``--db-url``, e.g. PostgreSQL).
Run:  .venv/bin/python benchmarks/scale_bench.py --records 100000
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RECORDS_PER_RESIDENT = 1.0  # measured: the synthetic council makes about one record per resident


def _records(n_records: int, seed: int) -> list[dict]:
    from benchmarks.mci_bench import canonical_frames
    from joinedup.simulators.council import build_council

    council = build_council(int(n_records / RECORDS_PER_RESIDENT), seed=seed)
    frames, _ = canonical_frames(council)
    out = []
    for system in sorted(frames):
        frame = frames[system]
        out += frame.astype(object).where(frame.notna(), None).to_dict("records")
    return out


def _stage(session, records: list[dict], run_id: str) -> None:  # noqa: ANN001
    from joinedup.mci.staging import stage_records

    by_system: dict[str, list[dict]] = {}
    for rec in records:
        by_system.setdefault(rec["source_system"], []).append(rec)
    for system in sorted(by_system):
        stage_records(session, by_system[system], run_id)
    session.commit()


def _changes(records: list[dict], share: float, seed: int) -> list[dict]:
    """``share`` of the records: half edited, half new accounts of existing residents."""
    rng = random.Random(seed)
    picked = rng.sample(records, max(2, int(len(records) * share)))
    half = len(picked) // 2
    out = []
    for i, rec in enumerate(picked[:half]):
        out.append({**rec, "phone": f"07700 9{i % 100000:05d}", "email": f"changed{i}@example.org"})
    for i, rec in enumerate(picked[half:]):
        given = rec.get("given_name") or ""
        typo = given[:-1] + given[-1] * 2 if len(given) > 2 else given
        out.append({**rec, "source_key": f"NEW{i:07d}-{rec['source_key']}", "given_name": typo})
    return out


def measure(n_records: int, seed: int, db_url: str | None, workdir: Path) -> dict:
    os.environ["JOINEDUP_VAR"] = str(workdir / "var")
    os.environ["JOINEDUP_DB_URL"] = db_url or f"sqlite:///{workdir / 'mci.sqlite'}"
    (workdir / "var").mkdir(parents=True, exist_ok=True)
    from joinedup.mci.match import run_match
    from joinedup.mci.store import session_factory

    t0 = time.perf_counter()
    records = _records(n_records, seed)
    t1 = time.perf_counter()
    with session_factory()() as session:
        _stage(session, records, "night-0")
        t2 = time.perf_counter()
        full = run_match(session, "night-0")
        session.commit()
        t3 = time.perf_counter()
        changed = _changes(records, 0.01, seed)
        _stage(session, changed, "night-1")
        t4 = time.perf_counter()
        night = run_match(session, "night-1", path="incremental")
        session.commit()
        t5 = time.perf_counter()
    return {
        "records": len(records), "changed": len(changed),
        "full": full.as_dict(), "night": night.as_dict(),
        "seconds": {"generate_and_map": t1 - t0, "stage": t2 - t1, "full_build": t3 - t2,
                    "stage_changes": t4 - t3, "incremental_night": t5 - t4},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--db-url", default=None, help="an empty MCI database (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        f = measure(args.records, args.seed, args.db_url, Path(tmp))
    s = f["seconds"]
    print(f"matcher scale: {f['records']:,} source records, then {f['changed']:,} changed (1%)")
    print(f"  generate + map (not the matcher)   {s['generate_and_map']:8.1f} s")
    print(f"  stage all records                  {s['stage']:8.1f} s")
    print(f"  FULL BUILD (run_match)             {s['full_build']:8.1f} s  path={f['full']['path']}, "
          f"model trained={f['full']['model_trained']}, pairs decided={f['full']['pairs_scored']:,}, "
          f"persons={f['full']['persons_total']:,}")
    print(f"  stage the 1% changes               {s['stage_changes']:8.1f} s")
    print(f"  INCREMENTAL NIGHT (run_match)      {s['incremental_night']:8.1f} s  path={f['night']['path']}, "
          f"compared={f['night']['records_compared']:,}, candidates={f['night']['candidates']:,}, "
          f"pairs decided={f['night']['pairs_scored']:,}, linked={f['night']['linked']:,}")
    print(f"  full build / incremental night     {s['full_build'] / s['incremental_night']:8.1f}x (target >= 20x)")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
