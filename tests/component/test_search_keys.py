"""The search-key index written set-based and in batches (joinedup.api.search_keys), on SQLite
and PostgreSQL: a refresh and a full build give the very rows the per-record rule gives, the
batch and IN-list sizes change nothing, special-category keys stay restricted, merged persons
lose their keys, and the caller's pending changes are seen."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.component.test_api_support import build_index, person


def _index(session) -> set[tuple[str, str, bool]]:  # noqa: ANN001
    from joinedup.api.models import PersonSearchKey

    return set(session.execute(select(PersonSearchKey.master_id, PersonSearchKey.key, PersonSearchKey.restricted)).all())


def _expected(session) -> set[tuple[str, str, bool]]:  # noqa: ANN001
    """The index as the rule says, one record at a time (the oracle the batched code must equal)."""
    import pandas as pd

    from joinedup.api.search_keys import feature_keys
    from joinedup.mci.standardise import standardise
    from joinedup.mci.store import Person, SourceRecord

    rows = session.execute(select(SourceRecord.id, SourceRecord.master_id, SourceRecord.special_category,
                                  SourceRecord.record).join(Person, Person.master_id == SourceRecord.master_id)
                           .where(Person.status == "active")).all()
    open_keys: dict[str, set[str]] = {}
    special: dict[str, set[str]] = {}
    for r in rows:
        feats = standardise(pd.DataFrame([{**r.record, "record_id": r.id}])).to_dict("records")[0]
        (special if r.special_category else open_keys).setdefault(r.master_id, set()).update(feature_keys(feats))
    out = {(m, k, False) for m, keys in open_keys.items() for k in keys}
    out |= {(m, k, True) for m, keys in special.items() for k in keys - open_keys.get(m, set())}
    return out


@pytest.fixture
def index(mci_db: str) -> str:
    build_index()
    return mci_db


def test_the_nights_index_equals_the_per_record_rule(index: str) -> None:
    from joinedup.mci.store import session_factory

    with session_factory()() as session:
        got, want = _index(session), _expected(session)
    assert got == want
    assert any(k.startswith("nr:S530|WILLIAM") for _, k, _ in got)  # Smith's sound + William's root


@pytest.mark.parametrize("batch,chunk", [(1, 1), (2, 3), (5000, 500)])
def test_build_and_refresh_give_the_same_rows_whatever_the_batch(index: str, batch: int, chunk: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from joinedup.api import search_keys
    from joinedup.api.models import PersonSearchKey
    from joinedup.mci import bulk
    from joinedup.mci.store import Person, session_factory

    monkeypatch.setattr(search_keys, "BATCH_PERSONS", batch)
    monkeypatch.setattr(search_keys, "CHUNK", chunk)
    monkeypatch.setattr(bulk, "WRITE_CHUNK", 4)  # the executemany path in small slices
    with session_factory()() as session:
        want = _expected(session)
        written = search_keys.build_search_keys(session)
        session.commit()
        assert _index(session) == want and written == len(want)
        masters = list(session.scalars(select(Person.master_id)))
        # nothing changed since the build: the refresh writes nothing and the index stands
        assert search_keys.refresh_search_keys(session, masters + [None, "JU99999999"]) == 0
        session.commit()
        assert _index(session) == want
        session.execute(PersonSearchKey.__table__.delete())  # an empty index is filled in full
        assert search_keys.refresh_search_keys(session, masters) == len(want)
        session.commit()
        assert _index(session) == want


def test_keys_only_social_care_gives_are_restricted(index: str) -> None:
    from joinedup.mci.store import SourceRecord, session_factory

    with session_factory()() as session:
        keys = _index(session)
        pryce = session.scalar(select(SourceRecord.master_id).where(SourceRecord.source_key == "SC0000002"))
        william = session.scalar(select(SourceRecord.master_id).where(SourceRecord.source_key == "500000001"))
    pryce_keys = {(k, r) for m, k, r in keys if m == pryce}
    assert pryce_keys and all(r for _, r in pryce_keys)  # known only to social care
    william_keys = {k: r for m, k, r in keys if m == william}
    assert william_keys["dob:1961-04-03"] is False  # open records give it too: open


def test_refresh_follows_the_callers_pending_changes(index: str) -> None:
    """A merge refreshes inside its own transaction, before commit: a person it merged away
    loses every key, the survivor gains the moved record's keys."""
    from joinedup.api.search_keys import refresh_search_keys
    from joinedup.mci.store import Person, SourceRecord, session_factory

    with session_factory()() as session:
        record = session.scalar(select(SourceRecord).where(SourceRecord.source_key == "500000009"))
        loser = record.master_id
        william = session.scalar(select(SourceRecord.master_id).where(SourceRecord.source_key == "500000001"))
        record.master_id = william
        session.get(Person, loser).status = "merged"
        refresh_search_keys(session, [loser, william])  # no flush by the caller
        session.commit()
        keys = _index(session)
        assert not [k for m, k, _ in keys if m == loser]
        assert (william, "ni:JK112233", False) in keys or (william, "dob:1944-08-07", False) in keys
        assert _index(session) == _expected(session)


def test_key_rows_marks_a_key_restricted_only_when_no_open_record_gives_it() -> None:
    from joinedup.api.search_keys import key_rows

    open_rec = person("revenues", "1", given_name="Ann", family_name="Lee", date_of_birth="1980-05-06")
    special_rec = person("socialcare", "SC1", given_name="Ann", family_name="Lee", date_of_birth="1980-05-06",
                         postcode="CF10 1AA")
    rows = key_rows([(1, "JU1", False, open_rec), (2, "JU1", True, special_rec), (3, "JU2", True, special_rec)])
    by = {(r["master_id"], r["key"]): r["restricted"] for r in rows}
    assert by[("JU1", "dob:1980-05-06")] is False
    assert by[("JU1", "pc:CF10 1AA")] is True
    assert by[("JU2", "dob:1980-05-06")] is True
    assert len(rows) == len(by)  # each key once per person
    assert key_rows([]) == []
