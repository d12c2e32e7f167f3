"""Two nights of the synthetic council through the MCI store (SQLite and PostgreSQL):
night 0 trains and saves the model and builds the index; night 1 compares only the new
and changed records, and the master IDs of everyone else stay as they were."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from tests.conftest import stage_council_night

RESIDENTS, SEED = 1_100, 5


def _stage_night(session, night: int) -> int:  # noqa: ANN001
    return stage_council_night(session, RESIDENTS, SEED, night)


def _masters(session) -> dict[int, str]:  # noqa: ANN001
    from joinedup.mci.store import SourceRecord

    return dict(session.execute(select(SourceRecord.id, SourceRecord.master_id)).all())


def test_two_nights_keep_master_ids_and_compare_only_changes(project: Path, mci_db: str) -> None:
    from joinedup.mci.match import run_match
    from joinedup.mci.model_store import current_model_path
    from joinedup.mci.store import Person, PersonEvent, SourceRecord, session_factory

    with session_factory()() as session:
        staged = _stage_night(session, 0)
        first = run_match(session, "night-0")
        session.commit()
        assert first.records_compared == staged
        assert first.mode == "rules+model" and first.model_trained
        model_file = current_model_path()
        assert model_file is not None and model_file.parent == project / "var" / "models"
        assert first.model_file == str(model_file)
        model_links = [e.evidence for e in session.scalars(select(PersonEvent).where(PersonEvent.kind == "linked"))
                       if e.evidence and e.evidence.get("fields")]
        assert model_links, "no link carries the model's per-field evidence"
        assert all(e["model_file"] == str(model_file) for e in model_links)
        assert {"field", "level", "match_weight"} <= set(model_links[0]["fields"][0])
        before = _masters(session)
        assert None not in before.values()

        changed = _stage_night(session, 1)
        pending = set(session.scalars(select(SourceRecord.id).where(SourceRecord.match_status == "pending")))
        assert 0 < changed == len(pending) < staged // 10
        second = run_match(session, "night-1")
        session.commit()
        assert second.records_compared == changed
        assert not second.model_trained and second.model_file == str(model_file)  # the saved model is reused
        after = _masters(session)
        absorbed = {p.master_id for p in session.scalars(select(Person).where(Person.status == "merged"))}
        moved = [rid for rid, mid in before.items() if rid not in pending and after[rid] != mid]
        assert all(before[rid] in absorbed for rid in moved)  # only a recorded merge moves a record
        assert len(moved) <= second.merges * 3
        kept = sum(1 for rid, mid in before.items() if after[rid] == mid)
        assert kept >= 0.99 * len(before)
        assert session.scalar(select(func.count()).select_from(SourceRecord).where(
            SourceRecord.match_status == "pending")) == 0
