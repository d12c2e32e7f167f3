"""An incremental night writes only what changed (joinedup.mci.features.store_features,
joinedup.api.search_keys.refresh_search_keys), on SQLite and PostgreSQL.

- Re-matching records that did not change writes no stored-feature, block-key or search-key
  row (joinedup.mci.bulk's write counter says so, and the three tables are unchanged).
- A changed record's stored features, block keys and its person's search keys are exactly
  what recomputing them from scratch gives, and only the keys that went or came are written.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, update

from tests.component.test_search_keys import _expected as expected_search_keys
from tests.component.test_search_keys import _index as search_index
from tests.conftest import stage_council_night

RESIDENTS, SEED = 300, 11
TABLES = ("record_features", "record_block_keys", "person_search_keys")


def _contents(session) -> dict[str, set[tuple]]:  # noqa: ANN001
    from joinedup.api.models import PersonSearchKey
    from joinedup.mci.features import RecordBlockKey, RecordFeatures

    return {
        "record_features": set(session.execute(select(*RecordFeatures.__table__.c)).all()),
        "record_block_keys": set(session.execute(select(*RecordBlockKey.__table__.c)).all()),
        # ids are the index's own; what a search reads is (person, key, restricted)
        "person_search_keys": search_index(session),
        "_ids": set(session.execute(select(PersonSearchKey.id)).scalars()),
    }


def _state(session) -> dict:  # noqa: ANN001
    from joinedup.mci.store import Person, PersonEvent, ReviewPair, SourceRecord

    return {
        "masters": dict(session.execute(select(SourceRecord.id, SourceRecord.master_id)).all()),
        "golden": {m: (g, s) for m, g, s in session.execute(select(Person.master_id, Person.golden,
                                                                   Person.golden_sources))},
        "reviews": set(session.execute(select(ReviewPair.record_id_l, ReviewPair.record_id_r, ReviewPair.rule)).all()),
        "events": session.scalar(select(func.count()).select_from(PersonEvent)),
    }


def _first_night(session) -> None:  # noqa: ANN001
    from joinedup.mci.match import run_match

    stage_council_night(session, RESIDENTS, SEED, 0)
    run_match(session, "night-0")
    session.commit()


def _set_pending(session, record_ids: list[int]) -> None:  # noqa: ANN001
    from joinedup.mci.store import SourceRecord

    session.execute(update(SourceRecord).where(SourceRecord.id.in_(record_ids)).values(match_status="pending"))
    session.commit()


def test_an_unchanged_re_merge_writes_no_feature_block_or_search_key_row(project: Path, mci_db: str) -> None:
    from joinedup.mci import bulk
    from joinedup.mci.match import run_match
    from joinedup.mci.store import SourceRecord, session_factory

    with session_factory()() as session:
        _first_night(session)
        before, state = _contents(session), _state(session)
        assert all(before[t] for t in TABLES)
        ids = list(session.scalars(select(SourceRecord.id).order_by(SourceRecord.id)))
        _set_pending(session, ids[::3])  # a third of the index sent again, unchanged
        bulk.write_counts.clear()
        result = run_match(session, "night-1")
        session.commit()
        assert result.records_compared == len(ids[::3])
        assert {t: bulk.write_counts[t] for t in TABLES} == {t: 0 for t in TABLES}
        assert _contents(session) == before  # search-key row ids included: nothing rewritten
        after = _state(session)
        assert after["masters"] == state["masters"] and after["golden"] == state["golden"]
        assert after["reviews"] == state["reviews"] and after["events"] == state["events"]


def _changed(record: dict, n: int) -> dict:
    """A new address line for most, a new email for some, a new surname for a few."""
    out = dict(record)
    if n % 4 == 3:
        out["family_name"] = "Featherstonehaugh"
    elif n % 4 == 2:
        out["email"] = f"moved{n}@example.org"
    else:
        out["address_line_1"] = f"{n + 7} Incremental Close"
        out["postcode"] = "CF10 1AA"
    return out


def test_a_changed_records_keys_are_exactly_the_recomputed_set(project: Path, mci_db: str) -> None:
    from joinedup.mci import bulk
    from joinedup.mci import features as stored
    from joinedup.mci.blocking import DEFAULT_BLOCKING_RULES
    from joinedup.mci.match import _load_frame, run_match
    from joinedup.mci.model_store import current_model
    from joinedup.mci.standardise import standardise
    from joinedup.mci.store import SourceRecord, session_factory

    with session_factory()() as session:
        _first_night(session)
        model = current_model()
        rules = list(model[0].blocking_rules) if model else list(DEFAULT_BLOCKING_RULES)
        before = _contents(session)
        records = [r for r in session.scalars(select(SourceRecord).order_by(SourceRecord.id))
                   if r.record.get("family_name")][:40]
        changed = [r.id for r in records]
        for n, rec in enumerate(records):
            rec.record = _changed(rec.record, n)
        session.commit()
        _set_pending(session, changed + [changed[-1] + 1, changed[-1] + 2])  # and two unchanged ones
        bulk.write_counts.clear()
        run_match(session, "night-1")
        session.commit()
        after = _contents(session)

        # the stored rows and keys are what standardising the records from scratch gives
        fresh = standardise(_load_frame(session, changed))
        sig = stored.signature(rules)
        want_rows = {tuple(row[c.name] for c in stored.RecordFeatures.__table__.c)
                     for row in stored._feature_rows(fresh, sig)}
        got_rows = {r for r in after["record_features"] if r[0] in set(changed)}
        assert got_rows == want_rows
        keys = stored.compute_block_keys(fresh, rules)
        want_keys = {(int(k), int(r), int(i)) for r, i, k in zip(keys.record_id, keys.rule_index, keys.block_key)}
        got_keys = {k for k in after["record_block_keys"] if k[1] in set(changed)}
        assert got_keys == want_keys
        # the rest of the index is untouched
        assert {k for k in after["record_block_keys"] if k[1] not in set(changed)} == \
            {k for k in before["record_block_keys"] if k[1] not in set(changed)}
        old_keys = {k for k in before["record_block_keys"] if k[1] in set(changed)}
        assert bulk.write_counts["record_block_keys"] == len(old_keys ^ want_keys) < len(old_keys) + len(want_keys)
        assert bulk.write_counts["record_features"] == 2 * len(changed)  # each row deleted and written
        # every person's search keys are the per-record rule's, and only changed keys written
        assert after["person_search_keys"] == expected_search_keys(session)
        assert 0 < bulk.write_counts["person_search_keys"] == \
            len(before["person_search_keys"] ^ after["person_search_keys"])


def test_delete_rows_deletes_exactly_the_keys_given(mci_db: str) -> None:
    from joinedup.mci import bulk
    from joinedup.mci.features import RecordBlockKey, ensure_tables
    from joinedup.mci.store import SourceRecord, session_factory
    from joinedup.mci.schema import upgrade

    upgrade()
    with session_factory()() as session:
        ensure_tables(session)
        session.add_all([SourceRecord(id=i, source_system="t", source_key=str(i), content_hash="x", record={},
                                      first_run_id="r", last_run_id="r") for i in (1, 2)])
        session.flush()
        table = RecordBlockKey.__table__
        rows = [{"block_key": k, "record_id": r, "rule_index": 0} for k in (10, 11, 12) for r in (1, 2)]
        bulk.insert_rows(session, table, rows)
        assert bulk.delete_rows(session, table, ("block_key", "record_id"), [(10, 1), (12, 2), (10, 1), (99, 1)]) == 3
        assert bulk.delete_rows(session, table, ("block_key", "record_id"), []) == 0
        session.commit()
        left = set(session.execute(select(table.c.block_key, table.c.record_id)).all())
        assert left == {(10, 2), (11, 1), (11, 2), (12, 1)}
