"""Find a resident from partial, misspelt details, ranked with a score and the reasons.

The query is standardised with the matcher's rules (nickname roots, Soundex, postcode and
identifier normalisation) through ``record_features``, the plain-Python path for one record
that gives the same features as ``joinedup.mci.standardise`` (property-tested): building
pandas frames per request made a search cost over a second under load. Candidates come from
the search-key index in indexed SQL, bounded twice: at most ``ROWS_PER_KEY`` index rows per
key and ``CANDIDATE_CAP`` persons, those sharing the most keys with the query first. Each
candidate's source records are then compared field by field in Python with the levels of the
match model (exact, nickname, sounds alike, day and month transposed, same postcode, ...).
Candidates' features come from ``comparison_features`` (only the columns a search compares),
and the retrieval statement is plain SQL built once per number of keys: building either
anew per request was most of a search's cost. When a trained model exists, each level's
weight is the model's own (log2 m/u); otherwise the defaults below, which are a trained
model's values rounded. A person's score is their best record's total.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import jellyfish
from sqlalchemy import select, text
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.orm import Session

from joinedup.api.models import PersonSearchKey
from joinedup.api.record_features import comparison_features, record_features
from joinedup.api.search_keys import feature_keys
from joinedup.dates import parse_date, transposed
from joinedup.mci.store import Person, SourceRecord

DOB_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d %m %Y", "%d/%m/%y", "%Y%m%d")
# persons scored per search, those sharing the most keys first. 50, not 100: scoring is most
# of a search's cost, and on a 100,000-record index the true person was in the top 3 for
# 300 of 300 noisy queries with either (benchmarks/api_bench.py reports the top-3 rate too)
CANDIDATE_CAP = 50
ROWS_PER_KEY = 2_000  # index rows read per key: a very common key cannot flood the search

# (comparison, level label) -> weight in bits; labels are the match model's own
DEFAULT_WEIGHTS: dict[tuple[str, str], float] = {
    ("given_name", "Exact match on given_name_std"): 8.8,
    ("given_name", "Nickname or variant of the same name"): 4.2,
    ("given_name", "Jaro-Winkler >= 0.92"): 6.4,
    ("given_name", "Jaro-Winkler >= 0.80"): 2.3,
    ("given_name", "Same initial only"): -1.4,
    ("given_name", "All other comparisons"): -6.5,
    ("family_name", "Exact match on family_name_std"): 8.0,
    ("family_name", "Shares a surname part or previous surname"): 4.1,
    ("family_name", "Sounds the same (phonetic code)"): 4.0,
    ("family_name", "Jaro-Winkler >= 0.92"): 5.4,
    ("family_name", "Jaro-Winkler >= 0.80"): -0.5,
    ("family_name", "All other comparisons"): -4.5,
    ("dob", "Exact match on dob"): 13.2,
    ("dob", "Day and month transposed"): 8.6,
    ("dob", "Same year and month"): -3.9,
    ("dob", "Within a year"): -8.4,
    ("dob", "Within ten years"): -7.2,
    ("dob", "All other comparisons"): -8.4,
    ("ni_number", "Exact match on ni_key"): 13.9,
    ("ni_number", "All other comparisons"): -9.8,
    ("residence", "Same postcode"): 3.0,
    ("residence", "Same postcode district"): 1.0,
    ("residence", "All other comparisons"): -2.0,
    ("email", "Exact match on email_std"): 14.0,
    ("email", "All other comparisons"): -2.9,
    ("phone", "Exact match on phone_std"): 3.0,
    ("phone", "All other comparisons"): -1.0,
}
DEFAULT_PRIOR = 1e-4


@dataclass
class Weights:
    """Level weights and the prior, from the current match model when there is one."""

    bits: dict[tuple[str, str], float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    prior: float = DEFAULT_PRIOR
    model_version: str | None = None

    def of(self, comparison: str, level: str) -> float:
        return self.bits.get((comparison, level), DEFAULT_WEIGHTS.get((comparison, level), 0.0))


def load_weights(model_path: Path | None = None) -> Weights:
    """The current model's level weights (or defaults when none is trained yet)."""
    from joinedup.mci import model_store
    from joinedup.mci.probabilistic import load_model

    try:
        path = model_path or model_store.current_model_path()
    except FileNotFoundError:
        path = None
    if path is None:
        return Weights()
    model = load_model(path)
    bits = dict(DEFAULT_WEIGHTS)
    for comparison in model.splink_settings["comparisons"]:
        name = comparison["output_column_name"]
        for level in comparison["comparison_levels"]:
            m, u = level.get("m_probability"), level.get("u_probability")
            label = level.get("label_for_charts") or level.get("sql_condition")
            if m and u and (name, label) in DEFAULT_WEIGHTS:
                bits[(name, label)] = math.log2(m / u)
    prior = float(model.splink_settings.get("probability_two_random_records_match", DEFAULT_PRIOR))
    return Weights(bits=bits, prior=prior, model_version=model.model_version)


# --- the query --------------------------------------------------------------------------------

class QueryError(ValueError):
    """The search cannot run as asked (the message names the field, never its value)."""


def parse_dob(text: str | None) -> str | None:
    """ISO date from ISO or day-first text ('3/4/1961' is 3 April 1961); transposition is
    tried by the comparison, so an ambiguous date still finds its person."""
    if text is None or not str(text).strip():
        return None
    parsed, _flags = parse_date(str(text).strip(), DOB_FORMATS, today=date.today())
    if parsed is None:
        raise QueryError("date_of_birth is not a date: use YYYY-MM-DD or DD/MM/YYYY")
    return parsed.isoformat()


def query_features(query: dict[str, Any]) -> dict[str, Any]:
    """The query as one standardised record (the matcher's features)."""
    record = {k: query.get(k) for k in ("given_name", "family_name", "postcode", "ni_number", "phone", "email")}
    record["date_of_birth"] = parse_dob(query.get("date_of_birth"))
    return record_features(record)


def query_keys(features: dict[str, Any]) -> set[str]:
    keys = feature_keys(features)
    if features.get("dob"):
        swapped = transposed(features["dob"])
        if swapped:
            keys.add(f"dob:{swapped.isoformat()}")
    return keys


# --- comparing --------------------------------------------------------------------------------

def _jw(a: str, b: str) -> float:
    return jellyfish.jaro_winkler_similarity(a, b)


def _split(value: str | None) -> set[str]:
    return {v for v in (value or "").split("|") if v}


def compare(q: dict[str, Any], r: dict[str, Any]) -> list[tuple[str, str]]:
    """(comparison, level) for each field the query gives and the record holds."""
    out: list[tuple[str, str]] = []
    qg, rg = q.get("given_name_std"), r.get("given_name_std")
    if qg and rg:
        if qg == rg:
            level = "Exact match on given_name_std"
        elif _split(q.get("given_name_roots")) & _split(r.get("given_name_roots")):
            level = "Nickname or variant of the same name"
        elif _jw(qg, rg) >= 0.92:
            level = "Jaro-Winkler >= 0.92"
        elif _jw(qg, rg) >= 0.80:
            level = "Jaro-Winkler >= 0.80"
        elif qg[0] == rg[0] and (len(qg) == 1 or len(rg) == 1):
            level = "Same initial only"
        else:
            level = "All other comparisons"
        out.append(("given_name", level))
    qf, rf = q.get("family_name_std"), r.get("family_name_std")
    if qf and rf:
        if qf == rf:
            level = "Exact match on family_name_std"
        elif _split(q.get("family_name_parts")) & _split(r.get("family_name_parts")):
            level = "Shares a surname part or previous surname"
        elif q.get("family_name_phonetic") and q.get("family_name_phonetic") == r.get("family_name_phonetic"):
            level = "Sounds the same (phonetic code)"
        elif _jw(qf, rf) >= 0.92:
            level = "Jaro-Winkler >= 0.92"
        elif _jw(qf, rf) >= 0.80:
            level = "Jaro-Winkler >= 0.80"
        else:
            level = "All other comparisons"
        out.append(("family_name", level))
    qd, rd = q.get("dob"), r.get("dob")
    if qd and rd:
        a, b = date.fromisoformat(qd), date.fromisoformat(rd)
        swapped = transposed(a)
        if a == b:
            level = "Exact match on dob"
        elif swapped is not None and swapped == b:
            level = "Day and month transposed"
        elif (a.year, a.month) == (b.year, b.month):
            level = "Same year and month"
        elif abs((a - b).days) <= 365:
            level = "Within a year"
        elif abs((a - b).days) <= 3653:
            level = "Within ten years"
        else:
            level = "All other comparisons"
        out.append(("dob", level))
    for comparison, col, exact in (("ni_number", "ni_key", "Exact match on ni_key"),
                                   ("email", "email_std", "Exact match on email_std"),
                                   ("phone", "phone_std", "Exact match on phone_std")):
        if q.get(col) and r.get(col):
            out.append((comparison, exact if q[col] == r[col] else "All other comparisons"))
    if q.get("postcode") and r.get("postcode"):
        if q["postcode"] == r["postcode"]:
            level = "Same postcode"
        elif q.get("postcode_outward") == r.get("postcode_outward"):
            level = "Same postcode district"
        else:
            level = "All other comparisons"
        out.append(("residence", level))
    return out


@dataclass
class Candidate:
    master_id: str
    score: float
    match_probability: float
    reasons: list[dict[str, Any]]


def _probability(bits: float, prior: float) -> float:
    total = bits + math.log2(prior / (1.0 - prior))
    if total > 60:
        return 1.0
    return 2.0 ** total / (1.0 + 2.0 ** total)


TABLE = PersonSearchKey.__tablename__


@lru_cache(maxsize=128)
def _retrieve_sql(n_keys: int, socialcare: bool) -> TextClause:
    """The retrieval statement for ``n_keys`` keys, built once per shape (constructing it
    with the expression language cost more than running it)."""
    only_open = "" if socialcare else " AND restricted = :open"
    per_key = " UNION ALL ".join(
        f"SELECT master_id FROM (SELECT master_id FROM {TABLE} WHERE key = :k{i}{only_open} "
        f"LIMIT :per_key) AS key{i}" for i in range(n_keys))
    return text(f"SELECT master_id, count(*) AS hits FROM ({per_key}) AS hits "
                "GROUP BY master_id ORDER BY hits DESC, master_id LIMIT :cap")


def retrieve(session: Session, keys: set[str], socialcare: bool, cap: int = CANDIDATE_CAP,
             rows_per_key: int = ROWS_PER_KEY) -> list[str]:
    """Master IDs sharing the most keys with the query, at most ``cap``.

    One indexed lookup per key (``ix_person_search_keys_key``), each limited to
    ``rows_per_key`` rows, so the work is bounded whatever the key's frequency; then the
    persons are counted by the keys they share."""
    if not keys:
        return []
    ordered = sorted(keys)
    params: dict[str, Any] = {f"k{i}": key for i, key in enumerate(ordered)}
    params.update(per_key=rows_per_key, cap=cap)
    if not socialcare:
        params["open"] = False
    return [row.master_id for row in session.execute(_retrieve_sql(len(ordered), socialcare), params)]


def _candidate_records(session: Session, ids: list[str], socialcare: bool) -> list[Any]:
    """(id, master_id, record) of the candidates' source records the caller may see."""
    query = (select(SourceRecord.id, SourceRecord.master_id, SourceRecord.record)
             .join(Person, Person.master_id == SourceRecord.master_id)
             .where(SourceRecord.master_id.in_(ids), Person.status == "active"))
    if not socialcare:
        query = query.where(SourceRecord.special_category.is_(False))
    return session.execute(query).all()


def search(session: Session, query: dict[str, Any], weights: Weights, *, socialcare: bool,
           limit: int = 10) -> list[Candidate]:
    """Candidates for the query, best first."""
    q = query_features(query)
    ids = retrieve(session, query_keys(q), socialcare)
    if not ids:
        return []
    rows = _candidate_records(session, ids, socialcare)
    if not rows:
        return []
    feats = [comparison_features(r.record or {}, r.id) for r in rows]
    best: dict[str, tuple[float, list[tuple[str, str]]]] = {}
    for r, f in zip(rows, feats):
        levels = compare(q, f)
        score = sum(weights.of(c, lv) for c, lv in levels)
        if r.master_id not in best or score > best[r.master_id][0]:
            best[r.master_id] = (score, levels)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
    return [Candidate(master_id=mid, score=round(score, 2),
                      match_probability=round(_probability(score, weights.prior), 6),
                      reasons=[{"field": c, "level": lv, "weight": round(weights.of(c, lv), 2)} for c, lv in levels])
            for mid, (score, levels) in ranked]
