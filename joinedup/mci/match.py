"""Tonight's match: compare new and changed records with the index, link, cluster, and
refresh the golden records of every person the night touched.

The order is fixed: steward decisions first (they win), then the rules' links; every join is
checked against the hard constraints; uncertain pairs go to the review queue.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass

import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from joinedup.mci.cluster import plan_clusters
from joinedup.mci.golden import golden_record
from joinedup.mci.rules import candidate_pairs
from joinedup.mci.standardise import standardise
from joinedup.mci.store import Person, PersonEvent, ReviewPair, SourceRecord, StewardDecision

log = logging.getLogger(__name__)


@dataclass
class MatchResult:
    records_compared: int = 0
    linked: int = 0  # records joined to another record or an existing person
    new_persons: int = 0
    merges: int = 0
    review_pairs_added: int = 0
    review_pairs_open: int = 0
    refused_by_constraint: int = 0
    persons_total: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def master_id_for(seq: int) -> str:
    return f"JU{seq:08d}"


def _load_frame(session: Session) -> pd.DataFrame:
    rows = session.execute(select(SourceRecord.id, SourceRecord.record)).all()
    return pd.DataFrame([{**rec, "record_id": rid} for rid, rec in rows])


def run_match(session: Session, run_id: str) -> MatchResult:
    result = MatchResult()
    pending_ids = set(session.scalars(select(SourceRecord.id).where(SourceRecord.match_status == "pending")))
    result.records_compared = len(pending_ids)
    if pending_ids:
        _match_pending(session, run_id, pending_ids, result)
    result.review_pairs_open = session.scalar(select(func.count()).select_from(ReviewPair).where(ReviewPair.status == "open")) or 0
    result.persons_total = session.scalar(select(func.count()).select_from(Person).where(Person.status == "active")) or 0
    return result


def _match_pending(session: Session, run_id: str, pending_ids: set[int], result: MatchResult) -> None:
    features = standardise(_load_frame(session))
    by_id = features.set_index("record_id")
    pairs = candidate_pairs(features, pending_ids)

    decisions = session.execute(select(StewardDecision.kind, StewardDecision.record_id_l, StewardDecision.record_id_r)).all()
    must = [(a, b) for kind, a, b in decisions if kind == "must_link"]
    cannot = {frozenset((a, b)) for kind, a, b in decisions if kind == "cannot_link"}
    link_pairs = [(a, b) for a, b in must] + [
        (int(a), int(b)) for a, b, o in zip(pairs.record_id_l, pairs.record_id_r, pairs.outcome)
        if o == "link" and frozenset((a, b)) not in cannot
    ]
    rule_of = {(int(a), int(b)): (r, s) for a, b, r, s in zip(pairs.record_id_l, pairs.record_id_r, pairs["rule"], pairs.score)}

    current = dict(session.execute(select(SourceRecord.id, SourceRecord.master_id)).all())
    members_of: dict[str, set[int]] = defaultdict(set)
    for rid, mid in current.items():
        if mid:
            members_of[mid].add(rid)
    seqs = dict(session.execute(select(Person.master_id, Person.seq)).all())
    next_seq = [max(seqs.values(), default=0)]

    def expand(records: set[int]) -> set[int]:
        out = set(records)
        for rid in records:
            if current.get(rid):
                out |= members_of[current[rid]]
        return out

    def may_join(a: set[int], b: set[int]) -> bool:
        a, b = expand(a), expand(b)
        if any(frozenset((x, y)) in cannot for x in a for y in b):
            return False
        for key in ("ni_key", "nhs_number"):
            values = {by_id.at[r, key] for r in a | b if r in by_id.index and by_id.at[r, key]}
            if len(values) > 1:
                return False
        return True

    def new_master() -> str:
        next_seq[0] += 1
        mid = master_id_for(next_seq[0])
        seqs[mid] = next_seq[0]
        return mid

    plan = plan_clusters(pending_ids, link_pairs, current, seqs, may_join, new_master)
    result.refused_by_constraint = len(plan.refused)

    for mid in plan.new_masters:
        session.add(Person(master_id=mid, seq=seqs[mid], created_run_id=run_id))
        session.add(PersonEvent(master_id=mid, kind="created", run_id=run_id, reason="no existing person matched"))
    session.flush()
    for absorbed, survivor in plan.merges:
        session.execute(update(Person).where(Person.master_id == absorbed).values(status="merged", merged_into=survivor))
        session.execute(update(SourceRecord).where(SourceRecord.master_id == absorbed).values(master_id=survivor))
        session.add(PersonEvent(master_id=survivor, kind="merged", other_master_id=absorbed, run_id=run_id,
                                reason="records of both persons linked tonight"))
    result.merges = len(plan.merges)

    linked_rule: dict[int, tuple[str, float]] = {}
    for a, b in link_pairs:
        rule = rule_of.get((min(a, b), max(a, b)), ("steward must-link", 1.0))
        linked_rule.setdefault(a, rule)
        linked_rule.setdefault(b, rule)
    for rid, mid in plan.assignments.items():
        rule, score = linked_rule.get(rid, ("new person", None))
        if rid in pending_ids or current.get(rid) != mid:
            session.execute(update(SourceRecord).where(SourceRecord.id == rid).values(
                master_id=mid, match_status="matched", link_rule=rule, link_score=score))
        if current.get(rid) != mid:
            session.add(PersonEvent(master_id=mid, kind="linked", source_record_id=rid, run_id=run_id, reason=rule,
                                    evidence={"rule": rule, "score": score}))
            if rid in linked_rule:
                result.linked += 1
    result.new_persons = len(plan.new_masters)

    existing_pairs = set(session.execute(select(ReviewPair.record_id_l, ReviewPair.record_id_r)).all())
    for a, b, rule, outcome, score in pairs.itertuples(index=False):
        a, b = int(a), int(b)
        if outcome != "review" or (a, b) in existing_pairs or plan.assignments.get(a, current.get(a)) == plan.assignments.get(b, current.get(b)):
            continue
        session.add(ReviewPair(record_id_l=a, record_id_r=b, score=float(score), rule=rule, run_id=run_id,
                               evidence={"rule": rule}))
        result.review_pairs_added += 1
    session.flush()
    refresh_golden(session, {*plan.assignments.values(), *(s for _, s in plan.merges)}, run_id)


def refresh_golden(session: Session, master_ids: set[str], run_id: str) -> int:
    """Recompute the golden record of each person; an event where it changed."""
    changed = 0
    records: dict[str, list[dict]] = defaultdict(list)
    ids = sorted(master_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for mid, rec in session.execute(select(SourceRecord.master_id, SourceRecord.record).where(SourceRecord.master_id.in_(chunk))):
            records[mid].append(rec)
        for person in session.scalars(select(Person).where(Person.master_id.in_(chunk))):
            golden, sources = golden_record(records[person.master_id])
            if golden != person.golden or sources != person.golden_sources:
                if person.golden:
                    session.add(PersonEvent(master_id=person.master_id, kind="golden_changed", run_id=run_id,
                                            evidence={"fields": sorted(k for k in golden if golden.get(k) != person.golden.get(k))}))
                person.golden, person.golden_sources = golden, sources
                changed += 1
    return changed
