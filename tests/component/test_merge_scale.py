"""The merge's scale paths keep the night's results (SQLite and PostgreSQL):

- the whole index read and standardised in chunks gives the same features as one frame;
- the features the cluster guard reads, made per record on demand, equal the frame's rows;
- the set-based golden refresh writes what survivorship gives each person (ties broken in
  record order), an event naming the fields that changed, nothing when nothing changed,
  and a Person the caller already holds reads the new golden record.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from tests.conftest import stage_council_night

RESIDENTS, SEED = 400, 11


def _stage(session, night: int = 0) -> int:  # noqa: ANN001
    return stage_council_night(session, RESIDENTS, SEED, night)


def test_the_index_standardised_in_chunks_equals_one_frame(project: Path, mci_db: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from joinedup.mci import match
    from joinedup.mci.standardise import standardise
    from joinedup.mci.store import session_factory

    with session_factory()() as session:
        staged = _stage(session)
        whole = standardise(match._load_frame(session)).sort_values("record_id", ignore_index=True)
        monkeypatch.setattr(match, "FULL_LOAD_CHUNK", 37)  # many chunks, the last one short
        chunked = match._standardised_index(session)
    assert len(chunked) == staged > 3 * 37
    assert chunked["record_id"].is_monotonic_increasing
    pd.testing.assert_frame_equal(chunked, whole)


def _survivorship_by_person(session) -> dict[str, tuple[dict, dict]]:  # noqa: ANN001
    from joinedup.mci.golden import golden_record
    from joinedup.mci.store import SourceRecord

    records: dict[str, list[dict]] = defaultdict(list)
    for mid, rec in session.execute(select(SourceRecord.master_id, SourceRecord.record)
                                    .where(SourceRecord.master_id.is_not(None)).order_by(SourceRecord.id)):
        records[mid].append(rec)
    return {mid: golden_record(recs) for mid, recs in records.items()}


def test_golden_refresh_writes_survivorship_and_events_only_for_changes(project: Path, mci_db: str) -> None:
    from joinedup.mci.golden import refresh_golden
    from joinedup.mci.match import run_match
    from joinedup.mci.staging import stage_records
    from joinedup.mci.store import Person, PersonEvent, SourceRecord, session_factory

    with session_factory()() as session:
        _stage(session)
        run_match(session, "night-0")
        session.commit()
        expected = _survivorship_by_person(session)
        stored = {p.master_id: (p.golden, p.golden_sources) for p in session.scalars(select(Person))}
        assert stored == expected  # every person of the first build, golden written in bulk
        assert any(len(sources) > 1 for _, sources in [(g, set(s.values())) for g, s in stored.values()])
        events = session.scalar(select(func.count()).select_from(PersonEvent).where(PersonEvent.kind == "golden_changed"))
        assert events == 0  # a first golden record is not a change

        # nothing changed: nothing written, no event
        assert refresh_golden(session, set(stored), "again") == 0
        assert session.scalar(select(func.count()).select_from(PersonEvent).where(PersonEvent.run_id == "again")) == 0

        # one person's only postcode moves: one change, one event naming the field
        sizes = dict(session.execute(select(SourceRecord.master_id, func.count()).group_by(SourceRecord.master_id)).all())
        solo = next(mid for mid, (golden, _) in sorted(stored.items()) if golden.get("postcode") and sizes[mid] == 1)
        record = session.execute(select(SourceRecord).where(SourceRecord.master_id == solo)).scalar_one()
        held = session.get(Person, solo)  # the caller holds the person before the refresh
        assert held.golden["postcode"] != "ZZ99 9ZZ"
        moved = {**record.record, "postcode": "ZZ99 9ZZ", "updated_at": "2099-01-01T00:00:00"}
        stage_records(session, [moved], "move")
        session.execute(SourceRecord.__table__.update().where(SourceRecord.id == record.id)
                        .values(master_id=solo))  # still the same person
        assert refresh_golden(session, {solo, *list(stored)[:50]}, "move") == 1
        event = session.execute(select(PersonEvent).where(PersonEvent.run_id == "move",
                                                          PersonEvent.kind == "golden_changed")).scalar_one()
        assert event.master_id == solo and event.evidence == {"fields": ["postcode"]}
        assert held.golden["postcode"] == "ZZ99 9ZZ"  # expired, read again
        session.commit()
        assert _survivorship_by_person(session)[solo] == (held.golden, held.golden_sources)


def test_a_model_of_an_older_specification_is_retrained_not_a_failed_night(project: Path, mci_db: str) -> None:
    """After an upgrade the current model file is for an older specification: the night
    retrains (and says so) instead of stopping; the old file is kept."""
    import json

    from joinedup.mci.match import run_match
    from joinedup.mci.model_store import CURRENT_POINTER, current_model_path
    from joinedup.mci.probabilistic import MODEL_FILE_FORMAT, MODEL_FILE_FORMAT_VERSION
    from joinedup.mci.store import session_factory
    from joinedup.mci.thresholds import load_thresholds

    settings = project / "schemas" / "match.yaml"
    settings.write_text(settings.read_text(encoding="utf-8").replace(
        "min_records_for_model: 1000", "min_records_for_model: 300"), encoding="utf-8")
    models = project / "var" / "models"
    models.mkdir(parents=True, exist_ok=True)
    old_file = models / "match_model_0.1_20200101T000000Z.json"
    old_file.write_text(json.dumps({"format": MODEL_FILE_FORMAT, "format_version": MODEL_FILE_FORMAT_VERSION,
                                    "spec_version": "0.1"}), encoding="utf-8")
    (models / CURRENT_POINTER).write_text(old_file.name, encoding="utf-8")
    with session_factory()() as session:
        _stage(session, 0)
        result = run_match(session, "night-0", thresholds=load_thresholds())
        session.commit()
    assert result.model_trained and "older specification" in result.mode_reason
    assert current_model_path() != old_file and old_file.exists()
