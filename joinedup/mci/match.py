"""Tonight's match: compare new and changed records with the index, link, cluster, and
refresh the golden records of every person the night touched.

Two engines, one decision:

- deterministic rules (:mod:`joinedup.mci.rules`) settle the sure cases and enforce the
  hard constraints (different valid NI/NHS numbers, twins) that no score overrides;
- the probabilistic model (:mod:`joinedup.mci.probabilistic`, Splink on DuckDB) scores
  every other candidate pair touching a pending record against the whole index; the
  configured thresholds (:mod:`joinedup.mci.thresholds`) make each pair a link, a review
  pair, or nothing (a new person if nothing else links).

The model is trained on the index at the first merge that has enough records
(``min_records_for_model``) and saved as a versioned file (:mod:`joinedup.mci.model_store`);
below that size the rules decide alone and the result says so. Steward decisions win:
must-links are joined first, cannot-links are never crossed. Every link and review pair
keeps its evidence (rule, or per-field match weights, and the model file).

:func:`decide_pairs` and :func:`cluster_records` are pure (no database): ``joinedup link``
uses them too.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from joinedup.mci.cluster import MUST_LINK, ClusterGuard, ClusterPlan, Link, plan_clusters
from joinedup.mci.golden import golden_record
from joinedup.mci.rules import candidate_pairs, conflict
from joinedup.mci.standardise import standardise
from joinedup.mci.store import Person, PersonEvent, ReviewPair, SourceRecord, StewardDecision
from joinedup.mci.thresholds import MatchThresholds, load_thresholds

log = logging.getLogger(__name__)

DECISION_COLUMNS = ["record_id_l", "record_id_r", "rule", "outcome", "match_weight",
                    "match_probability", "evidence"]
#: Strength given to a deterministic rule's link when ordering joins (above any model link).
RULE_STRENGTH = 1000.0


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
    pairs_scored: int = 0
    mode: str = "deterministic"  # "deterministic" or "rules+model"
    mode_reason: str = ""
    model_file: str | None = None
    model_trained: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelChoice:
    """The model a run uses (None: rules only) and why, in words for the result."""

    model: Any | None
    path: Path | None
    reason: str
    trained_now: bool = False


def master_id_for(seq: int) -> str:
    return f"JU{seq:08d}"


def _silence_splink() -> None:
    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(logging.ERROR)


def choose_model(features: pd.DataFrame, thresholds: MatchThresholds, *,
                 load_current: Callable[[], tuple[Any, Path] | None],
                 save: Callable[[Any], Path] | None,
                 force_train: bool = False) -> ModelChoice:
    """The current model, else one trained now on ``features`` (and saved with ``save``);
    None when there are fewer records than ``min_records_for_model``."""
    n = len(features)
    if n < thresholds.min_records_for_model:
        return ModelChoice(None, None, f"deterministic rules only: {n} records, fewer than the "
                           f"{thresholds.min_records_for_model} needed to train the match model")
    if not force_train:
        current = load_current()
        if current is not None:
            model, path = current
            return ModelChoice(model, path, f"rules + match model {model.model_version}")
    from joinedup.mci.probabilistic import train

    _silence_splink()
    model = train(features)
    path = save(model) if save else None
    log.info("trained match model %s on %d records", model.model_version, n)
    return ModelChoice(model, path, f"rules + match model {model.model_version} (trained now on "
                       f"{n} records)", trained_now=True)


def _evidence(model: Any, row: Mapping[str, Any], model_file: str | None) -> dict[str, Any]:
    """Per-field evidence of one scored pair, JSON-serialisable (for the steward)."""
    from joinedup.mci.probabilistic import explain_pair

    table = explain_pair(model, row)
    fields = [{"field": r.field, "level": str(r.level), "match_weight": round(float(r.match_weight), 3),
               "tf_adjustment": round(float(r.tf_adjustment), 3)}
              for r in table.itertuples(index=False) if r.field not in ("prior", "total")]
    return {
        "match_weight": round(float(row["match_weight"]), 3),
        "match_probability": float(row["match_probability"]),
        "prior_weight": round(float(model.prior_match_weight), 3),
        "fields": fields,
        "blocking_rule": row.get("blocking_rule"),
        "model_version": model.model_version,
        "model_file": model_file,
    }


def decide_pairs(features: pd.DataFrame, pending_ids: set[int], thresholds: MatchThresholds, *,
                 model: Any | None = None, model_file: str | None = None,
                 with_evidence: bool = True) -> pd.DataFrame:
    """Every candidate pair touching a pending record, with its outcome.

    Columns ``DECISION_COLUMNS``; outcome is 'link', 'review' or 'blocked' (a hard
    constraint: never linked). Deterministic rules' links stand; the model decides the
    rest (a rule's 'review' is replaced by the model's judgement when there is a model).
    """
    rules = candidate_pairs(features, pending_ids)
    decided: dict[tuple[int, int], dict[str, Any]] = {}
    for a, b, rule, outcome, score in rules.itertuples(index=False):
        if model is not None and outcome == "review":
            continue
        decided[(int(a), int(b))] = {"rule": rule, "outcome": outcome, "match_weight": None,
                                     "match_probability": float(score), "evidence": {"rule": rule}}
    if model is not None:
        from joinedup.mci.probabilistic import score_pairs

        _silence_splink()
        everyone = len(pending_ids) == len(features)
        scored = score_pairs(model, features, new_ids=None if everyone else pending_ids,
                             threshold_weight=thresholds.review_weight)
        rows = features.set_index("record_id", drop=False)
        ids = sorted(set(scored.record_id_l) | set(scored.record_id_r))
        by_id = rows.loc[ids].to_dict("index") if ids else {}
        for row in scored.to_dict("records"):
            key = (int(row["record_id_l"]), int(row["record_id_r"]))
            weight = float(row["match_weight"])
            known = decided.get(key)
            if known is not None:
                known["match_weight"] = weight
                if with_evidence:
                    known["evidence"] = {"rule": known["rule"], **_evidence(model, row, model_file)}
                continue
            why = conflict(by_id[key[0]], by_id[key[1]])
            outcome = "blocked" if why else thresholds.outcome(weight)
            decided[key] = {
                "rule": f"model (blocked: {why})" if why else "model",
                "outcome": outcome, "match_weight": weight,
                "match_probability": float(row["match_probability"]),
                "evidence": _evidence(model, row, model_file) if with_evidence else None,
            }
    out = pd.DataFrame([{"record_id_l": a, "record_id_r": b, **v} for (a, b), v in sorted(decided.items())],
                       columns=DECISION_COLUMNS)
    return out


def links_from(decisions: pd.DataFrame, must_link: list[tuple[int, int]],
               cannot_link: set[frozenset[int]]) -> list[Link]:
    """Links to join: steward must-links, then the pairs decided 'link' (minus cannot-links).
    A cannot-link on the same pair (a later split, say) outweighs a must-link."""
    links = [Link(int(a), int(b), RULE_STRENGTH * 2, MUST_LINK) for a, b in must_link
             if frozenset((a, b)) not in cannot_link]
    for a, b, rule, outcome, weight in zip(decisions.record_id_l, decisions.record_id_r, decisions["rule"],
                                           decisions.outcome, decisions.match_weight):
        if outcome != "link" or frozenset((a, b)) in cannot_link:
            continue
        is_rule = not str(rule).startswith("model")
        strength = RULE_STRENGTH + (weight if weight == weight and weight is not None else 0.0) if is_rule else float(weight)
        links.append(Link(int(a), int(b), strength, str(rule) if is_rule else "model"))
    return links


def merge_rule(thresholds: MatchThresholds) -> Callable[[Link], bool]:
    """A link may merge two existing persons if it is a rule's, or its weight is >= merge."""
    return lambda link: link.kind != "model" or link.strength >= thresholds.merge_weight


def cluster_records(record_ids: set[int], links: list[Link], features_by_id: Mapping[int, Mapping[str, Any]],
                    thresholds: MatchThresholds, *, current_master: Mapping[int, str | None] | None = None,
                    master_seq: Mapping[str, int] | None = None,
                    cannot_link: set[frozenset[int]] = frozenset(),
                    expand: Callable[[set[int]], set[int]] | None = None,
                    new_master_id: Callable[[], str]) -> ClusterPlan:
    """Clusters for ``record_ids`` from ``links`` under every constraint (pure)."""
    guard = ClusterGuard(features_by_id, cannot_link, expand)
    return plan_clusters(record_ids, links, current_master or {}, master_seq or {}, guard,
                         new_master_id, merge_allowed=merge_rule(thresholds))


# --- the nightly run against the MCI store ---------------------------------------------------

def _load_frame(session: Session) -> pd.DataFrame:
    rows = session.execute(select(SourceRecord.id, SourceRecord.record)).all()
    return pd.DataFrame([{**rec, "record_id": rid} for rid, rec in rows])


def run_match(session: Session, run_id: str, *, thresholds: MatchThresholds | None = None) -> MatchResult:
    result = MatchResult()
    pending_ids = set(session.scalars(select(SourceRecord.id).where(SourceRecord.match_status == "pending")))
    result.records_compared = len(pending_ids)
    if pending_ids:
        _match_pending(session, run_id, pending_ids, result, thresholds or load_thresholds())
    result.review_pairs_open = session.scalar(select(func.count()).select_from(ReviewPair).where(ReviewPair.status == "open")) or 0
    result.persons_total = session.scalar(select(func.count()).select_from(Person).where(Person.status == "active")) or 0
    return result


def _match_pending(session: Session, run_id: str, pending_ids: set[int], result: MatchResult,
                   thresholds: MatchThresholds) -> None:
    from joinedup.mci import model_store

    features = standardise(_load_frame(session))
    choice = choose_model(features, thresholds, load_current=model_store.current_model,
                          save=model_store.save_model)
    model_file = str(choice.path) if choice.path else None
    result.mode = "rules+model" if choice.model is not None else "deterministic"
    result.mode_reason, result.model_file, result.model_trained = choice.reason, model_file, choice.trained_now
    decisions = decide_pairs(features, pending_ids, thresholds, model=choice.model, model_file=model_file)
    result.pairs_scored = len(decisions)

    steward = session.execute(select(StewardDecision.kind, StewardDecision.record_id_l, StewardDecision.record_id_r)).all()
    must = [(a, b) for kind, a, b in steward if kind == "must_link"]
    cannot = {frozenset((a, b)) for kind, a, b in steward if kind == "cannot_link"}
    links = links_from(decisions, must, cannot)

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

    def new_master() -> str:
        next_seq[0] += 1
        mid = master_id_for(next_seq[0])
        seqs[mid] = next_seq[0]
        return mid

    features_by_id = features.set_index("record_id", drop=False).to_dict("index")
    plan = cluster_records(pending_ids, links, features_by_id, thresholds, current_master=current,
                           master_seq=seqs, cannot_link=cannot, expand=expand, new_master_id=new_master)
    result.refused_by_constraint = len(plan.refused)
    _write_plan(session, run_id, plan, links, decisions, current, pending_ids, result, model_file)


def _write_plan(session: Session, run_id: str, plan: ClusterPlan, links: list[Link], decisions: pd.DataFrame,
                current: dict[int, str | None], pending_ids: set[int], result: MatchResult,
                model_file: str | None) -> None:
    for mid in plan.new_masters:
        session.add(Person(master_id=mid, seq=int(mid[2:]), created_run_id=run_id))
        session.add(PersonEvent(master_id=mid, kind="created", run_id=run_id, reason="no existing person matched"))
    session.flush()
    for absorbed, survivor in plan.merges:
        session.execute(update(Person).where(Person.master_id == absorbed).values(status="merged", merged_into=survivor))
        session.execute(update(SourceRecord).where(SourceRecord.master_id == absorbed).values(master_id=survivor))
        session.add(PersonEvent(master_id=survivor, kind="merged", other_master_id=absorbed, run_id=run_id,
                                reason="records of both persons linked tonight", evidence={"model_file": model_file}))
    result.merges = len(plan.merges)

    evidence_of = {(int(a), int(b)): ev for a, b, ev in zip(decisions.record_id_l, decisions.record_id_r, decisions.evidence)}
    refused = set(plan.refused)
    linked_by: dict[int, tuple[str, float | None, dict[str, Any]]] = {}
    for link in sorted(links, key=lambda l: (not l.forced, -l.strength)):
        if (link.a, link.b) in refused:
            continue
        key = (min(link.a, link.b), max(link.a, link.b))
        ev = evidence_of.get(key) or {"rule": link.kind}
        ev = {**ev, "linked_with": {"record_id_l": key[0], "record_id_r": key[1]}, "model_file": model_file}
        score = None if link.forced else float(ev.get("match_probability", 1.0) or 1.0)
        for rid in (link.a, link.b):
            linked_by.setdefault(rid, (link.kind, score, ev))
    for rid, mid in plan.assignments.items():
        rule, score, ev = linked_by.get(rid, ("new person", None, {"rule": "new person", "model_file": model_file}))
        if rid in pending_ids or current.get(rid) != mid:
            session.execute(update(SourceRecord).where(SourceRecord.id == rid).values(
                master_id=mid, match_status="matched", link_rule=rule[:80], link_score=score))
        if current.get(rid) != mid:
            session.add(PersonEvent(master_id=mid, kind="linked", source_record_id=rid, run_id=run_id,
                                    reason=rule[:200], evidence=ev))
            if rid in linked_by:
                result.linked += 1
    result.new_persons = len(plan.new_masters)

    existing_pairs = set(session.execute(select(ReviewPair.record_id_l, ReviewPair.record_id_r)).all())
    final = lambda rid: plan.assignments.get(rid, current.get(rid))  # noqa: E731
    reviews: dict[tuple[int, int], tuple[str, float, dict[str, Any]]] = {}
    for a, b, rule, outcome, weight, prob, ev in decisions.itertuples(index=False):
        if outcome == "review":
            reviews[(int(a), int(b))] = (str(rule), float(prob), ev or {"rule": rule})
    for a, b in refused:
        key = (min(a, b), max(a, b))
        ev = evidence_of.get(key) or {}
        why = plan.refused_reasons.get((a, b), "refused")
        prob = float(ev.get("match_probability", 1.0) or 1.0)
        reviews[key] = (f"link refused: {why}"[:80], prob, {**ev, "refused": why})
    for (a, b), (rule, prob, ev) in sorted(reviews.items()):
        if (a, b) in existing_pairs or final(a) == final(b):
            continue
        session.add(ReviewPair(record_id_l=a, record_id_r=b, score=prob, rule=rule[:80], run_id=run_id,
                               evidence={**ev, "model_file": model_file}))
        result.review_pairs_added += 1
    session.flush()
    refresh_golden(session, {*plan.assignments.values(), *(s for _, s in plan.merges)}, run_id)
    from joinedup.api.search_keys import refresh_search_keys

    refresh_search_keys(session, {absorbed for absorbed, _ in plan.merges})  # merged away: keys dropped


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
    from joinedup.api.search_keys import refresh_search_keys

    refresh_search_keys(session, master_ids)  # the CRM's search finds what the golden record now says
    return changed
