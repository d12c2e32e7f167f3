"""The incremental merge's reads (joinedup.mci.bulk.select_in, features.candidates,
features.load_features, match._masters_of/_members_of), on SQLite and PostgreSQL.

They read on the driver's cursor and build the blocked pairs with DataFrame joins; these
tests hold them to what the straightforward reading gives:

- select_in returns exactly the rows a Core select with the same condition returns, across
  its chunk boundary, for integer and text keys, and nothing for no keys;
- candidates' pairs, match keys, candidate records and oversized blocks equal a
  record-by-record reference (the earlier Python loop), with the pairs ordered by pair;
- load_features gives the dtypes and values of the Core read, in record id order.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import delete, select

from tests.conftest import stage_council_night

RESIDENTS, SEED = 300, 11


def _first_night(session) -> None:  # noqa: ANN001
    from joinedup.mci.match import run_match

    stage_council_night(session, RESIDENTS, SEED, 0)
    run_match(session, "night-0")
    session.commit()


def _reference_candidates(session, pending: list[int], cap: int):  # noqa: ANN001, ANN202
    """The blocked pairs as the earlier record-by-record loop made them."""
    from joinedup.mci.features import RULE_KEY_OFFSET, RecordBlockKey

    rows = session.execute(select(RecordBlockKey.record_id, RecordBlockKey.block_key, RecordBlockKey.rule_index)).all()
    members: dict[int, list[int]] = defaultdict(list)
    rule_of: dict[int, int] = {}
    for rid, key, index in rows:
        members[key].append(rid)
        rule_of[key] = index
    wanted = set(pending)
    mine = [(rid, key, index) for rid, key, index in rows if rid in wanted]
    oversized = {k for _, k, i in mine if i < RULE_KEY_OFFSET and len(members[k]) > cap}
    best: dict[tuple[int, int], int] = {}
    record_ids = set(pending)
    for rid, key, index in mine:
        others = members[key]
        if len(others) < 2 or key in oversized:
            continue
        record_ids.update(others)
        if index >= RULE_KEY_OFFSET:
            continue
        for other in others:
            if other != rid:
                pair = (min(rid, other), max(rid, other))
                best[pair] = min(index, best.get(pair, RULE_KEY_OFFSET))
    return best, record_ids, len(oversized)


def test_select_in_returns_what_a_core_select_returns(project: Path, mci_db: str) -> None:
    from joinedup.mci import bulk
    from joinedup.mci.store import SourceRecord, session_factory

    with session_factory()() as session:
        _first_night(session)
        everything = session.execute(select(SourceRecord.id, SourceRecord.master_id)).all()
        ids = [rid for rid, _ in everything]
        some = ids[::2] + [10**9]  # one id that no record has
        got = bulk.select_in(session, "SELECT id, master_id FROM source_records WHERE id {in}", some, chunk=7)
        assert sorted(got) == sorted((rid, mid) for rid, mid in everything if rid in set(some))
        masters = sorted({m for _, m in everything if m})[:40]
        got = bulk.select_in(session, "SELECT id, master_id FROM source_records WHERE master_id {in}", masters,
                             chunk=3)
        assert sorted(got) == sorted((rid, mid) for rid, mid in everything if mid in set(masters))
        assert len(got) >= 40
        assert bulk.select_in(session, "SELECT id FROM source_records WHERE id {in}", []) == []


def test_select_in_sees_the_sessions_unflushed_rows(project: Path, mci_db: str) -> None:
    from joinedup.mci import bulk
    from joinedup.mci.store import Person, session_factory

    with session_factory()() as session:
        session.add(Person(master_id="JU99999999", seq=99999999, created_run_id="t"))
        got = bulk.select_in(session, "SELECT master_id, seq FROM persons WHERE master_id {in}", ["JU99999999"])
        assert got == [("JU99999999", 99999999)]
        session.rollback()


@pytest.mark.parametrize("cap", [300, 4])
def test_candidates_equal_the_record_by_record_reference(project: Path, mci_db: str, cap: int) -> None:
    from joinedup.mci.features import candidates
    from joinedup.mci.store import SourceRecord, session_factory

    with session_factory()() as session:
        _first_night(session)
        ids = list(session.scalars(select(SourceRecord.id).order_by(SourceRecord.id)))
        pending = ids[::5]
        found = candidates(session, pending, cap)
        best, record_ids, oversized = _reference_candidates(session, pending, cap)
        assert len(best) > (100 if cap == 300 else 10)  # the council has real blocks
        got = {(int(a), int(b)): int(k) for k, a, b in found.pairs[["match_key", "join_key_l", "join_key_r"]]
               .itertuples(index=False)}
        assert got == best
        assert len(found.pairs) == len(best)  # each pair once
        assert list(found.pairs.columns) == ["match_key", "join_key_l", "join_key_r"]
        assert found.pairs["match_key"].map(type).eq(str).all()
        assert str(found.pairs["join_key_l"].dtype) == "int64" and str(found.pairs["join_key_r"].dtype) == "int64"
        keys = list(zip(found.pairs["join_key_l"], found.pairs["join_key_r"]))
        assert keys == sorted(keys)
        assert found.record_ids == record_ids
        assert found.oversized == oversized
        if cap == 4:
            assert oversized > 0  # the small cap really skips blocks


def test_candidates_of_no_record_are_empty(project: Path, mci_db: str) -> None:
    from joinedup.mci.features import candidates
    from joinedup.mci.store import session_factory

    with session_factory()() as session:
        _first_night(session)
        found = candidates(session, [10**9], 300)
        assert found.pairs.empty and found.record_ids == {10**9} and found.oversized == 0
        assert list(found.pairs.columns) == ["match_key", "join_key_l", "join_key_r"]


def test_load_features_reads_what_a_core_select_reads(project: Path, mci_db: str) -> None:
    from joinedup.mci import model_settings as spec
    from joinedup.mci.features import RecordFeatures, load_features
    from joinedup.mci.store import session_factory

    with session_factory()() as session:
        _first_night(session)
        everyone = load_features(session)
        wanted = set(everyone["record_id"].tolist()[::3])
        some = load_features(session, list(wanted)[::-1])
        assert some["record_id"].tolist() == sorted(wanted)
        expected = everyone[everyone["record_id"].isin(wanted)].reset_index(drop=True)
        pd.testing.assert_frame_equal(some, expected)
        assert list(some.columns) == list(spec.FEATURE_COLUMNS)
        for col in spec.BOOLEAN_COLUMNS:
            assert some[col].dtype == bool
        assert some["dob_is_placeholder"].map(type).eq(bool).all()
        stored = session.scalar(select(RecordFeatures.given_name_std).where(RecordFeatures.record_id == min(wanted)))
        assert some.loc[0, "given_name_std"] == stored


def test_masters_and_members_read_every_record_of_a_person(project: Path, mci_db: str) -> None:
    from joinedup.mci.match import _masters_of, _members_of
    from joinedup.mci.store import SourceRecord, session_factory

    with session_factory()() as session:
        _first_night(session)
        everything = dict(session.execute(select(SourceRecord.id, SourceRecord.master_id)).all())
        ids = sorted(everything)[::4]
        masters = _masters_of(session, set(ids))
        assert masters == {i: everything[i] for i in ids}
        assert list(masters) == sorted(masters)
        persons = {m for m in masters.values() if m}
        members = _members_of(session, persons)
        assert members == {i: m for i, m in everything.items() if m in persons}
        assert len(members) > len(persons)  # people with several records


def test_search_keys_from_known_features_equal_those_from_the_records(project: Path, mci_db: str) -> None:
    """The merge hands refresh_search_keys the features it read (search_keys.KnownFeatures):
    the keys are those standardising the records gives, and a record missing from the
    known features is still standardised."""
    from joinedup.api.models import PersonSearchKey
    from joinedup.api.search_keys import KnownFeatures, _records_of, key_rows, refresh_search_keys
    from joinedup.mci.features import load_features
    from joinedup.mci.store import Person, session_factory
    from tests.component.test_search_keys import _index as search_index

    with session_factory()() as session:
        _first_night(session)
        masters = list(session.scalars(select(Person.master_id).where(Person.status == "active")
                                       .order_by(Person.master_id)))
        records = _records_of(session, masters)
        assert all(rec is not None for *_, rec in records)
        plain = key_rows(records)
        stored = load_features(session)
        known = KnownFeatures(stored)
        assert len(known) == len(stored) and stored["record_id"].iloc[0] in known
        assert key_rows(records, known) == plain
        partly = KnownFeatures(stored.iloc[::2])  # half the records standardised here
        assert key_rows(_records_of(session, masters, partly), partly) == plain
        lean = _records_of(session, masters, known)
        assert all(rec is None for *_, rec in lean)  # no canonical record read when known

        before = search_index(session)
        session.execute(delete(PersonSearchKey.__table__))
        assert refresh_search_keys(session, masters, partly) > 0
        assert search_index(session) == before
