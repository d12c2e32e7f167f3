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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from joinedup.mci import bulk
from joinedup.mci.gc_pause import cyclic_gc_paused
from joinedup.mci.cluster import MUST_LINK, ClusterGuard, ClusterPlan, Link, plan_clusters
from joinedup.mci.golden import refresh_golden
from joinedup.mci.pair_checks import PairChecks
from joinedup.mci.pair_evidence import ScoredColumns, as_dict, match_probability
from joinedup.mci.rules import candidate_pairs
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
    path: str = ""  # "full index" or "incremental" (see run_match)
    candidates: int = 0  # records outside tonight's that an incremental night compared with
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


def choose_model(features: pd.DataFrame | Callable[[], pd.DataFrame], thresholds: MatchThresholds, *,
                 load_current: Callable[[], tuple[Any, Path] | None],
                 save: Callable[[Any], Path] | None,
                 force_train: bool = False, n_records: int | None = None) -> ModelChoice:
    """The current model, else one trained now on ``features`` (and saved with ``save``);
    None when there are fewer records than ``min_records_for_model``.

    ``features`` may be a callable that returns them: an incremental night holds only a few
    records' features and loads the whole index only when it must train (``n_records``
    then says how big the index is)."""
    n = n_records if n_records is not None else len(features)  # type: ignore[arg-type]
    if n < thresholds.min_records_for_model:
        return ModelChoice(None, None, f"deterministic rules only: {n} records, fewer than the "
                           f"{thresholds.min_records_for_model} needed to train the match model")
    from joinedup.mci.probabilistic import ModelSpecOutdated, train

    outdated = ""
    if not force_train:
        try:
            current = load_current()
        except ModelSpecOutdated as exc:  # an upgrade changed the comparisons: retrain, keep the old file
            log.warning("the current match model is outdated, retraining: %s", exc)
            current, outdated = None, "; the previous model was for an older specification"
        if current is not None:
            model, path = current
            return ModelChoice(model, path, f"rules + match model {model.model_version}")

    _silence_splink()
    model = train(features() if callable(features) else features)
    path = save(model) if save else None
    log.info("trained match model %s on %d records", model.model_version, n)
    return ModelChoice(model, path, f"rules + match model {model.model_version} (trained now on "
                       f"{n} records{outdated})", trained_now=True)


def decide_pairs(features: pd.DataFrame, pending_ids: set[int], thresholds: MatchThresholds, *,
                 model: Any | None = None, model_file: str | None = None,
                 with_evidence: bool = True, blocked_pairs: pd.DataFrame | None = None,
                 term_frequencies: Mapping[str, pd.DataFrame] | None = None,
                 checks: PairChecks | None = None) -> pd.DataFrame:
    """Every candidate pair touching a pending record, with its outcome.

    Columns ``DECISION_COLUMNS``, ordered by pair; outcome is 'link', 'review' or 'blocked'
    (a hard constraint: never linked). Deterministic rules' links stand; the model decides
    the rest (a rule's 'review' is replaced by the model's judgement when there is a model).

    ``features`` is the whole index, or (an incremental night) only the pending records
    and their candidates, with ``blocked_pairs`` and ``term_frequencies`` taken from the
    stored index (:mod:`joinedup.mci.features`): the decisions are the same either way.
    ``checks``: the features' :class:`PairChecks`, if the caller has made it already.

    Decided on whole columns: the constraints are asked only about the pairs that could
    fail them (:mod:`joinedup.mci.pair_checks`), and a row's evidence is made only when
    ``with_evidence`` asks for it.
    """
    checks = checks if checks is not None else PairChecks(features)
    rules = candidate_pairs(features, pending_ids, checks)
    if rules.empty and model is None:
        return pd.DataFrame([], columns=DECISION_COLUMNS)
    if model is not None:
        rules = rules[rules.outcome != "review"]
    rule_l = rules["record_id_l"].to_numpy().astype(np.int64)
    rule_r = rules["record_id_r"].to_numpy().astype(np.int64)
    rule_names = rules["rule"].to_numpy(dtype=object)
    rule_weight = np.full(len(rules), np.nan)  # NaN: not scored (None in a frame of weights)
    rule_weighed = np.zeros(len(rules), dtype=bool)
    rule_evidence = np.empty(len(rules), dtype=object)
    rule_evidence[:] = [{"rule": name} for name in rule_names.tolist()]
    parts = []
    if model is not None:
        from joinedup.mci.probabilistic import score_pairs

        _silence_splink()
        everyone = len(pending_ids) == len(features)
        scored = score_pairs(model, features, new_ids=None if everyone else pending_ids,
                             threshold_weight=thresholds.review_weight,
                             blocked_pairs=blocked_pairs, term_frequencies=term_frequencies)
        left = scored["record_id_l"].to_numpy().astype(np.int64)
        right = scored["record_id_r"].to_numpy().astype(np.int64)
        weight = scored["match_weight"].to_numpy(dtype=float)
        probability = scored["match_probability"].to_numpy(dtype=float)
        base = int(max(left.max(initial=0), right.max(initial=0), rule_r.max(initial=0))) + 1
        at_rule = pd.Index(rule_l * base + rule_r).get_indexer(left * base + right)  # -1: no rule's pair
        by_rule = at_rule >= 0
        rule_weight[at_rule[by_rule]] = weight[by_rule]
        rule_weighed[at_rule[by_rule]] = True
        evidence = ScoredColumns(model, scored, model_file).each() if with_evidence else None
        if evidence is not None:
            for i, j in zip(np.flatnonzero(by_rule).tolist(), at_rule[by_rule].tolist()):
                rule_evidence[j] = evidence[i].with_rule(rule_names[j])
        own = np.flatnonzero(~by_rule)
        parts.append(_model_decisions(checks, thresholds, left[own], right[own], weight[own], probability[own],
                                      evidence[own] if evidence is not None else None))
    parts.insert(0, (rule_l, rule_r, rule_names, rules["outcome"].to_numpy(dtype=object), rule_weight,
                     rules["score"].to_numpy(dtype=float), rule_evidence, rule_weighed))
    columns = [np.concatenate([part[i] for part in parts]) for i in range(len(DECISION_COLUMNS) + 1)]
    if not len(columns[0]):
        return pd.DataFrame([], columns=DECISION_COLUMNS)
    weighed = columns.pop()
    if not weighed.any():  # no weight at all (rules alone): None, as a column of None stays
        columns[4] = np.full(len(weighed), None, dtype=object)
    order = np.lexsort((columns[1], columns[0]))
    return pd.DataFrame({name: values[order] for name, values in zip(DECISION_COLUMNS, columns)},
                        columns=DECISION_COLUMNS)


def _model_decisions(checks: PairChecks, thresholds: MatchThresholds, left: np.ndarray, right: np.ndarray,
                     weight: np.ndarray, probability: np.ndarray, evidence: np.ndarray | None) -> tuple:
    """The model's pairs no rule decided: blocked by a constraint, else link/review by weight,
    and a link between possible twins with related names sent to review."""
    pos_l, pos_r = checks.positions(left), checks.positions(right)
    why = checks.conflicts(pos_l, pos_r)
    blocked = why != None  # noqa: E711 - elementwise over an object array
    outcome = np.where(weight >= thresholds.link_weight, "link",
                       np.where(weight >= thresholds.review_weight, "review", "new person")).astype(object)
    rule = np.full(len(left), "model", dtype=object)
    links = np.flatnonzero(~blocked & (outcome == "link"))
    doubt = checks.twin_doubts(pos_l[links], pos_r[links]) != None  # noqa: E711
    outcome[links[doubt]] = "review"
    rule[links[doubt]] = "model (review: possible twins, related names)"
    for i in np.flatnonzero(blocked).tolist():
        rule[i] = f"model (blocked: {why[i]})"
    outcome[blocked] = "blocked"
    if evidence is None:
        evidence = np.full(len(left), None, dtype=object)
    return left, right, rule, outcome, weight, probability, evidence, np.ones(len(left), dtype=bool)


def links_from(decisions: pd.DataFrame, must_link: list[tuple[int, int]],
               cannot_link: set[frozenset[int]]) -> list[Link]:
    """Links to join: steward must-links, then the pairs decided 'link' (minus cannot-links).
    A cannot-link on the same pair (a later split, say) outweighs a must-link."""
    links = [Link(int(a), int(b), RULE_STRENGTH * 2, MUST_LINK) for a, b in must_link
             if frozenset((a, b)) not in cannot_link]
    linked = decisions["outcome"].to_numpy(dtype=object) == "link"  # the rows to read, found on the column
    columns = [decisions[c].to_numpy(dtype=object)[linked].tolist()
               for c in ("record_id_l", "record_id_r", "rule", "match_weight")]
    for a, b, rule, weight in zip(*columns):
        if cannot_link and frozenset((a, b)) in cannot_link:
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
                    new_master_id: Callable[[], str], checks: PairChecks | None = None) -> ClusterPlan:
    """Clusters for ``record_ids`` from ``links`` under every constraint (pure). ``checks``
    (of the features ``features_by_id`` gives): the guard checks each group of linked
    records at once before the first join (:meth:`ClusterGuard.prepare`)."""
    guard = ClusterGuard(features_by_id, cannot_link, expand, checks=checks)
    guard.prepare(record_ids, links)
    return plan_clusters(record_ids, links, current_master or {}, master_seq or {}, guard,
                         new_master_id, merge_allowed=merge_rule(thresholds),
                         clear=guard.clear if checks is not None else None)


# --- the nightly run against the MCI store ---------------------------------------------------

#: "auto" takes the full-index path when more than this share of the index must be
#: (re)standardised tonight (a first build, a new standardisation): blocking the whole index
#: in DuckDB is then cheaper than fetching most of it key by key.
FULL_INDEX_SHARE = 0.5
CHUNK = 500
PATHS = ("auto", "full", "incremental")


#: Records read and standardised at a time when the whole index is matched: the canonical
#: records of a million-record index never sit in memory at once, only their features.
FULL_LOAD_CHUNK = 100_000


def _load_frame(session: Session, record_ids: list[int] | None = None, *, after: int | None = None,
                limit: int | None = None) -> pd.DataFrame:
    """Canonical records (with record_id) of these source records, or of all of them (or,
    with ``limit``, of the next ``limit`` records by id after ``after``)."""
    records = SourceRecord.__table__  # Core columns: plain rows, not the ORM's row loading
    if record_ids is None:
        query = select(records.c.id, records.c.record).order_by(records.c.id)
        if after is not None:
            query = query.where(records.c.id > after)
        rows = session.execute(query.limit(limit) if limit else query).all()
    else:
        rows = []
        for start in range(0, len(record_ids), CHUNK):
            chunk = record_ids[start : start + CHUNK]
            rows += session.execute(select(records.c.id, records.c.record).where(records.c.id.in_(chunk))).all()
    return pd.DataFrame([{**rec, "record_id": rid} for rid, rec in rows])


def _standardised_index(session: Session) -> pd.DataFrame:
    """The match features of every source record, in record id order: read and standardised
    ``FULL_LOAD_CHUNK`` records at a time (standardising is per record, so the features are
    the same as from one frame of the whole index)."""
    parts: list[pd.DataFrame] = []
    after: int | None = None
    while True:
        records = _load_frame(session, after=after, limit=FULL_LOAD_CHUNK)
        if records.empty:
            break
        parts.append(standardise(records))
        after = int(records["record_id"].iloc[-1])
        del records
    if not parts:
        return standardise(pd.DataFrame({"record_id": pd.Series([], dtype="int64")}))
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def run_match(session: Session, run_id: str, *, thresholds: MatchThresholds | None = None,
              path: str = "auto") -> MatchResult:
    """Match tonight's pending records. ``path``: "incremental" (standardise and block only
    the pending records against the stored index), "full" (standardise and block the whole
    index, as a first build does) or "auto" (incremental unless most of the index is
    pending). Both paths decide the same pairs and clusters."""
    if path not in PATHS:
        raise ValueError(f"unknown match path {path!r}; known: {', '.join(PATHS)}")
    result = MatchResult()
    pending_ids = set(session.scalars(select(SourceRecord.id).where(SourceRecord.match_status == "pending")))
    result.records_compared = len(pending_ids)
    if pending_ids:
        with cyclic_gc_paused():  # a first build holds millions of objects: collections would walk them all
            _match_pending(session, run_id, pending_ids, result, thresholds or load_thresholds(), path)
    result.review_pairs_open = session.scalar(select(func.count()).select_from(ReviewPair).where(ReviewPair.status == "open")) or 0
    result.persons_total = session.scalar(select(func.count()).select_from(Person).where(Person.status == "active")) or 0
    return result


def _refresh_stored_features(session: Session, record_ids: list[int], rules: list[Any],
                             frame: pd.DataFrame | None = None) -> None:
    """Standardise these records (or take them from ``frame``, the full path: a first build's
    block keys are then written in key order, ``features.store_index``) and store their
    features."""
    from joinedup.mci import features as stored

    if frame is not None:
        stored.store_index(session, frame[frame["record_id"].isin(set(record_ids))], rules)
        return
    for start in range(0, len(record_ids), 50_000):
        chunk = record_ids[start : start + 50_000]
        stored.store_features(session, standardise(_load_frame(session, chunk)), rules)


def _masters_of(session: Session, record_ids: set[int]) -> dict[int, str | None]:
    """record id -> its master ID (None while it has none), read a statement per 5,000 ids
    on the driver's cursor (bulk.select_in: no per-chunk compiling, no row processing)."""
    return dict(sorted(bulk.select_in(session, "SELECT id, master_id FROM source_records WHERE id {in}",
                                      (int(i) for i in record_ids))))


def _members_of(session: Session, masters: set[str]) -> dict[int, str | None]:
    """record id -> master ID of every record of these persons (as :func:`_masters_of`)."""
    rows = bulk.select_in(session, "SELECT id, master_id FROM source_records WHERE master_id {in}", masters)
    return dict(sorted(rows, key=lambda r: (r[1], r[0])))  # by person, then record: as read before


def _tf_columns(model: Any) -> list[str]:
    return sorted({level["tf_adjustment_column"] for c in model.splink_settings["comparisons"]
                   for level in c["comparison_levels"] if level.get("tf_adjustment_column")})


def _match_pending(session: Session, run_id: str, pending_ids: set[int], result: MatchResult,
                   thresholds: MatchThresholds, path: str = "auto") -> None:
    from joinedup.mci import features as stored
    from joinedup.mci import model_store
    from joinedup.mci.blocking import DEFAULT_BLOCK_SIZE_CAP, DEFAULT_BLOCKING_RULES

    stored.ensure_tables(session)
    total = session.scalar(select(func.count()).select_from(SourceRecord)) or 0
    from joinedup.mci.probabilistic import ModelSpecOutdated

    outdated: ModelSpecOutdated | None = None
    try:
        current_model = model_store.current_model()
    except ModelSpecOutdated as exc:  # an upgrade changed the comparisons: choose_model retrains
        current_model, outdated = None, exc

    def load_current() -> tuple[Any, Path] | None:
        if outdated is not None:
            raise outdated
        return current_model

    rules = list(current_model[0].blocking_rules) if current_model else list(DEFAULT_BLOCKING_RULES)
    cap = current_model[0].block_size_cap if current_model else DEFAULT_BLOCK_SIZE_CAP
    refresh = sorted(pending_ids | set(stored.stale_record_ids(session, rules)))
    full = path == "full" or (path == "auto" and len(refresh) > FULL_INDEX_SHARE * total)
    result.path = "full index" if full else "incremental"

    blocked_pairs = tf_tables = None
    if full:
        features = _standardised_index(session)
        _refresh_stored_features(session, refresh, rules, frame=features)
        current = dict(session.execute(select(SourceRecord.id, SourceRecord.master_id)).all())
        training_features: Any = features
    else:
        _refresh_stored_features(session, refresh, rules)
        found = stored.candidates(session, pending_ids, cap)
        blocked_pairs = found.pairs
        current = _masters_of(session, found.record_ids)
        current.update(_members_of(session, {m for m in current.values() if m}))
        features = stored.load_features(session, set(current))
        result.candidates = len(found.record_ids) - len(pending_ids)
        training_features = lambda: stored.load_features(session)  # noqa: E731 - only if a model must be trained

    choice = choose_model(training_features, thresholds, load_current=load_current,
                          save=model_store.save_model, n_records=total)
    model_file = str(choice.path) if choice.path else None
    result.mode = "rules+model" if choice.model is not None else "deterministic"
    result.mode_reason, result.model_file, result.model_trained = choice.reason, model_file, choice.trained_now
    if not full and choice.model is not None:
        if list(choice.model.blocking_rules) != rules or choice.model.block_size_cap != cap:
            raise RuntimeError("the match model's blocking rules differ from the stored block keys; "
                               "run the night with path='full' to rebuild them")
        tf_tables = {col: stored.term_frequencies(session, col, features[col]) for col in _tf_columns(choice.model)}
    checks = PairChecks(features)  # the constraints over whole columns: decisions, then the cluster guard
    decisions = decide_pairs(features, pending_ids, thresholds, model=choice.model, model_file=model_file,
                             blocked_pairs=blocked_pairs, term_frequencies=tf_tables, checks=checks)
    result.pairs_scored = len(decisions)

    steward = session.execute(select(StewardDecision.kind, StewardDecision.record_id_l, StewardDecision.record_id_r)).all()
    must = [(a, b) for kind, a, b in steward if kind == "must_link"]
    cannot = {frozenset((a, b)) for kind, a, b in steward if kind == "cannot_link"}
    links = links_from(decisions, must, cannot)
    if not full:  # a must-link may reach a record no key found: bring it and its person in
        extra = {r for a, b in must for r in (a, b)} - set(current)
        if extra:
            more = _masters_of(session, extra)
            more.update(_members_of(session, {m for m in more.values() if m}))
            more = {k: v for k, v in more.items() if k not in current}
            current.update(more)
            features = pd.concat([features, stored.load_features(session, set(more))], ignore_index=True)
            checks = PairChecks(features)

    members_of: dict[str, set[int]] = defaultdict(set)
    for rid, mid in current.items():
        if mid:
            members_of[mid].add(rid)
    masters = sorted(members_of)
    seqs: dict[str, int] = dict(sorted(bulk.select_in(session, "SELECT master_id, seq FROM persons WHERE master_id {in}",
                                                      masters)))
    next_seq = [session.scalar(select(func.max(Person.seq))) or 0]

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

    # the guard checks every group of linked records on arrays first; a record's guard columns
    # are made as a row only for the joins left to compare one by one
    plan = cluster_records(pending_ids, links, checks.rows(), thresholds, current_master=current,
                           master_seq=seqs, cannot_link=cannot, expand=expand, new_master_id=new_master,
                           checks=checks)
    result.refused_by_constraint = len(plan.refused)
    _write_plan(session, run_id, plan, links, decisions, current, pending_ids, result, model_file, features)


def _write_plan(session: Session, run_id: str, plan: ClusterPlan, links: list[Link], decisions: pd.DataFrame,
                current: dict[int, str | None], pending_ids: set[int], result: MatchResult,
                model_file: str | None, features: pd.DataFrame | None = None) -> None:
    # Bulk writes (COPY on PostgreSQL, executemany elsewhere): a first build writes a row per
    # record and per person.
    bulk.insert_rows(session, Person.__table__, [{"master_id": mid, "seq": int(mid[2:]), "created_run_id": run_id}
                                                 for mid in plan.new_masters])
    bulk.insert_rows(session, PersonEvent.__table__, [{"master_id": mid, "kind": "created", "run_id": run_id,
                                                       "reason": "no existing person matched"} for mid in plan.new_masters])
    for absorbed, survivor in plan.merges:
        session.execute(update(Person).where(Person.master_id == absorbed).values(status="merged", merged_into=survivor))
        session.execute(update(SourceRecord).where(SourceRecord.master_id == absorbed).values(master_id=survivor))
        session.add(PersonEvent(master_id=survivor, kind="merged", other_master_id=absorbed, run_id=run_id,
                                reason="records of both persons linked tonight", evidence={"model_file": model_file}))
    result.merges = len(plan.merges)

    evidence_of = {(int(a), int(b)): ev for a, b, ev in zip(decisions.record_id_l, decisions.record_id_r, decisions.evidence)}
    refused = set(plan.refused)
    # per record, the link that placed it: (rule, score, its pair's evidence, the pair); the
    # evidence is made as each block of events is written (pair_evidence: not all at once)
    linked_by: dict[int, tuple[str, float | None, Any, tuple[int, int]]] = {}
    for link in sorted(links, key=lambda l: (not l.forced, -l.strength)):
        if (link.a, link.b) in refused:
            continue
        key = (min(link.a, link.b), max(link.a, link.b))
        ev = evidence_of.get(key)
        score = None if link.forced else match_probability(ev)
        for rid in (link.a, link.b):
            linked_by.setdefault(rid, (link.kind, score, ev, key))
    record_rows, moved = [], []
    for rid, mid in plan.assignments.items():
        rule, score = linked_by[rid][:2] if rid in linked_by else ("new person", None)
        if rid in pending_ids or current.get(rid) != mid:
            record_rows.append({"id": rid, "master_id": mid, "match_status": "matched", "link_rule": rule[:80],
                                "link_score": score})
        if current.get(rid) != mid:
            moved.append((rid, mid, rule))
            if rid in linked_by:
                result.linked += 1
    bulk.update_rows(session, SourceRecord.__table__, "id", record_rows)
    del record_rows
    for start in range(0, len(moved), EVENT_CHUNK):
        bulk.insert_rows(session, PersonEvent.__table__, [
            {"master_id": mid, "kind": "linked", "source_record_id": rid, "run_id": run_id,
             "reason": rule[:200], "evidence": _linked_evidence(linked_by.get(rid), model_file)}
            for rid, mid, rule in moved[start : start + EVENT_CHUNK]])
    result.new_persons = len(plan.new_masters)

    existing_pairs = _review_pairs_among(session, set(decisions.record_id_l) | {min(a, b) for a, b in refused})
    final = lambda rid: plan.assignments.get(rid, current.get(rid))  # noqa: E731
    reviews: dict[tuple[int, int], tuple[str, float, dict[str, Any]]] = {}
    for a, b, rule, outcome, weight, prob, ev in decisions.itertuples(index=False):
        if outcome == "review":
            reviews[(int(a), int(b))] = (str(rule), float(prob), ev or {"rule": rule})
    for a, b in refused:
        key = (min(a, b), max(a, b))
        ev = as_dict(evidence_of.get(key)) or {}
        why = plan.refused_reasons.get((a, b), "refused")
        prob = match_probability(ev)
        reviews[key] = (f"link refused: {why}"[:80], prob, {**ev, "refused": why})
    for (a, b), (rule, prob, ev) in sorted(reviews.items()):
        if (a, b) in existing_pairs or final(a) == final(b):
            continue
        session.add(ReviewPair(record_id_l=a, record_id_r=b, score=prob, rule=rule[:80], run_id=run_id,
                               evidence={**as_dict(ev), "model_file": model_file}))
        result.review_pairs_added += 1
    session.flush()
    from joinedup.api.search_keys import KnownFeatures, refresh_search_keys

    # the night's features (every record of every person it touched): the search keys are
    # made from them, not from the records standardised again
    known = KnownFeatures(features) if features is not None else None
    refresh_golden(session, {*plan.assignments.values(), *(s for _, s in plan.merges)}, run_id, features=known)
    refresh_search_keys(session, {absorbed for absorbed, _ in plan.merges})  # merged away: keys dropped


#: "linked" events written per insert: their evidence is made a block at a time.
EVENT_CHUNK = 20_000


def _linked_evidence(linked: tuple[str, float | None, Any, tuple[int, int]] | None,
                     model_file: str | None) -> dict[str, Any]:
    """A "linked" event's evidence: the pair that placed the record (its scored evidence, or
    the rule's name), or that no existing person matched."""
    if linked is None:
        return {"rule": "new person", "model_file": model_file}
    kind, _, ev, (left, right) = linked
    return {**(as_dict(ev) or {"rule": kind}), "linked_with": {"record_id_l": left, "record_id_r": right},
            "model_file": model_file}


def _review_pairs_among(session: Session, left_ids: set[int]) -> set[tuple[int, int]]:
    """The review pairs already recorded whose left record is one of these."""
    ids = sorted(int(i) for i in left_ids)
    out: set[tuple[int, int]] = set()
    for start in range(0, len(ids), CHUNK):
        out.update(session.execute(select(ReviewPair.record_id_l, ReviewPair.record_id_r)
                                   .where(ReviewPair.record_id_l.in_(ids[start : start + CHUNK]))).all())
    return out
