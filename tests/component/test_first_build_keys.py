"""A first build's block keys (joinedup.mci.features.store_index, FirstKeyLoad), on SQLite
and PostgreSQL.

An empty ``record_block_keys`` is filled through a staging table and one ordered move, not
chunk by chunk. These tests hold it to the chunk-by-chunk path: the same rows, the same
table and indexes afterwards, nothing left behind, and nothing kept when the merge's
transaction is rolled back. A table that already holds keys takes the diffing path.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from tests.conftest import stage_council_night

RESIDENTS, SEED = 200, 5


def _features(session):  # noqa: ANN001, ANN202
    from joinedup.mci import features as stored
    from joinedup.mci.match import _load_frame
    from joinedup.mci.standardise import standardise

    stage_council_night(session, RESIDENTS, SEED, 0)
    stored.ensure_tables(session)
    session.commit()
    return standardise(_load_frame(session))


def _keys(session) -> set[tuple[int, int, int]]:  # noqa: ANN001
    from joinedup.mci.features import RecordBlockKey

    return set(session.execute(select(RecordBlockKey.block_key, RecordBlockKey.record_id,
                                      RecordBlockKey.rule_index)).all())


def _indexes(session) -> dict[str, list[str]]:  # noqa: ANN001
    found = inspect(session.connection()).get_indexes("record_block_keys")
    return {ix["name"]: ix["column_names"] for ix in found}


def _staged_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, each staged key load's row count as it finishes (the path taken)."""
    from joinedup.mci import features as stored

    loads: list[int] = []
    original = stored.FirstKeyLoad.finish

    def finish(self) -> None:  # noqa: ANN001
        loads.append(self.rows)
        original(self)

    monkeypatch.setattr(stored.FirstKeyLoad, "finish", finish)
    return loads


def test_a_first_build_stores_the_keys_the_chunked_path_stores(project: Path, mci_db: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from joinedup.mci import bulk
    from joinedup.mci import features as stored
    from joinedup.mci.blocking import DEFAULT_BLOCKING_RULES
    from joinedup.mci.store import session_factory

    rules = list(DEFAULT_BLOCKING_RULES)
    with session_factory()() as session:
        features = _features(session)
        indexes_before = _indexes(session)
        assert indexes_before == {"ix_record_block_keys_record": ["record_id"]}
        # the chunk-by-chunk path first (every chunk's keys diffed and inserted), then undone
        for start in range(0, len(features), 50):
            stored.store_features(session, features.iloc[start : start + 50], rules)
        chunked = _keys(session)
        session.rollback()
        assert _keys(session) == set()

        bulk.write_counts.clear()
        seen = _staged_loads(monkeypatch)
        written = stored.store_index(session, features, rules, chunk=50)  # several chunks staged
        session.commit()
        assert written == len(features) > 150
        got = _keys(session)
        assert len(chunked) > 10 * len(features) // 2 and got == chunked
        assert seen == [len(chunked)]  # the staged path ran, once, with every key
        assert bulk.write_counts["record_block_keys"] == len(chunked)
        assert _indexes(session) == indexes_before  # the by-record index is back
        assert not any("first_block_keys" in t for t in inspect(session.connection()).get_table_names())
        # the by-record index answers: one record's keys read through it
        rid = int(features.record_id.iloc[7])
        assert {k for k in got if k[1] == rid} == set(session.execute(text(
            "SELECT block_key, record_id, rule_index FROM record_block_keys WHERE record_id = :r"), {"r": rid}).all())


def test_a_first_build_rolled_back_keeps_no_key_and_the_index(project: Path, mci_db: str) -> None:
    from joinedup.mci import features as stored
    from joinedup.mci.blocking import DEFAULT_BLOCKING_RULES
    from joinedup.mci.store import session_factory

    with session_factory()() as session:
        features = _features(session)
        stored.FirstKeyLoad(session)  # a load begun before the merge's first write, then abandoned
        session.rollback()
        stored.store_index(session, features, list(DEFAULT_BLOCKING_RULES))
        first = _keys(session)
        assert first
        session.rollback()  # the merge failed after storing its keys
        assert _keys(session) == set()
        assert session.scalar(text("SELECT count(*) FROM record_features")) == 0
        assert _indexes(session) == {"ix_record_block_keys_record": ["record_id"]}
        # the merge tried again on the same connection (its staging table may have outlived
        # the rollback): the same keys, once each
        stored.store_index(session, features, list(DEFAULT_BLOCKING_RULES))
        session.commit()
        assert _keys(session) == first


def test_keys_already_stored_take_the_diffing_path(project: Path, mci_db: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from joinedup.mci import bulk
    from joinedup.mci import features as stored
    from joinedup.mci.blocking import DEFAULT_BLOCKING_RULES
    from joinedup.mci.store import session_factory

    rules = list(DEFAULT_BLOCKING_RULES)
    with session_factory()() as session:
        features = _features(session)
        half = features.iloc[: len(features) // 2]
        stored.store_index(session, half, rules)
        session.commit()
        first = _keys(session)
        made: list[object] = []
        original = stored.FirstKeyLoad.__init__

        def init(self, session) -> None:  # noqa: ANN001
            made.append(self)
            original(self, session)

        monkeypatch.setattr(stored.FirstKeyLoad, "__init__", init)
        bulk.write_counts.clear()
        stored.store_index(session, features, rules)  # the first half again (unchanged), then the rest
        session.commit()
        assert made == []
        got = _keys(session)
        assert first < got
        assert bulk.write_counts["record_block_keys"] == len(got) - len(first)  # only the new records' keys


def _signatures(session) -> dict[str, int]:  # noqa: ANN001
    return dict(session.execute(text("SELECT signature, count(*) FROM record_features GROUP BY signature")).all())


def test_an_upgrade_night_rebuilds_the_index_in_key_order_and_keeps_the_master_ids(
        project: Path, mci_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A night after an upgrade that bumped the features version: every stored row is stale,
    the merge takes the full path and re-stores the index by diffing each record's keys (not
    the first build's staged way: benchmarks/index_store_bench.py --rebuild measured it
    slower when the keys mostly stay); the keys are exactly those of the records as they now
    stand, and nobody's master ID moves for it."""
    from joinedup.mci import features as stored
    from joinedup.mci.blocking import DEFAULT_BLOCKING_RULES
    from joinedup.mci.match import _load_frame, run_match
    from joinedup.mci.model_store import current_model
    from joinedup.mci.standardise import standardise
    from joinedup.mci.store import SourceRecord, session_factory

    with session_factory()() as session:
        stage_council_night(session, RESIDENTS, SEED, 0)
        run_match(session, "night-0")
        session.commit()
        before = dict(session.execute(select(SourceRecord.id, SourceRecord.master_id)).all())
        staged = _staged_loads(monkeypatch)
        monkeypatch.setattr(stored, "FEATURES_VERSION", "upgraded")
        stage_council_night(session, RESIDENTS, SEED, 1)
        pending = set(session.scalars(select(SourceRecord.id).where(SourceRecord.match_status == "pending")))
        result = run_match(session, "night-1")
        session.commit()

        assert 0 < len(pending) < len(before) // 5 and result.path == "full index"
        model = current_model()  # a council this small is matched by the rules alone: the default keys
        rules = list(model[0].blocking_rules if model else DEFAULT_BLOCKING_RULES)
        assert _signatures(session) == {stored.signature(rules): len(before) + len(pending - set(before))}
        want = stored._computed_keys(standardise(_load_frame(session)), rules)
        assert staged == []
        assert _keys(session) == set(zip(want["block_key"], want["record_id"], want["rule_index"]))
        after = dict(session.execute(select(SourceRecord.id, SourceRecord.master_id)).all())
        kept = [rid for rid in before if rid not in pending and after[rid] == before[rid]]
        assert len(kept) >= 0.99 * len(set(before) - pending)
