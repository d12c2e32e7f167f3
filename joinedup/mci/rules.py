"""Deterministic match rules: the sure cases, the pairs worth a steward's look, and the hard
constraints no score overrides.

They work on the match features of ``joinedup.mci.standardise`` (upper-case, normalised,
placeholder dates of birth already None). Each rule has a name a steward can read; it is
recorded with every link it makes.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    keys: tuple[str, ...]  # features that must all be present and equal
    outcome: str  # "link" or "review"
    score: float


RULES: tuple[Rule, ...] = (
    Rule("ni_and_dob", "same valid NI number and date of birth", ("ni_key", "dob"), "link", 1.0),
    Rule("nhs_and_dob", "same valid NHS number and date of birth", ("nhs_number", "dob"), "link", 1.0),
    Rule("name_dob_postcode", "same given and family name, date of birth and postcode",
         ("given_name_std", "family_name_std", "dob", "postcode"), "link", 0.99),
    Rule("name_dob_uprn", "same given and family name, date of birth and property (UPRN)",
         ("given_name_std", "family_name_std", "dob", "uprn"), "link", 0.99),
    Rule("ni_and_family_name", "same valid NI number and family name, date of birth differs or is missing",
         ("ni_key", "family_name_std"), "review", 0.9),
    Rule("family_name_and_dob", "same family name and date of birth, other details differ",
         ("family_name_std", "dob"), "review", 0.6),
    Rule("given_name_and_dob_and_postcode", "same given name, date of birth and postcode, family name differs",
         ("given_name_std", "dob", "postcode"), "review", 0.6),
)

PAIR_COLUMNS = ["record_id_l", "record_id_r", "rule", "outcome", "score"]


def _roots(value: object) -> set[str]:
    return set(str(value).split("|")) if value else set()


def conflict(left: pd.Series, right: pd.Series) -> str | None:
    """Why two records can never be one person, or None. Checked before any link is made."""
    for key, label in (("ni_key", "different NI numbers"), ("nhs_number", "different NHS numbers")):
        if left.get(key) and right.get(key) and left[key] != right[key]:
            return label
    shared_id = any(left.get(k) and left.get(k) == right.get(k) for k in ("ni_key", "nhs_number"))
    same_home = (left.get("uprn") and left.get("uprn") == right.get("uprn")) or (
        left.get("address_key") and left.get("address_key") == right.get("address_key")
    )
    if (
        not shared_id
        and same_home
        and left.get("dob") and left.get("dob") == right.get("dob")
        and left.get("family_name_std") == right.get("family_name_std")
        and left.get("given_name_std") and right.get("given_name_std")
        and not (_roots(left.get("given_name_roots")) & _roots(right.get("given_name_roots")))
    ):
        return "possible twins: same home, date of birth and family name, different given names"
    return None


def candidate_pairs(features: pd.DataFrame, pending_ids: set[int]) -> pd.DataFrame:
    """Pairs (left < right) that some rule fires on, each with the strongest rule that fired;
    at least one side of each pair is pending (new or changed tonight)."""
    found: dict[tuple[int, int], Rule] = {}
    frame = features.set_index("record_id", drop=False)
    for rule in RULES:
        keyed = frame.dropna(subset=list(rule.keys))
        if keyed.empty:
            continue
        left = keyed[keyed["record_id"].isin(pending_ids)][["record_id", *rule.keys]]
        joined = left.merge(keyed[["record_id", *rule.keys]], on=list(rule.keys), suffixes=("_a", "_b"))
        joined = joined[joined["record_id_a"] != joined["record_id_b"]]
        for a, b in zip(joined["record_id_a"], joined["record_id_b"]):
            pair = (min(a, b), max(a, b))
            best = found.get(pair)
            if best is None or _stronger(rule, best):
                found[pair] = rule
    rows = []
    for (a, b), rule in found.items():
        why_not = conflict(frame.loc[a], frame.loc[b])
        outcome = rule.outcome if why_not is None else "blocked"
        rows.append((a, b, rule.name if why_not is None else f"{rule.name} (blocked: {why_not})", outcome, rule.score))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def _stronger(new: Rule, old: Rule) -> bool:
    rank = {"link": 1, "review": 0}
    return (rank[new.outcome], new.score) > (rank[old.outcome], old.score)
