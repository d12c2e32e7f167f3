"""Deterministic match rules: the sure cases, the pairs worth a steward's look, and the hard
constraints no score overrides.

They work on the match features of ``joinedup.mci.standardise`` (upper-case, normalised,
placeholder dates of birth already None). Each rule has a name a steward can read; it is
recorded with every link it makes.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
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
    # Family name changed (marriage) or mistyped, everything else the same: one home (a
    # postcode and house, or a UPRN), one given name, one birth date. Household members
    # differ in given name and birth date, twins in given name: neither fires this.
    Rule("given_name_dob_address", "same given name, date of birth and address (postcode and house)",
         ("given_name_std", "dob", "address_key"), "link", 0.98),
    Rule("given_name_dob_uprn", "same given name, date of birth and property (UPRN)",
         ("given_name_std", "dob", "uprn"), "link", 0.98),
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


def conflict(left: Mapping[str, Any], right: Mapping[str, Any]) -> str | None:
    """Why two records can never be one person, or None. Checked before any link is made."""
    for key, label in (("ni_key", "different NI numbers"), ("nhs_number", "different NHS numbers")):
        if left.get(key) and right.get(key) and left[key] != right[key]:
            return label
    if household_twin_setting(left, right) and given_names_differ(left, right):
        return "possible twins: same home, date of birth and family name, different given names"
    return None


def household_twin_setting(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    """One home (UPRN or address), one date of birth, one family name, and no NI or NHS
    number in common: where twins and one person's two records look alike."""
    # Written out rather than as a loop over keys: it runs for every scored pair and every
    # pair the cluster guard compares (about 700k calls at 250k records).
    dob = left.get("dob")
    if not dob or dob != right.get("dob") or left.get("family_name_std") != right.get("family_name_std"):
        return False
    ni, nhs = left.get("ni_key"), left.get("nhs_number")
    if (ni and ni == right.get("ni_key")) or (nhs and nhs == right.get("nhs_number")):
        return False  # a shared NI or NHS number: one person, not twins
    uprn, address = left.get("uprn"), left.get("address_key")
    return bool((uprn and uprn == right.get("uprn")) or (address and address == right.get("address_key")))


def possible_twins_with_related_names(left: Mapping[str, Any], right: Mapping[str, Any]) -> str | None:
    """Why a pair the model would link goes to a steward instead: one home, one birth date,
    one family name, no shared NI or NHS number, given names that are related but not the
    same name (Anna and Hannah, Bill and William: one person's spellings, or twins whose
    parents chose related names), and a personal contact that differs (both have an email,
    or a phone, and they differ). A score cannot tell those twins from one person; a
    steward can."""
    a, b = left.get("given_name_std"), right.get("given_name_std")
    if not a or not b or a.split()[0] == b.split()[0] or given_names_differ(left, right):
        return None
    first_a, first_b = a.split()[0], b.split()[0]
    if len(first_a) == 1 or len(first_b) == 1 or _edit_distance_at_most_one(first_a, first_b):
        return None  # an initial, or a one-letter slip: one name
    own_contacts = any(left.get(k) and right.get(k) and left[k] != right[k] for k in ("email_std", "phone_std"))
    if own_contacts and left.get("family_name_std") and household_twin_setting(left, right):
        return "possible twins with related given names: same home, date of birth and family name"
    return None


def _edit_distance_at_most_one(a: str, b: str) -> bool:
    """One insertion, deletion, substitution or swap of neighbours turns a into b."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]


def given_names_differ(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    """True when two given names are clearly two people's, not one person's spellings.

    Not different: a shared name root (nickname), the same first word (a middle name
    written into the given name), an initial that fits the other's first letter, or a
    one-letter typo (Anddrew, Gray for Gary). Twins rarely differ by so little.
    """
    a, b = left.get("given_name_std"), right.get("given_name_std")
    if not a or not b:
        return False
    if _roots(left.get("given_name_roots")) & _roots(right.get("given_name_roots")):
        return False
    first_a, first_b = a.split()[0], b.split()[0]
    if first_a == first_b:
        return False
    if (len(first_a) == 1 or len(first_b) == 1) and first_a[0] == first_b[0]:
        return False
    return not _edit_distance_at_most_one(first_a, first_b)


def _transposed(a: str, b: str) -> bool:
    return a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]


def never_same_cluster(left: Mapping[str, Any], right: Mapping[str, Any]) -> str | None:
    """Why two records must not end up under one master ID, even through other records.

    The hard constraints of :func:`conflict`, plus a cluster check against household
    chaining: a parent and child (or two siblings) at one home share almost everything
    but their given name and date of birth, so two records that differ in BOTH (a full
    date of birth that is not a day/month transposition, and given names with no common
    root or initial) are never joined by way of a third record.
    """
    why = conflict(left, right)
    if why:
        return why
    dob_l, dob_r = left.get("dob"), right.get("dob")
    given_l, given_r = left.get("given_name_std"), right.get("given_name_std")
    if (
        dob_l and dob_r and dob_l != dob_r and not _transposed(dob_l, dob_r)
        and given_l and given_r and given_l[0] != given_r[0]
        and given_names_differ(left, right)
    ):
        return "different date of birth and given name"
    return None


#: Every feature the constraints and twin checks of this module read (``conflict``,
#: ``household_twin_setting``, ``possible_twins_with_related_names``, ``given_names_differ``,
#: ``never_same_cluster``): a caller that hands them rows needs only these columns, a third
#: of the features (tests/unit/test_rules.py proves the list complete by recording reads).
GUARD_COLUMNS = ("ni_key", "nhs_number", "uprn", "address_key", "dob", "family_name_std",
                 "given_name_std", "given_name_roots", "email_std", "phone_std")


def guard_rows(features: pd.DataFrame, record_ids: Sequence[int] | None = None) -> dict[int, dict[str, Any]]:
    """record id -> the features the guards read (``GUARD_COLUMNS``), as Python values (what
    ``DataFrame.to_dict('index')`` gives, built from column lists: several times faster),
    for ``record_ids`` (default every record)."""
    if record_ids is not None:
        features = features.set_index("record_id", drop=False).loc[list(record_ids)]
    present = [c for c in GUARD_COLUMNS if c in features.columns]
    values = [features[c].tolist() for c in present]
    return {rid: dict(zip(present, row)) for rid, *row in zip(features["record_id"].tolist(), *values)}


def candidate_pairs(features: pd.DataFrame, pending_ids: set[int]) -> pd.DataFrame:
    """Pairs (left < right) that some rule fires on, each with the strongest rule that fired
    (a link before a review, then the higher score, then the rule listed first); at least one
    side of each pair is pending (new or changed tonight)."""
    parts = []
    # Each column's "has a value" mask once (nine rules share a few columns), and the join's
    # right side cut to the records whose key values some pending record has: an incremental
    # night holds ~30 candidates per pending record, so the merge hashes a few percent of
    # the rows (the same pairs: a row the cut drops has no partner on the left).
    present: dict[str, np.ndarray] = {}
    is_pending = features["record_id"].isin(pending_ids).to_numpy()
    for number, rule in enumerate(RULES):
        keys = list(rule.keys)
        for key in keys:
            if key not in present:
                present[key] = features[key].notna().to_numpy()
        usable = np.logical_and.reduce([present[key] for key in keys])
        left = features.loc[usable & is_pending, ["record_id", *keys]]
        if left.empty:
            continue
        partner = usable.copy()
        for key in keys:
            partner &= features[key].isin(left[key]).to_numpy()
        keyed = features.loc[partner, ["record_id", *keys]]
        joined = left.merge(keyed, on=keys, suffixes=("_a", "_b"))
        a, b = joined["record_id_a"].to_numpy(), joined["record_id_b"].to_numpy()
        differ = a != b
        a, b = a[differ], b[differ]
        parts.append(pd.DataFrame({"record_id_l": np.minimum(a, b), "record_id_r": np.maximum(a, b),
                                   "rank": 1 if rule.outcome == "link" else 0, "score": rule.score,
                                   "number": number}))
    if not parts:
        return pd.DataFrame([], columns=PAIR_COLUMNS)
    found = pd.concat(parts, ignore_index=True)
    found = found.sort_values(["record_id_l", "record_id_r", "rank", "score", "number"],
                              ascending=[True, True, False, False, True], kind="stable")
    found = found.drop_duplicates(["record_id_l", "record_id_r"], keep="first")
    ids = np.unique(np.concatenate([found["record_id_l"].to_numpy(), found["record_id_r"].to_numpy()]))
    rows = guard_rows(features, ids.tolist())
    out = []
    for a, b, number in zip(found["record_id_l"].tolist(), found["record_id_r"].tolist(), found["number"].tolist()):
        rule = RULES[number]
        why_not = conflict(rows[a], rows[b])
        outcome = rule.outcome if why_not is None else "blocked"
        out.append((int(a), int(b), rule.name if why_not is None else f"{rule.name} (blocked: {why_not})",
                    outcome, rule.score))
    return pd.DataFrame(out, columns=PAIR_COLUMNS)
