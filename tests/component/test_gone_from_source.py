"""A record a full extract no longer holds is flagged gone from source (kept, with its link and
history), cleared when delivered again; a quarantined record is still held; a replayed old night
and a changes extract flag nothing; an extract lacking more than the guard allows flags nothing
and fails the source loudly, its delivered records staged. Real nights through the pipeline
(CSV drops of tests/fixtures/revenues_small.csv), on both stores."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import REPO, csv_drop_source

FIXTURE = REPO / "tests" / "fixtures" / "revenues_small.csv"
LEAVER = "500000009"  # Margaret O'Brien: the record the source deletes
FAILS_TONIGHT = "500000004"  # staged on night 1, quarantined on night 2 (still held by the source)


def _deliver(project: Path, day: str, *, without: tuple[str, ...] = (), bad_postcode: tuple[str, ...] = ()) -> None:
    """Tonight's whole extract: the fixture less ``without``, with an invalid postcode on
    ``bad_postcode`` (fails the quality gate)."""
    header, *rows = FIXTURE.read_text(encoding="utf-8").splitlines()
    kept = []
    for row in rows:
        key = row.split(",", 1)[0]
        if key in without:
            continue
        if key in bad_postcode:
            row = row.replace("NP20 1AB", "NOT A POSTCODE")
        kept.append(row)
    folder = project / "var" / "drops" / "revenues"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"revenues_{day}.csv").write_text("\n".join([header, *kept]) + "\n", encoding="utf-8")


def _record(session, key: str):  # noqa: ANN001, ANN202
    from joinedup.mci.store import SourceRecord

    return session.scalar(select(SourceRecord).where(SourceRecord.source_system == "revenues",
                                                     SourceRecord.source_key == key))


def _events(session, record_id: int) -> list[tuple[str, str, str]]:  # noqa: ANN001
    from joinedup.mci.store import PersonEvent

    return [(e.kind, e.run_id, e.master_id) for e in session.scalars(
        select(PersonEvent).where(PersonEvent.source_record_id == record_id,
                                  PersonEvent.kind.in_(["gone_from_source", "back_in_source"]))
        .order_by(PersonEvent.id))]


def test_a_record_gone_from_a_full_extract_is_flagged_kept_and_cleared_when_back(project: Path, mci_db: str) -> None:
    from joinedup.api.persons import person_view
    from joinedup.mci.store import Person, session_factory
    from joinedup.pipeline import merge, sync_source

    csv_drop_source(project, only=True, max_failure_rate=0.5, extract="full")
    _deliver(project, "20260105")
    sync_source("revenues", "night-1")
    merge("night-1")
    with session_factory()() as session:
        leaver = _record(session, LEAVER)
        leaver_id, master = leaver.id, leaver.master_id
    assert master is not None

    _deliver(project, "20260106", without=(LEAVER,), bad_postcode=(FAILS_TONIGHT,))
    out = sync_source("revenues", "night-2")
    assert (out["gone_from_source"], out["back_in_source"], out["gone_held_back"]) == (1, 0, 0)
    assert out["quarantined"] >= 1 and out["stage_problems"] == []
    with session_factory()() as session:
        leaver = _record(session, LEAVER)
        assert leaver.gone_run_id == "night-2" and leaver.gone_at is not None
        assert leaver.master_id == master and leaver.record["family_name"]  # kept, linked, with its values
        quarantined = _record(session, FAILS_TONIGHT)
        assert quarantined.gone_run_id is None  # failed a rule tonight, but its source still holds it
        assert _events(session, leaver_id) == [("gone_from_source", "night-2", master)]
        view = person_view(session, session.get(Person, master), socialcare=True)
        mine = [r for r in view["source_records"] if r["source_key"] == LEAVER]
        assert mine[0]["held_by_source"] is False and mine[0]["gone_from_source_at"]
        assert [i["current"] for i in view["involvements"] if i["source_key"] == LEAVER] == [False]
        others = [r for r in view["source_records"] if r["source_key"] != LEAVER]
        assert all(r["held_by_source"] and r["gone_from_source_at"] is None for r in others)

    _deliver(project, "20260107")
    out = sync_source("revenues", "night-3")
    assert (out["gone_from_source"], out["back_in_source"]) == (0, 1)
    with session_factory()() as session:
        leaver = _record(session, LEAVER)
        assert leaver.gone_run_id is None and leaver.gone_at is None
        assert _events(session, leaver_id) == [("gone_from_source", "night-2", master),
                                                ("back_in_source", "night-3", master)]


def test_an_extract_lacking_more_than_the_guard_allows_flags_nothing_and_fails_loudly(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import Run, SourceRecord, session_factory
    from joinedup.pipeline import sync_source
    from joinedup.quality.gate import QualityGateFailed

    csv_drop_source(project, only=True, max_failure_rate=0.5, extract="full",
                    gone_guard="{max_share: 0.1, min_records: 2}")
    _deliver(project, "20260105")
    sync_source("revenues", "night-1")
    with session_factory()() as session:
        held = session.scalar(select(SourceRecord.source_key).where(SourceRecord.source_key == LEAVER))
    assert held == LEAVER

    # A truncated extract: only the first four records, one of them changed.
    header, *rows = FIXTURE.read_text(encoding="utf-8").splitlines()
    first = [r.replace("Cardiff,cf10 1aa", "Cardiff,CF10 1AB") for r in rows[:4]]
    (project / "var" / "drops" / "revenues" / "revenues_20260106.csv").write_text(
        "\n".join([header, *first]) + "\n", encoding="utf-8")
    with pytest.raises(QualityGateFailed) as refused:
        sync_source("revenues", "night-2")
    message = str(refused.value)
    assert "lacks 6 of the 10 records" in message and "gone_guard" in message and "adapters/revenues.yaml" in message
    assert "O'Brien" not in message and LEAVER not in message  # counts and names of things, no people
    with session_factory()() as session:
        assert session.scalar(select(SourceRecord.id).where(SourceRecord.gone_run_id.is_not(None))) is None
        changed = _record(session, "500000001")
        assert changed.record["postcode"] == "CF10 1AB" and changed.last_run_id == "night-2"  # delivered rows staged
        run = session.scalar(select(Run).where(Run.run_id == "night-2", Run.stage == "stage:revenues"))
        assert run.status == "failed" and run.figures["gone_held_back"] == 6

    # A retry of the night has nothing left to stage: the failure stands, its figures kept.
    with pytest.raises(QualityGateFailed, match="lacks 6 of the 10 records"):
        sync_source("revenues", "night-2")
    with session_factory()() as session:
        run = session.scalar(select(Run).where(Run.run_id == "night-2", Run.stage == "stage:revenues"))
        assert run.status == "failed" and run.figures["gone_held_back"] == 6 and run.figures["changed"] == 1


def test_an_engineer_accepts_what_the_guard_held_back(project: Path, mci_db: str) -> None:
    """The source really did delete four accounts at once: `joinedup mci accept-gone` flags them,
    naming the engineer in each record's history, and the night passes when run again."""
    from typer.testing import CliRunner

    from joinedup.cli import app
    from joinedup.mci.store import PersonEvent, Run, SourceRecord, session_factory
    from joinedup.night import done_tonight
    from joinedup.pipeline import merge, sync_source, verdict
    from joinedup.quality.gate import QualityGateFailed

    csv_drop_source(project, only=True, max_failure_rate=0.5, extract="full",
                    gone_guard="{max_share: 0.1, min_records: 2}")
    _deliver(project, "20260105")
    sync_source("revenues", "night-1")
    merge("night-1")
    with session_factory()() as session:
        held = set(session.scalars(select(SourceRecord.source_key)))
    refused = CliRunner().invoke(app, ["mci", "accept-gone", "revenues", "--by", "eng.test"])
    assert refused.exit_code == 2 and "held no record back: nothing to accept" in refused.output

    purged = sorted(held)[-4:]  # four of the ten accounts: more than the guard's two
    _deliver(project, "20260106", without=tuple(purged))
    with pytest.raises(QualityGateFailed):
        sync_source("revenues", "night-2")
    result = CliRunner().invoke(app, ["mci", "accept-gone", "revenues", "--by", "eng.test"])
    assert result.exit_code == 0, result.output
    assert "4 records of revenues flagged gone from source (the extract of run night-2), accepted by eng.test" \
        in result.output
    with session_factory()() as session:
        gone = set(session.scalars(select(SourceRecord.source_key).where(SourceRecord.gone_run_id == "night-2")))
        assert gone == set(purged)
        actors = session.scalars(select(PersonEvent.actor).where(PersonEvent.kind == "gone_from_source")).all()
        assert actors and set(actors) == {"eng.test"}
        run = session.scalar(select(Run).where(Run.run_id == "night-2", Run.stage == "stage:revenues"))
        assert run.status == "ok" and run.figures["stage_problems"] == [] and run.figures["gone_held_back"] == 0
        assert run.figures["gone_from_source"] == 4 and run.figures["gone_accepted"]["by"] == "eng.test"
    # The night's DAG run again: its stage task finds the step done for the night, the verdict passes.
    done = done_tonight("night-2", "stage:revenues")
    assert done is not None and done["gone_from_source"] == 4
    assert verdict({"source": "revenues", **done})["stage_problems"] == []
    again = CliRunner().invoke(app, ["mci", "accept-gone", "revenues", "--by", "eng.test"])
    assert again.exit_code == 2 and "nothing to accept" in again.output


def test_a_replayed_old_night_and_a_changes_extract_flag_nothing(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import SourceRecord, session_factory
    from joinedup.pipeline import replay, sync_source

    csv_drop_source(project, only=True, max_failure_rate=0.5, extract="full")
    _deliver(project, "20260105", without=(LEAVER,))
    sync_source("revenues", "night-1")
    _deliver(project, "20260106")  # the leaver appears on night 2 ...
    sync_source("revenues", "night-2")
    out = replay("revenues", "replay-1", nights=["night-1"])  # ... and night 1, without it, is replayed
    assert out.get("gone_from_source", 0) == 0
    with session_factory()() as session:
        assert _record(session, LEAVER).gone_run_id is None

    csv_drop_source(project, only=True, max_failure_rate=0.5)  # the same source as a changes extract
    _deliver(project, "20260107", without=(LEAVER, "500000001"))
    out = sync_source("revenues", "night-3")
    assert "gone_from_source" not in out
    with session_factory()() as session:
        assert session.scalar(select(SourceRecord.id).where(SourceRecord.gone_run_id.is_not(None))) is None


def test_the_synthetic_councils_hr_purge_is_flagged_gone(project: Path, mci_db: str) -> None:
    """Payroll deletes a leaver some nights after they leave (joinedup.simulators.lifecycle): on
    night 9 of this council one leaver goes. Through the real HR adapter (fixed-width drop),
    exactly the keys night 9's extract lacks are flagged."""
    from joinedup.demo import synthetic_council
    from joinedup.mci.store import SourceRecord, session_factory
    from joinedup.pipeline import sync_source
    from joinedup.simulators.council import build_council
    from joinedup.simulators.history import RecordHistory

    residents, seed = 3000, 2026
    held = [{r["EMPNO"] for r in build_council(residents, seed=seed, night=n, history=RecordHistory.named("full"))
             .records["hr"]} for n in (8, 9)]
    purged = held[0] - held[1]
    assert len(purged) == 1  # what makes this council's night 9 the one to test
    for night in (8, 9):
        with synthetic_council(residents, seed, night, history="full"):
            out = sync_source("hr", f"night-{night}")
    assert out["gone_from_source"] == 1 and out["stage_problems"] == []
    with session_factory()() as session:
        gone = set(session.scalars(select(SourceRecord.source_key).where(
            SourceRecord.source_system == "hr", SourceRecord.gone_run_id == "night-9")))
    assert gone == purged


def test_a_gone_record_stops_giving_the_golden_record_its_values_while_a_held_one_has_them(
        project: Path, mci_db: str) -> None:
    """William Smith has two council tax accounts (500000001 and 500000002: one NI number). The
    first gives his golden address; when the extract no longer holds it, his golden address
    comes from the account still held, and his e-mail, which only the gone account has, stays."""
    from joinedup.mci.store import Person, PersonEvent, session_factory
    from joinedup.pipeline import merge, sync_source

    first, second = "500000001", "500000002"
    csv_drop_source(project, only=True, max_failure_rate=0.5, extract="full")
    _deliver(project, "20260105")
    sync_source("revenues", "night-1")
    merge("night-1")
    with session_factory()() as session:
        master = _record(session, first).master_id
        assert _record(session, second).master_id == master
        person = session.get(Person, master)
        assert person.golden_sources["address_line_1"] == f"revenues/{first}"  # the two accounts tie: the first wins
        assert person.golden["address_line_1"] == "14 High Street" and person.golden["email"] == "bill@example.org"

    _deliver(project, "20260106", without=(first,))
    out = sync_source("revenues", "night-2")
    assert (out["gone_from_source"], out["golden_changed"]) == (1, 1)
    with session_factory()() as session:
        person = session.get(Person, master)
        assert person.golden["address_line_1"] == "14 High St"
        assert person.golden_sources["address_line_1"] == f"revenues/{second}"
        assert person.golden["email"] == "bill@example.org" and person.golden_sources["email"] == f"revenues/{first}"
        changed = session.scalars(select(PersonEvent).where(PersonEvent.master_id == master,
                                                            PersonEvent.kind == "golden_changed",
                                                            PersonEvent.run_id == "night-2")).all()
        assert len(changed) == 1 and "address_line_1" in changed[0].evidence["fields"]

    _deliver(project, "20260107")  # held again: the first account gives the address again
    out = sync_source("revenues", "night-3")
    assert (out["back_in_source"], out["golden_changed"]) == (1, 1)
    with session_factory()() as session:
        assert session.get(Person, master).golden_sources["address_line_1"] == f"revenues/{first}"


def test_golden_refresh_applies_changed_survivorship_rules_to_every_person(project: Path, mci_db: str) -> None:
    """With ``prefer_held: false`` a gone record competes like any other; the rules apply to a
    person only when their golden record is worked out again: `joinedup mci golden-refresh`
    does it for everyone, with an event for each change."""
    from typer.testing import CliRunner

    from joinedup.cli import app
    from joinedup.mci.store import Person, PersonEvent, session_factory
    from joinedup.pipeline import merge, sync_source

    first = "500000001"
    csv_drop_source(project, only=True, max_failure_rate=0.5, extract="full")
    _deliver(project, "20260105")
    sync_source("revenues", "night-1")
    merge("night-1")
    _deliver(project, "20260106", without=(first,))
    sync_source("revenues", "night-2")
    with session_factory()() as session:
        master = _record(session, first).master_id
        assert session.get(Person, master).golden_sources["address_line_1"] == "revenues/500000002"
        persons = session.query(Person).filter(Person.status == "active").count()

    rules = project / "schemas" / "survivorship.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("prefer_held: true", "prefer_held: false"),
                     encoding="utf-8")
    result = CliRunner().invoke(app, ["mci", "golden-refresh"])
    assert result.exit_code == 0, result.output
    assert f"for {persons:,} persons: 1 changed" in result.output
    with session_factory()() as session:
        assert session.get(Person, master).golden_sources["address_line_1"] == f"revenues/{first}"
        events = session.scalars(select(PersonEvent.run_id).where(PersonEvent.kind == "golden_changed")).all()
        assert len(events) == 2 and events[-1].startswith("golden-refresh__")  # night 2's, and this one

    again = CliRunner().invoke(app, ["mci", "golden-refresh"])
    assert "persons: 0 changed" in again.output  # nothing left to change


def test_retention_removes_records_gone_from_source_longer_than_its_period(project: Path, mci_db: str) -> None:
    """The hub does not keep what the system of record deleted: `joinedup retention apply`
    removes records gone from source for longer than ``gone_from_source_days`` (their match
    features, blocking keys and review pairs with them). A person keeping other records gets
    a new golden record; one left with none is marked erased; newer gone records stay."""
    from datetime import timedelta

    from sqlalchemy import func, update

    from joinedup.api.models import PersonSearchKey
    from joinedup.mci.features import RecordBlockKey, RecordFeatures
    from joinedup.mci.store import Person, PersonEvent, SourceRecord, session_factory, utcnow
    from joinedup.pipeline import merge, sync_source
    from joinedup.privacy.retention import apply_retention

    csv_drop_source(project, only=True, max_failure_rate=0.5, extract="full")
    _deliver(project, "20260105")
    sync_source("revenues", "night-1")
    merge("night-1")
    with session_factory()() as session:
        smith = _record(session, "500000001").master_id  # William Smith: two accounts
        alone = {mid: n for mid, n in session.execute(select(SourceRecord.master_id, func.count())
                                                      .group_by(SourceRecord.master_id)).all()}
        single = next(k for k in session.scalars(select(SourceRecord.source_key).order_by(SourceRecord.source_key))
                      if k not in ("500000001", "500000002") and alone[_record(session, k).master_id] == 1)
        lone_master = _record(session, single).master_id
        recent = next(k for k in session.scalars(select(SourceRecord.source_key).order_by(SourceRecord.source_key.desc()))
                      if k not in ("500000001", "500000002", single))
        ids = {k: _record(session, k).id for k in ("500000001", single, recent)}
    _deliver(project, "20260106", without=("500000001", single, recent))
    assert sync_source("revenues", "night-2")["gone_from_source"] == 3
    with session_factory()() as session:  # two of them went 100 days ago, the third 10 days ago
        for key, days in (("500000001", 100), (single, 100), (recent, 10)):
            session.execute(update(SourceRecord).where(SourceRecord.id == ids[key])
                            .values(gone_at=utcnow() - timedelta(days=days)))
        session.commit()

    assert apply_retention(dry_run=True)["gone_from_source_records_deleted"] == 2
    out = apply_retention()
    assert out["gone_from_source_records_deleted"] == 2 and out["persons_left_with_no_record"] == 1
    with session_factory()() as session:
        assert _record(session, "500000001") is None and _record(session, single) is None
        assert _record(session, recent) is not None  # gone for 10 days: kept
        removed = [ids["500000001"], ids[single]]
        for table in (RecordFeatures, RecordBlockKey):
            assert session.scalar(select(func.count()).select_from(table).where(table.record_id.in_(removed))) == 0
        person = session.get(Person, smith)
        assert person.status == "active" and person.golden_sources["address_line_1"] == "revenues/500000002"
        assert "email" not in person.golden  # only the removed account had one
        lone = session.get(Person, lone_master)
        assert lone.status == "erased" and lone.golden == {}
        assert session.scalar(select(func.count()).select_from(PersonSearchKey)
                              .where(PersonSearchKey.master_id == lone_master)) == 0
        events = session.scalars(select(PersonEvent).where(PersonEvent.kind == "removed_by_retention")).all()
        assert sorted(e.master_id for e in events) == sorted([smith, lone_master])
        assert all("Smith" not in (e.reason or "") for e in events)
    assert apply_retention()["gone_from_source_records_deleted"] == 0  # nothing left to remove
