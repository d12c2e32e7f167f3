"""A steward's decisions on the index, applied now and kept as constraints for every night.

- ``accept_pair``  the two records are one person: a must-link, and the two persons merge now,
                   through the same clustering rules the nightly match uses (``plan_clusters``,
                   refusing a merge that breaks a cannot-link or joins different NI/NHS numbers);
- ``reject_pair``  never one person: a cannot-link;
- ``defer_pair``   not sure yet: the pair leaves the top of the queue, with the comment;
- ``unmerge``      split chosen records off a person into a new master id; cannot-links between
                   the two groups so the next night does not join them again. A must-link that
                   crosses the split is superseded (a cannot-link on its pair names it), never
                   deleted: the old intent stays on record beside the new one.

Nothing is rewritten: merges and splits are ``person_events``; the absorbed person row stays
(status ``merged``). Each function adds to the caller's session and leaves the commit to it,
so the decision and its audit entry commit together.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from joinedup.mci.cluster import plan_clusters
from joinedup.mci.golden import refresh_golden
from joinedup.mci.match import master_id_for
from joinedup.mci.standardise import standardise
from joinedup.mci.store import Person, PersonEvent, ReviewPair, SourceRecord, StewardDecision, utcnow

DECIDABLE = ("open", "deferred")


class DecisionError(ValueError):
    """A decision that cannot be applied; the message says why and what to do instead."""


@dataclass
class Outcome:
    pair_id: int | None = None
    status: str = ""
    master_id: str | None = None  # the person the steward should look at next
    absorbed: list[str] = field(default_factory=list)
    new_master_id: str | None = None
    records_moved: int = 0
    message: str = ""


def steward_run_id(username: str) -> str:
    return f"steward__{username}__{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}"


def _open_pair(session: Session, pair_id: int) -> ReviewPair:
    pair = session.scalar(select(ReviewPair).where(ReviewPair.id == pair_id).with_for_update())
    if pair is None:
        raise DecisionError(f"review pair {pair_id} does not exist")
    if pair.status not in DECIDABLE:
        raise DecisionError(f"review pair {pair_id} was already {pair.status} by {pair.decided_by}; "
                            "reload the queue")
    return pair


def _close(pair: ReviewPair, status: str, username: str, comment: str | None) -> None:
    pair.status, pair.decided_by, pair.decided_at = status, username, utcnow()
    pair.comment = (comment or "").strip() or None


def _cannot_links(session: Session) -> set[frozenset[int]]:
    rows = session.execute(select(StewardDecision.record_id_l, StewardDecision.record_id_r)
                           .where(StewardDecision.kind == "cannot_link")).all()
    return {frozenset(r) for r in rows}


def _identity_keys(session: Session, record_ids: set[int]) -> pd.DataFrame:
    rows = session.execute(select(SourceRecord.id, SourceRecord.record).where(SourceRecord.id.in_(record_ids))).all()
    feats = standardise(pd.DataFrame([{**rec, "record_id": rid} for rid, rec in rows]))
    return feats.set_index("record_id")[["ni_key", "nhs_number"]]


def why_not_one_person(session: Session, left: set[int], right: set[int]) -> str | None:
    """The hard constraint that forbids joining two groups of records, or None."""
    cannot = _cannot_links(session)
    if any(frozenset((a, b)) in cannot for a in left for b in right):
        return "a steward decided earlier that records of these two persons are not the same person"
    keys = _identity_keys(session, left | right)
    for column, label in (("ni_key", "NI numbers"), ("nhs_number", "NHS numbers")):
        if keys[column].dropna().loc[lambda s: s != ""].nunique() > 1:
            return f"the two persons have different valid {label}"
    return None


def _members(session: Session, master_id: str) -> set[int]:
    return set(session.scalars(select(SourceRecord.id).where(SourceRecord.master_id == master_id)))


def accept_pair(session: Session, pair_id: int, username: str, comment: str | None = None) -> Outcome:
    """Same person: record a must-link and merge the two persons now."""
    pair = _open_pair(session, pair_id)
    left, right = (session.get(SourceRecord, rid) for rid in (pair.record_id_l, pair.record_id_r))
    if left.master_id is None or right.master_id is None:
        raise DecisionError(f"a record of pair {pair_id} has no master id yet; run the night's merge first")
    run_id = steward_run_id(username)
    outcome = Outcome(pair_id=pair_id, status="accepted")
    if left.master_id != right.master_id:
        members = {left.master_id: _members(session, left.master_id), right.master_id: _members(session, right.master_id)}
        seqs = dict(session.execute(select(Person.master_id, Person.seq)
                                    .where(Person.master_id.in_(list(members)))).all())
        expand = lambda ids: set().union(*(members[m] for m in {session.get(SourceRecord, i).master_id for i in ids}))  # noqa: E731
        refusal: list[str] = []

        def may_join(a: set[int], b: set[int]) -> bool:
            why = why_not_one_person(session, expand(a), expand(b))
            if why:
                refusal.append(why)
            return why is None

        def no_new_master() -> str:  # both records carry a master id: the plan never needs one
            raise DecisionError("internal: a merge of two existing persons asked for a new master id")

        plan = plan_clusters([left.id, right.id], [(left.id, right.id)],
                             {left.id: left.master_id, right.id: right.master_id}, seqs, may_join, no_new_master)
        if plan.refused:
            raise DecisionError(f"pair {pair_id} cannot be accepted: {refusal[0]}. Reject it, or unmerge first.")
        for absorbed, survivor in plan.merges:
            session.execute(update(Person).where(Person.master_id == absorbed).values(status="merged", merged_into=survivor))
            moved = session.execute(update(SourceRecord).where(SourceRecord.master_id == absorbed)
                                    .values(master_id=survivor, match_status="matched")).rowcount
            session.add(PersonEvent(master_id=survivor, kind="merged", other_master_id=absorbed, run_id=run_id,
                                    actor=username, reason=f"steward accepted review pair {pair_id}",
                                    evidence={"pair_id": pair_id, "records_moved": moved}))
            outcome.absorbed.append(absorbed)
            outcome.records_moved += moved
        outcome.master_id = plan.assignments[left.id]
        session.flush()
        refresh_golden(session, {outcome.master_id}, run_id)
        outcome.message = f"Merged {', '.join(outcome.absorbed)} into {outcome.master_id}."
    else:
        outcome.master_id = left.master_id
        outcome.message = f"Both records were already in {left.master_id}; the must-link is kept."
    session.add(StewardDecision(kind="must_link", record_id_l=pair.record_id_l, record_id_r=pair.record_id_r,
                                decided_by=username, reason=f"review pair {pair_id}"))
    _close(pair, "accepted", username, comment)
    return outcome


def reject_pair(session: Session, pair_id: int, username: str, comment: str | None = None) -> Outcome:
    """Not the same person: a cannot-link every later night honours."""
    pair = _open_pair(session, pair_id)
    left, right = (session.get(SourceRecord, rid) for rid in (pair.record_id_l, pair.record_id_r))
    if left.master_id and left.master_id == right.master_id:
        raise DecisionError(f"the records of pair {pair_id} are already one person ({left.master_id}); "
                            "unmerge them from the person page instead")
    session.add(StewardDecision(kind="cannot_link", record_id_l=pair.record_id_l, record_id_r=pair.record_id_r,
                                decided_by=username, reason=f"review pair {pair_id}"))
    _close(pair, "rejected", username, comment)
    return Outcome(pair_id=pair_id, status="rejected", message="Kept apart: a cannot-link is recorded.")


def defer_pair(session: Session, pair_id: int, username: str, comment: str | None = None) -> Outcome:
    pair = _open_pair(session, pair_id)
    _close(pair, "deferred", username, comment)
    return Outcome(pair_id=pair_id, status="deferred", message="Deferred: the pair waits in the deferred list.")


def crossing_must_links(session: Session, side_a: set[int], side_b: set[int]) -> dict[tuple[int, int], StewardDecision]:
    """Must-links with one record on each side, keyed by (lower id, higher id)."""
    rows = session.scalars(select(StewardDecision).where(
        StewardDecision.kind == "must_link",
        or_(and_(StewardDecision.record_id_l.in_(side_a), StewardDecision.record_id_r.in_(side_b)),
            and_(StewardDecision.record_id_r.in_(side_a), StewardDecision.record_id_l.in_(side_b)))))
    return {(min(d.record_id_l, d.record_id_r), max(d.record_id_l, d.record_id_r)): d for d in rows}


def superseded_must_links(decisions: list[StewardDecision]) -> dict[int, int]:
    """Among ``decisions``, must-link id -> id of the later cannot-link on the same pair that
    replaced it (a split after an accept). The must-link stays in the table as history."""
    cannot: dict[frozenset[int], StewardDecision] = {}
    for d in decisions:
        if d.kind == "cannot_link":
            cannot.setdefault(frozenset((d.record_id_l, d.record_id_r)), d)
    return {d.id: c.id for d in decisions if d.kind == "must_link"
            and (c := cannot.get(frozenset((d.record_id_l, d.record_id_r)))) is not None and c.id > d.id}


def unmerge(session: Session, master_id: str, record_ids: list[int], username: str, reason: str | None = None) -> Outcome:
    """Split ``record_ids`` off ``master_id`` into a new person; the two groups get cannot-links."""
    person = session.scalar(select(Person).where(Person.master_id == master_id).with_for_update())
    if person is None or person.status != "active":
        raise DecisionError(f"person {master_id} is not an active person (merged or unknown)")
    members = _members(session, master_id)
    chosen = set(record_ids)
    if not chosen:
        raise DecisionError("choose at least one record to split off")
    if not chosen <= members:
        raise DecisionError(f"records {sorted(chosen - members)} are not linked to {master_id}")
    if chosen == members:
        raise DecisionError("a split must leave at least one record with the person; choose fewer records")
    run_id = steward_run_id(username)
    seq = (session.scalar(select(func.max(Person.seq))) or 0) + 1
    new_id = master_id_for(seq)
    session.add(Person(master_id=new_id, seq=seq, created_run_id=run_id))
    session.flush()
    session.execute(update(SourceRecord).where(SourceRecord.id.in_(chosen)).values(
        master_id=new_id, match_status="matched", link_rule="steward split", link_score=None))
    note = f"steward split {len(chosen)} record(s) off {master_id}" + (f": {reason.strip()}" if reason and reason.strip() else "")
    session.add(PersonEvent(master_id=master_id, kind="split", other_master_id=new_id, run_id=run_id, actor=username,
                            reason=note, evidence={"records_moved": len(chosen)}))
    session.add(PersonEvent(master_id=new_id, kind="created", other_master_id=master_id, run_id=run_id, actor=username,
                            reason=note))
    for rid in sorted(chosen):
        session.add(PersonEvent(master_id=new_id, kind="linked", source_record_id=rid, run_id=run_id, actor=username,
                                reason="steward split", evidence={"rule": "steward split", "score": None}))
    # A must-link across the split (an earlier accept) would force the records back together
    # next night. It is not deleted: the split is the steward's newer intent, so the same pair
    # gets a cannot-link (which outweighs a must-link, see ``mci.match.links_from``) whose reason
    # names the must-link it supersedes; the must-link row stays as the record of the old intent.
    crossing = crossing_must_links(session, chosen, members - chosen)
    why = reason.strip() if reason and reason.strip() else None
    for a in sorted(chosen):
        for b in sorted(members - chosen):
            pair = (min(a, b), max(a, b))
            old = crossing.get(pair)
            supersedes = (f"supersedes must-link #{old.id} ({old.decided_by}, {old.at:%Y-%m-%d %H:%M}): "
                          if old is not None else "")
            session.add(StewardDecision(kind="cannot_link", record_id_l=pair[0], record_id_r=pair[1],
                                        decided_by=username,
                                        reason=f"{supersedes}split of {master_id} into {new_id}" + (f": {why}" if why else "")))
    if crossing:
        session.add(PersonEvent(master_id=master_id, kind="must_links_superseded", other_master_id=new_id,
                                run_id=run_id, actor=username, reason="split",
                                evidence={"must_link_ids": sorted(d.id for d in crossing.values())}))
    session.flush()
    refresh_golden(session, {master_id, new_id}, run_id)
    return Outcome(status="split", master_id=master_id, new_master_id=new_id, records_moved=len(chosen),
                   message=f"Split {len(chosen)} record(s) off {master_id} into the new person {new_id}.")
