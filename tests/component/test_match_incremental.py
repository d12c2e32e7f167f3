"""Incremental nights against the stored index decide exactly what the full-index path decides.

The same synthetic-council nights are staged into two databases. One matches every night
the old way (standardise and block the whole index); the other the incremental way
(standardise only the pending records, fetch their candidates by stored block key). Master
IDs, merged persons and review pairs must be identical after every night. The incremental
database is SQLite and PostgreSQL in turn; the full-index one is always a SQLite file.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import select

from tests.conftest import stage_council_night

RESIDENTS, SEED, NIGHTS = 1_100, 7, 3


def _stage(session, night: int) -> None:  # noqa: ANN001
    stage_council_night(session, RESIDENTS, SEED, night)


def _state(session) -> dict:  # noqa: ANN001
    from joinedup.mci.store import Person, ReviewPair, SourceRecord

    masters = dict(session.execute(select(SourceRecord.id, SourceRecord.master_id)).all())
    merged = dict(session.execute(select(Person.master_id, Person.merged_into).where(Person.status == "merged")).all())
    reviews = set(session.execute(select(ReviewPair.record_id_l, ReviewPair.record_id_r, ReviewPair.rule)).all())
    return {"masters": masters, "merged": merged, "reviews": reviews}


def test_incremental_nights_give_the_same_clusters_as_the_full_index(project: Path, mci_db: str) -> None:
    from joinedup.mci.match import run_match
    from joinedup.mci.store import get_engine, session_factory

    (project / "var").mkdir(exist_ok=True)
    full_url = f"sqlite:///{project / 'var' / 'full-index.sqlite'}"
    incremental, full = session_factory(mci_db)(), session_factory(full_url)()
    try:
        paths = []
        for night in range(NIGHTS):
            _stage(incremental, night)
            _stage(full, night)
            # night 0 trains the model (shared through var/models) and builds the index
            inc = run_match(incremental, f"night-{night}", path="auto" if night == 0 else "incremental")
            incremental.commit()
            ref = run_match(full, f"night-{night}", path="full")
            full.commit()
            paths.append((inc.path, ref.path))
            assert inc.mode == ref.mode == "rules+model"
            assert inc.records_compared == ref.records_compared > 0
            got, want = _state(incremental), _state(full)
            assert got["masters"] == want["masters"], f"night {night}: master IDs differ"
            assert got["merged"] == want["merged"], f"night {night}: merges differ"
            assert got["reviews"] == want["reviews"], f"night {night}: review pairs differ"
            if night:
                assert inc.pairs_scored == ref.pairs_scored
                assert 0 < inc.candidates < len(got["masters"]) // 2  # a few candidates, not the index
        assert paths == [("full index", "full index")] + [("incremental", "full index")] * (NIGHTS - 1)
    finally:
        incremental.close()
        full.close()
        get_engine(full_url).dispose()


def test_stored_block_keys_find_the_pairs_duckdb_blocking_finds(project: Path) -> None:
    """The store's candidate pairs (with the rule that found each) equal generate_pairs()
    over the whole index for the same new records, block-size cap included."""
    from joinedup.mci import features as stored
    from joinedup.mci.blocking import DEFAULT_BLOCKING_RULES, FEATURES_TABLE, PAIRS_TABLE, generate_pairs, open_duckdb
    from joinedup.mci.match import _load_frame
    from joinedup.mci.probabilistic import _load_features
    from joinedup.mci.standardise import standardise
    from joinedup.mci.store import session_factory

    rules, cap = list(DEFAULT_BLOCKING_RULES), 3  # a tiny cap, so some blocks are oversized
    (project / "var").mkdir(exist_ok=True)
    with session_factory(f"sqlite:///{project / 'var' / 'keys.sqlite'}")() as session:
        _stage(session, 0)
        features = standardise(_load_frame(session))
        stored.ensure_tables(session)
        stored.store_features(session, features, rules)
        session.commit()
        new_ids = set(features.record_id.sample(150, random_state=1).astype(int))
        found = stored.candidates(session, new_ids, cap)
        again = stored.load_features(session, found.record_ids)
    con = open_duckdb(memory_limit="1GB")
    try:
        _load_features(con, features)
        generate_pairs(con, rules, table=FEATURES_TABLE, block_size_cap=cap, new_ids=new_ids)
        want = con.execute(f"SELECT match_key, join_key_l, join_key_r FROM {PAIRS_TABLE}").df()
    finally:
        con.close()
    key = ["join_key_l", "join_key_r"]
    got = found.pairs.sort_values(key, ignore_index=True)
    want = want.astype({"match_key": str}).sort_values(key, ignore_index=True)
    assert len(want) > 100 and found.oversized > 0
    pd.testing.assert_frame_equal(got[["match_key", *key]].astype({"match_key": str}), want[["match_key", *key]],
                                  check_dtype=False)
    # the stored features read back are what standardise() gave
    expect = features[features.record_id.isin(found.record_ids)].sort_values("record_id", ignore_index=True)
    pd.testing.assert_frame_equal(again.sort_values("record_id", ignore_index=True), expect, check_dtype=False)
