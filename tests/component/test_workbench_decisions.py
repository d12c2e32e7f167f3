"""Steward decisions on the real index: accept merges through the clustering rules, a
constraint refuses a merge, unmerge splits and the next night honours the split."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tests.component.test_workbench_setup import build_index, records_by_key


def _pair(session, a: str, b: str) -> int:  # noqa: ANN001
    from joinedup.mci.store import ReviewPair

    recs = records_by_key(session)
    ids = {recs[a].id, recs[b].id}
    return next(p.id for p in session.scalars(select(ReviewPair)) if {p.record_id_l, p.record_id_r} == ids)


def test_unmerge_is_honoured_by_the_next_night(project: Path, mci_db: str) -> None:
    from joinedup.mci.match import run_match
    from joinedup.mci.store import Person, PersonEvent, SourceRecord, StewardDecision, session_factory
    from joinedup.steward.decisions import DecisionError, unmerge

    build_index(project)
    with session_factory()() as session:
        recs = records_by_key(session)
        smith = recs["500000001"].master_id
        assert recs["500000002"].master_id == smith == recs["SC0000001"].master_id
        with pytest.raises(DecisionError, match="at least one record"):
            unmerge(session, smith, [r.id for r in recs.values() if r.master_id == smith], "sam")
        with pytest.raises(DecisionError, match="not linked"):
            unmerge(session, smith, [recs["500000004"].id], "sam")
        out = unmerge(session, smith, [recs["500000002"].id], "sam", "son of the same name")
        session.commit()
        assert out.new_master_id and out.new_master_id != smith and out.records_moved == 1
        assert session.get(SourceRecord, recs["500000002"].id).master_id == out.new_master_id
        assert session.get(Person, out.new_master_id).golden["given_name"] == "William"
        kinds = {(e.master_id, e.kind) for e in session.scalars(select(PersonEvent).where(PersonEvent.actor == "sam"))}
        assert {(smith, "split"), (out.new_master_id, "created"), (out.new_master_id, "linked")} <= kinds
        assert session.scalar(select(func.count()).select_from(StewardDecision).where(
            StewardDecision.kind == "cannot_link")) == 2  # the moved record against both that stayed
        # the next night re-matches the moved record (as if it changed): the rules would link it
        # by NI number and date of birth, the cannot-links forbid it
        session.execute(update(SourceRecord).where(SourceRecord.id == recs["500000002"].id).values(match_status="pending"))
        session.commit()
        run_match(session, "night-2")
        session.commit()
        assert session.get(SourceRecord, recs["500000002"].id).master_id == out.new_master_id
        assert session.get(SourceRecord, recs["500000001"].id).master_id == smith


def test_accept_merges_now_and_refuses_a_merge_a_constraint_forbids(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import Person, PersonEvent, ReviewPair, SourceRecord, StewardDecision, session_factory
    from joinedup.steward.decisions import DecisionError, accept_pair, defer_pair, reject_pair

    build_index(project)
    with session_factory()() as session:
        recs = records_by_key(session)
        hughes = _pair(session, "500000014", "500000015")
        kate_master = recs["500000015"].master_id
        out = accept_pair(session, hughes, "sam", "moved house")
        session.commit()
        survivor = recs["500000014"].master_id
        assert out.master_id == survivor and out.absorbed == [kate_master]
        assert session.get(SourceRecord, recs["500000015"].id).master_id == survivor
        absorbed = session.get(Person, kate_master)
        assert absorbed.status == "merged" and absorbed.merged_into == survivor
        assert session.get(Person, survivor).golden["postcode"] == "CF14 2AB"  # the most recent address
        assert session.scalar(select(PersonEvent).where(PersonEvent.kind == "merged", PersonEvent.actor == "sam")).other_master_id == kate_master
        with pytest.raises(DecisionError, match="already accepted"):
            defer_pair(session, hughes, "sam")
        session.rollback()

        # Gareth and Owen Price: rejected, then a later pair between them cannot be accepted
        price = _pair(session, "500000016", "500000017")
        reject_pair(session, price, "sam", "different people")
        session.commit()
        assert session.scalar(select(StewardDecision.kind).where(StewardDecision.record_id_l == min(
            recs["500000016"].id, recs["500000017"].id))) == "cannot_link"
        session.get(ReviewPair, price).status = "open"  # as if the pair came back
        session.flush()
        with pytest.raises(DecisionError, match="not the same person"):
            accept_pair(session, price, "sam")
        session.rollback()
        assert session.get(SourceRecord, recs["500000016"].id).master_id != session.get(SourceRecord, recs["500000017"].id).master_id


def test_accepting_a_pair_with_different_ni_numbers_is_refused(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import ReviewPair, session_factory
    from joinedup.steward.decisions import DecisionError, accept_pair

    build_index(project)
    with session_factory()() as session:
        recs = records_by_key(session)
        a, b = sorted((recs["500000011"].id, recs["500000012"].id))  # John Evans, two valid NI numbers
        session.add(ReviewPair(record_id_l=a, record_id_r=b, score=0.6, rule="test", run_id="t", evidence={}))
        session.commit()
        pair = session.scalar(select(ReviewPair.id).where(ReviewPair.record_id_l == a, ReviewPair.record_id_r == b))
        with pytest.raises(DecisionError, match="different valid NI numbers"):
            accept_pair(session, pair, "sam")


def test_a_split_after_an_accept_survives_the_next_night(project: Path, mci_db: str) -> None:
    """The split supersedes the earlier must-link, which the night would otherwise force back;
    the must-link is kept as history and the cannot-link on its pair says so, who and why."""
    from joinedup.mci.match import run_match
    from joinedup.mci.store import PersonEvent, SourceRecord, StewardDecision, session_factory
    from joinedup.steward.decisions import accept_pair, superseded_must_links, unmerge

    build_index(project)
    with session_factory()() as session:
        recs = records_by_key(session)
        catherine, kate = recs["500000014"].id, recs["500000015"].id
        out = accept_pair(session, _pair(session, "500000014", "500000015"), "sam")
        session.commit()
        must = session.scalar(select(StewardDecision).where(StewardDecision.kind == "must_link"))
        split = unmerge(session, out.master_id, [kate], "cara", "two different people after all")
        session.commit()
        kept = session.scalar(select(StewardDecision).where(StewardDecision.kind == "must_link"))
        assert (kept.id, kept.decided_by, kept.record_id_l, kept.record_id_r) == (must.id, "sam", must.record_id_l, must.record_id_r)
        cannot = session.scalar(select(StewardDecision).where(
            StewardDecision.kind == "cannot_link", StewardDecision.record_id_l == min(catherine, kate),
            StewardDecision.record_id_r == max(catherine, kate)))
        assert cannot.decided_by == "cara" and cannot.at >= must.at
        assert f"supersedes must-link #{must.id} (sam," in cannot.reason
        assert cannot.reason.endswith("two different people after all")
        assert superseded_must_links(list(session.scalars(select(StewardDecision)))) == {must.id: cannot.id}
        event = session.scalar(select(PersonEvent).where(PersonEvent.kind == "must_links_superseded"))
        assert event.actor == "cara" and event.evidence == {"must_link_ids": [must.id]}
        session.execute(update(SourceRecord).where(SourceRecord.id.in_([kate, catherine])).values(match_status="pending"))
        session.commit()
        run_match(session, "night-2")
        session.commit()
        assert session.get(SourceRecord, kate).master_id == split.new_master_id
        assert session.get(SourceRecord, catherine).master_id == out.master_id


def test_a_must_link_on_one_side_of_a_split_is_not_superseded(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import SourceRecord, StewardDecision, session_factory
    from joinedup.steward.decisions import accept_pair, superseded_must_links, unmerge

    build_index(project)
    with session_factory()() as session:
        recs = records_by_key(session)
        out = accept_pair(session, _pair(session, "500000014", "500000015"), "sam")
        session.commit()
        smith = recs["500000001"].master_id
        unmerge(session, smith, [recs["500000002"].id], "sam")  # another person: nothing crosses Hughes' link
        session.commit()
        decided = list(session.scalars(select(StewardDecision)))
        assert superseded_must_links(decided) == {}
        assert all("supersedes" not in (d.reason or "") for d in decided)
        assert session.get(SourceRecord, recs["500000015"].id).master_id == out.master_id
