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


def candidate_pairs(features: pd.DataFrame, pending_ids: set[int], checks: Any = None) -> pd.DataFrame:
    """Pairs (left < right) that some rule fires on, each with the strongest rule that fired
    (a link before a review, then the higher score, then the rule listed first); at least one
    side of each pair is pending (new or changed tonight). ``checks``: the features'
    :class:`joinedup.mci.pair_checks.PairChecks`, if the caller has made it already."""
    from joinedup.mci.pair_checks import PairChecks  # it asks this module's constraints

    checks = checks if checks is not None else PairChecks(features)
    # Each key column as integer codes (equal codes, equal values; -1 missing: what notna()
    # leaves out), a rule's keys combined into one integer, so each rule's join is one
    # integer merge. The join's right side is cut to the records whose key some pending
    # record has: an incremental night holds ~30 candidates per pending record, so the merge
    # hashes a few percent of the rows (the same pairs: a row the cut drops has no partner
    # on the left).
    record_ids = features["record_id"].to_numpy().astype(np.int64)
    is_pending = features["record_id"].isin(pending_ids).to_numpy()
    found_l, found_r, found_rule = [], [], []
    for number, rule in enumerate(RULES):
        usable = np.logical_and.reduce([checks.codes(key) >= 0 for key in rule.keys])
        key = np.full(len(features), -1, dtype=np.int64)
        key[usable] = _combined_key([checks.codes(k)[usable] for k in rule.keys])
        on_left = usable & is_pending
        if not on_left.any():
            continue
        partner = usable if on_left.sum() == usable.sum() else usable & np.isin(key, key[on_left])
        joined = pd.DataFrame({"a": record_ids[on_left], "key": key[on_left]}).merge(
            pd.DataFrame({"b": record_ids[partner], "key": key[partner]}), on="key")
        a, b = joined["a"].to_numpy(), joined["b"].to_numpy()
        differ = a != b
        a, b = a[differ], b[differ]
        found_l.append(np.minimum(a, b))
        found_r.append(np.maximum(a, b))
        found_rule.append(np.full(len(a), number, dtype=np.int64))
    if not found_l or not sum(len(x) for x in found_l):
        return pd.DataFrame([], columns=PAIR_COLUMNS)
    left, right, number = np.concatenate(found_l), np.concatenate(found_r), np.concatenate(found_rule)
    # the strongest rule of each pair first (a link before a review, then the higher score,
    # then the rule listed first), then each pair once
    rank = np.array([1 if r.outcome == "link" else 0 for r in RULES])[number]
    score = np.array([r.score for r in RULES], dtype=float)[number]
    order = np.lexsort((number, -score, -rank, right, left))
    left, right, number, score = left[order], right[order], number[order], score[order]
    first = np.ones(len(left), dtype=bool)
    first[1:] = (left[1:] != left[:-1]) | (right[1:] != right[:-1])
    left, right, number, score = left[first], right[first], number[first], score[first]

    why_not = checks.conflicts(checks.positions(left), checks.positions(right))
    names = np.array([r.name for r in RULES], dtype=object)[number]
    outcomes = np.array([r.outcome for r in RULES], dtype=object)[number]
    blocked = np.flatnonzero(why_not != None)  # noqa: E711 - elementwise over an object array
    for i in blocked.tolist():
        names[i] = f"{names[i]} (blocked: {why_not[i]})"
    outcomes[blocked] = "blocked"
    return pd.DataFrame({"record_id_l": left, "record_id_r": right, "rule": names, "outcome": outcomes,
                         "score": score}, columns=PAIR_COLUMNS)


def _combined_key(codes: list[np.ndarray]) -> np.ndarray:
    """One integer per row for a tuple of integer codes (all >= 0): equal tuples, equal keys.
    Codes are combined two at a time and renumbered, so the product never overflows."""
    key = codes[0].astype(np.int64)
    for more in codes[1:]:
        more = more.astype(np.int64)
        key = pd.factorize(key * (int(more.max(initial=0)) + 1) + more)[0].astype(np.int64)
    return key
