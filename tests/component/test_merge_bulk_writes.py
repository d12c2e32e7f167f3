"""The merge's bulk writes (joinedup.mci.bulk) write exactly what the Core statements they
replace wrote, on SQLite (executemany) and PostgreSQL (COPY, and COPY + UPDATE ... FROM):

- inserted rows carry the same values, the columns' Python-side defaults (``at``,
  ``actor``) and the same NULL-versus-JSON-``null`` distinction;
- awkward text (tabs, newlines, backslashes, quotes, non-ASCII) survives COPY's escaping;
- an update sets only the given columns of the keyed rows (and ``updated_at``), and both
  are part of the caller's transaction: a rollback undoes them;
- ``autoflush`` writes the session's pending objects first, as the ORM statement did.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

AWKWARD = "O'Brien\tJr \\ \"Ann\"\nline two\r\u00e9\u0142\u4e2d"


def _events(session):  # noqa: ANN001, ANN202
    from joinedup.mci.store import PersonEvent

    table = PersonEvent.__table__
    return session.execute(select(table.c.master_id, table.c.kind, table.c.actor, table.c.reason,
                                  table.c.evidence, table.c.run_id, table.c.at).order_by(table.c.id)).all()


def test_inserted_rows_equal_what_the_core_insert_wrote(project: Path, mci_db: str) -> None:
    from joinedup.mci import bulk
    from joinedup.mci.store import PersonEvent, session_factory

    table = PersonEvent.__table__
    rows = [{"master_id": f"JU{i:08d}", "kind": "linked", "run_id": "r1", "reason": AWKWARD if i % 2 else None,
             "evidence": {"fields": [AWKWARD, i], "n": i * 0.5} if i % 3 else None} for i in range(1, 301)]
    bare = [{"master_id": "JU00000999", "kind": "created", "run_id": "r1"}]  # no reason, no evidence
    before = datetime.utcnow() - timedelta(seconds=1)
    with session_factory()() as session:
        session.execute(table.insert(), rows)
        session.execute(table.insert(), bare)
        expected = _events(session)
        session.execute(table.delete())
        assert bulk.insert_rows(session, table, rows) == 300
        assert bulk.insert_rows(session, table, bare) == 1
        assert bulk.insert_rows(session, table, []) == 0
        got = _events(session)
        nulls = session.execute(text("SELECT count(*) FROM person_events WHERE evidence IS NULL")).scalar()
        session.commit()
    strip = lambda found: [r[:-1] for r in found]  # noqa: E731 - all but the time
    assert strip(got) == strip(expected)
    assert all(r.actor == "matcher" and r.at >= before for r in got)  # the Python-side defaults
    assert got[0].reason == AWKWARD and got[0].evidence == {"fields": [AWKWARD, 1], "n": 0.5}
    # None given for a JSON column is JSON null (as the JSON type stores it); a column not
    # given at all is SQL NULL, as with the Core insert
    assert nulls == 1


def test_updates_set_only_the_given_columns_of_the_keyed_rows(project: Path, mci_db: str) -> None:
    from joinedup.mci import bulk
    from joinedup.mci.store import Person, session_factory

    table = Person.__table__
    with session_factory()() as session:
        bulk.insert_rows(session, table, [{"master_id": f"JU{i:08d}", "seq": i, "created_run_id": "r1"}
                                          for i in range(1, 11)])
        session.commit()
        stamped_before = dict(session.execute(select(table.c.master_id, table.c.updated_at)).all())
        changes = [{"master_id": f"JU{i:08d}", "golden": {"given_name": AWKWARD, "i": i},
                    "golden_sources": {"given_name": "housing"}} for i in (2, 5, 7)]
        assert bulk.update_rows(session, table, "master_id", changes) == 3
        session.commit()
        rows = {r.master_id: r for r in session.execute(select(table)).all()}
        assert bulk.update_rows(session, table, "master_id", [{"master_id": "JU00000003", "status": "merged"}]) == 1
        session.rollback()  # the caller's transaction: undone
        assert session.scalar(select(table.c.status).where(table.c.master_id == "JU00000003")) == "active"
    for mid, row in rows.items():
        i = int(mid[2:])
        if i in (2, 5, 7):
            assert row.golden == {"given_name": AWKWARD, "i": i} and row.golden_sources == {"given_name": "housing"}
            assert row.updated_at > stamped_before[mid]  # onupdate, as an UPDATE statement sets it
        else:
            assert row.golden == {} and row.golden_sources == {} and row.updated_at == stamped_before[mid]
        assert row.seq == i and row.status == "active" and row.created_run_id == "r1"


def test_autoflush_writes_pending_objects_first(project: Path, mci_db: str) -> None:
    from joinedup.mci import bulk
    from joinedup.mci.store import PersonEvent, session_factory

    with session_factory()() as session:
        session.add(PersonEvent(master_id="JU00000001", kind="split", run_id="r1"))
        bulk.insert_rows(session, PersonEvent.__table__, [{"master_id": "JU00000001", "kind": "golden_changed",
                                                           "run_id": "r1"}], autoflush=True)
        session.commit()
        assert [r.kind for r in _events(session)] == ["split", "golden_changed"]


def test_postgresql_writes_through_copy(project: Path, mci_db: str) -> None:
    """The bulk path is COPY on PostgreSQL with psycopg 3, executemany on SQLite."""
    from joinedup.mci import bulk
    from joinedup.mci.store import session_factory

    with session_factory()() as session:
        assert bulk.uses_copy(session) is mci_db.startswith("postgresql")


def test_rows_matching_finds_exactly_the_keyed_rows(project: Path, mci_db: str) -> None:
    from joinedup.mci import bulk
    from joinedup.mci.store import SourceRecord, session_factory

    table = SourceRecord.__table__
    staged = [{"source_system": system, "source_key": f"{system[0]}{i}", "content_hash": f"h{i}", "record": {},
               "special_category": False, "match_status": "pending", "first_run_id": "r1", "last_run_id": "r1",
               "staged_at": datetime.utcnow()} for system in ("housing", "revenues") for i in range(1200)]
    with session_factory()() as session:
        bulk.insert_rows(session, table, staged)
        asked = [("housing", f"h{i}") for i in range(0, 1200, 2)] + [("revenues", "r7"), ("revenues", "r7"),
                                                                   ("revenues", "h8"), ("hr", "r9"), ("housing", AWKWARD)]
        found = bulk.rows_matching(session, table, ("source_system", "source_key"), asked,
                                   ("source_system", "source_key", "content_hash"), chunk=250)
        assert bulk.rows_matching(session, table, ("source_system", "source_key"), [], ("id",)) == []
    assert sorted(found) == sorted([("housing", f"h{i}", f"h{i}") for i in range(0, 1200, 2)]
                                   + [("revenues", "r7", "h7")])


def test_staging_a_key_twice_in_one_batch_updates_the_first(project: Path, mci_db: str,
                                                            monkeypatch) -> None:  # noqa: ANN001
    """A batch that carries one record twice (in different chunks) stages it, then sees it
    changed, as when every chunk read the store afresh; a re-run changes nothing."""
    from joinedup.mci import staging
    from joinedup.mci.store import SourceRecord, session_factory

    monkeypatch.setattr(staging, "CHUNK", 3)
    first = [{"source_system": "revenues", "source_key": f"k{i}", "given_name": "Ann", "family_name": f"F{i}"}
             for i in range(7)]
    again = {**first[1], "family_name": "Changed"}
    with session_factory()() as session:
        counts = staging.stage_records(session, [*first, again], "r1")
        session.commit()
        assert (counts.new, counts.changed, counts.unchanged) == (7, 1, 0)
        rows = dict(session.execute(select(SourceRecord.source_key, SourceRecord.record)).all())
        assert len(rows) == 7 and rows["k1"]["family_name"] == "Changed"
        counts = staging.stage_records(session, [*first[2:], again], "r2")
        session.commit()
        assert (counts.new, counts.changed, counts.unchanged) == (0, 0, 6)
        counts = staging.stage_records(session, first[:2], "r3")
        assert (counts.new, counts.changed, counts.unchanged) == (0, 1, 1)


def test_delete_matching_deletes_exactly_the_keyed_rows(project: Path, mci_db: str) -> None:
    from joinedup.mci import bulk
    from joinedup.mci.store import Person, session_factory

    table = Person.__table__
    with session_factory()() as session:
        bulk.insert_rows(session, table, [{"master_id": f"JU{i:08d}", "seq": i, "created_run_id": "r1"}
                                          for i in range(1, 1301)])
        gone = [f"JU{i:08d}" for i in range(1, 1301, 3)] + ["JU99999999", "JU00000001"]
        bulk.delete_matching(session, table, "master_id", gone, chunk=100)
        bulk.delete_matching(session, table, "master_id", [])
        session.commit()
        left = set(session.scalars(select(table.c.master_id)))
    assert left == {f"JU{i:08d}" for i in range(1, 1301) if (i - 1) % 3}
