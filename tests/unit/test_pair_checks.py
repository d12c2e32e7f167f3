"""The constraints asked over whole columns (``PairChecks``) and ``decide_pairs`` built on
them give exactly what the per-pair rules and the loop as first written gave: random
features with few distinct values (so NI numbers, twins and household chains collide),
blank strings, missing columns, and a column that cannot be coded."""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import joinedup.mci.probabilistic as probabilistic
from joinedup.mci.match import DECISION_COLUMNS, decide_pairs
from joinedup.mci.pair_checks import PairChecks
from joinedup.mci.pair_evidence import as_dict
from joinedup.mci.probabilistic import field_evidence
from joinedup.mci.rules import (
    candidate_pairs, conflict, guard_rows, household_twin_setting, never_same_cluster,
    possible_twins_with_related_names,
)
from joinedup.mci.standardise import FEATURE_COLUMNS
from joinedup.mci.thresholds import MatchThresholds

VALUES = {
    "ni_key": [None, None, "", "AB123456", "CE654321"],
    "nhs_number": [None, None, "9434765919", "9434765870"],
    "uprn": [None, "", "100", "200"],
    "address_key": [None, "", "NP201AB|1|3|CHURCH ROAD", "CF101AA||2|MILL LANE"],
    "dob": [None, "", "1990-01-02", "1990-02-01", "1961-04-03"],
    "family_name_std": [None, "", "SMITH", "JONES"],
    "given_name_std": [None, "", "ANNA", "HANNAH", "TOM", "THOMAS", "BILL", "WILLIAM", "T", "ANN MARIE"],
    "given_name_roots": [None, "ANNA", "ANNA|HANNAH", "THOMAS", "WILLIAM"],
    "email_std": [None, "a@example.org", "b@example.org"],
    "phone_std": [None, "07700900123"],
    "postcode": [None, "NP20 1AB", "CF10 1AA"],
}


@st.composite
def frames(draw: Callable) -> pd.DataFrame:
    n = draw(st.integers(1, 16))
    rows = [{c: draw(st.sampled_from(v)) for c, v in VALUES.items()} for _ in range(n)]
    frame = pd.DataFrame(rows, columns=list(VALUES), dtype=object)
    frame.insert(0, "record_id", draw(st.permutations(list(range(100, 100 + 3 * n))))[:n])
    if draw(st.booleans()):  # a guard column the frame does not have: None for every record
        frame = frame.drop(columns=[draw(st.sampled_from(["uprn", "email_std", "address_key"]))])
    return frame


def _all_pairs(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    n = len(frame)
    left, right = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return left.ravel(), right.ravel()


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict("records")


@settings(max_examples=300, deadline=None)
@given(frames())
def test_every_check_answers_as_the_rule_itself(frame: pd.DataFrame) -> None:
    checks = PairChecks(frame)
    assert checks.coded
    rows = _rows(frame)
    left, right = _all_pairs(frame)
    for batch, rule in ((checks.conflicts, conflict), (checks.never_same_cluster, never_same_cluster),
                        (checks.twin_doubts, possible_twins_with_related_names)):
        assert batch(left, right).tolist() == [rule(rows[a], rows[b]) for a, b in zip(left, right)]
    assert checks.household_twin_setting(left, right).tolist() == [
        household_twin_setting(rows[a], rows[b]) for a, b in zip(left, right)]


def test_a_column_it_cannot_code_is_asked_pair_by_pair() -> None:
    """A NaN is true and unequal to itself in Python: its column is not coded, every pair is
    asked, and the answers are still the rules'."""
    frame = pd.DataFrame({"record_id": [1, 2, 3], "ni_key": [float("nan"), float("nan"), "AB123456"],
                          "dob": ["1990-01-02"] * 3, "family_name_std": ["SMITH"] * 3,
                          "given_name_std": ["ANNA", "TOM", "ANNA"]}, dtype=object)
    checks = PairChecks(frame)
    assert not checks.coded
    rows = _rows(frame)
    left, right = _all_pairs(frame)
    assert checks.conflicts(left, right).tolist() == [conflict(rows[a], rows[b]) for a, b in zip(left, right)]
    assert conflict(rows[0], rows[1]) == "different NI numbers"  # nan != nan


def test_positions_refuse_an_unknown_record() -> None:
    checks = PairChecks(pd.DataFrame({"record_id": [5, 7], "dob": [None, None]}, dtype=object))
    assert checks.positions([7, 5]).tolist() == [1, 0]
    with pytest.raises(KeyError):
        checks.positions([5, 6])


# -- decide_pairs against the loop as first written ----------------------------------------------

def _evidence_as_first_written(model: Any, row: dict[str, Any], model_file: str) -> dict[str, Any]:
    fields = [{"field": name, "level": level, "match_weight": round(weight, 3), "tf_adjustment": round(tf, 3)}
              for name, level, weight, tf in field_evidence(model, row)]
    return {"match_weight": round(float(row["match_weight"]), 3), "match_probability": float(row["match_probability"]),
            "prior_weight": round(float(model.prior_match_weight), 3), "fields": fields,
            "blocking_rule": row.get("blocking_rule"), "model_version": model.model_version, "model_file": model_file}


def _decide_as_first_written(features: pd.DataFrame, pending: set[int], thresholds: MatchThresholds,
                             model: Any, scored: pd.DataFrame | None, with_evidence: bool) -> pd.DataFrame:
    rules = candidate_pairs(features, pending)
    decided: dict[tuple[int, int], dict[str, Any]] = {}
    for a, b, rule, outcome, score in rules.itertuples(index=False):
        if model is not None and outcome == "review":
            continue
        decided[(int(a), int(b))] = {"rule": rule, "outcome": outcome, "match_weight": None,
                                     "match_probability": float(score), "evidence": {"rule": rule}}
    if model is not None:
        by_id = guard_rows(features)
        columns = list(scored.columns)
        for values in zip(*(scored[c].tolist() for c in columns)):
            row = dict(zip(columns, values))
            key = (int(row["record_id_l"]), int(row["record_id_r"]))
            weight = float(row["match_weight"])
            known = decided.get(key)
            if known is not None:
                known["match_weight"] = weight
                if with_evidence:
                    known["evidence"] = {"rule": known["rule"], **_evidence_as_first_written(model, row, "m.json")}
                continue
            left, right = by_id[key[0]], by_id[key[1]]
            why = conflict(left, right)
            outcome = "blocked" if why else thresholds.outcome(weight)
            doubt = possible_twins_with_related_names(left, right) if outcome == "link" else None
            if doubt:
                outcome = "review"
            decided[key] = {
                "rule": f"model (blocked: {why})" if why else "model (review: possible twins, related names)" if doubt else "model",
                "outcome": outcome, "match_weight": weight,
                "match_probability": float(row["match_probability"]),
                "evidence": _evidence_as_first_written(model, row, "m.json") if with_evidence else None,
            }
    return pd.DataFrame([{"record_id_l": a, "record_id_r": b, **v} for (a, b), v in sorted(decided.items())],
                        columns=DECISION_COLUMNS)


class _Model:
    """What ``_evidence`` reads of a trained model: one comparison with two levels."""

    model_version = "test"
    prior_match_weight = -10.0
    splink_settings = {"comparisons": [{"output_column_name": "dob", "comparison_levels": [
        {"sql_condition": "null", "is_null_level": True, "label_for_charts": "null"},
        {"sql_condition": "a = b", "label_for_charts": "exact"},
        {"sql_condition": "ELSE", "label_for_charts": "else"}]}]}


def _features_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Hypothesis' guard columns padded to every feature column (None)."""
    out = frame.copy()
    for column in FEATURE_COLUMNS:
        if column not in out.columns:
            out[column] = None
    return out


@st.composite
def nights(draw: Callable) -> tuple:
    features = _features_frame(draw(frames()))
    ids = features["record_id"].tolist()
    pending = set(draw(st.lists(st.sampled_from(ids), min_size=1))) if draw(st.booleans()) else set(ids)
    pairs = sorted({(min(a, b), max(a, b)) for a, b in draw(st.lists(st.tuples(st.sampled_from(ids),
                                                                                   st.sampled_from(ids))))
                    if a != b})
    weights = [draw(st.sampled_from([-2.0, 0.0, 3.5, 8.0, 8.5, 20.0, math.nan])) for _ in pairs]
    scored = pd.DataFrame({"record_id_l": pd.Series([a for a, _ in pairs], dtype="int64"),
                           "record_id_r": pd.Series([b for _, b in pairs], dtype="int64"),
                           "match_weight": pd.Series(weights, dtype="float64"),
                           "match_probability": pd.Series([0.5] * len(pairs), dtype="float64"),
                           "blocking_rule": pd.Series(["dob+given_initial"] * len(pairs), dtype=object),
                           "gamma_dob": pd.Series([1] * len(pairs), dtype="int64"),
                           "mw_dob": pd.Series([2.5] * len(pairs), dtype="float64")})
    return features, pending, scored, draw(st.booleans()), draw(st.booleans())


@settings(max_examples=200, deadline=None)
@given(nights())
def test_decide_pairs_decides_as_the_loop_as_first_written(night: tuple) -> None:
    features, pending, scored, with_model, with_evidence = night
    thresholds = MatchThresholds()
    model = _Model() if with_model else None
    expected = _decide_as_first_written(features, pending, thresholds, model, scored, with_evidence)
    real = probabilistic.score_pairs
    probabilistic.score_pairs = lambda *args, **kwargs: scored
    try:
        got = decide_pairs(features, pending, thresholds, model=model, model_file="m.json",
                           with_evidence=with_evidence)
    finally:
        probabilistic.score_pairs = real
    assert got.dtypes.tolist() == expected.dtypes.tolist()
    pd.testing.assert_frame_equal(got.drop(columns="evidence"), expected.drop(columns="evidence"),
                                  check_exact=True)
    # json: a NaN weight inside an evidence dict is unequal to itself
    # made when read (pair_evidence.PairEvidence): made here, each must be the dict made before
    assert json.dumps([as_dict(e) for e in got["evidence"]]) == json.dumps(expected["evidence"].tolist())


def test_a_model_link_between_possible_twins_goes_to_review_as_before() -> None:
    """Anna and Hannah (one name root) at one home, one birth date, their own e-mails: the
    model's link becomes a review; a third record with another NI number is blocked."""
    base = {**dict.fromkeys(VALUES), "dob": "1990-01-02", "family_name_std": "SMITH", "uprn": "100",
            "given_name_roots": "ANNA|HANNAH"}
    features = _features_frame(pd.DataFrame([
        {**base, "record_id": 1, "given_name_std": "ANNA", "email_std": "a@example.org", "ni_key": "AB123456"},
        {**base, "record_id": 2, "given_name_std": "HANNAH", "email_std": "b@example.org"},
        {**base, "record_id": 3, "given_name_std": "ANNA", "ni_key": "CE654321", "email_std": "c@example.org"},
    ], dtype=object))
    scored = pd.DataFrame({"record_id_l": [1, 1, 2], "record_id_r": [2, 3, 3], "match_weight": [20.0, 20.0, 9.0],
                           "match_probability": [0.99, 0.99, 0.9], "blocking_rule": ["dob+given_initial"] * 3,
                           "gamma_dob": [1, 1, 1], "mw_dob": [2.5, 2.5, 2.5]})
    thresholds = MatchThresholds()
    expected = _decide_as_first_written(features, {1, 2, 3}, thresholds, _Model(), scored, False)
    real = probabilistic.score_pairs
    probabilistic.score_pairs = lambda *args, **kwargs: scored
    try:
        got = decide_pairs(features, {1, 2, 3}, thresholds, model=_Model(), with_evidence=False)
    finally:
        probabilistic.score_pairs = real
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got["rule"].tolist() == ["model (review: possible twins, related names)",
                                    "name_dob_uprn (blocked: different NI numbers)",
                                    "model (review: possible twins, related names)"]
    assert got["outcome"].tolist() == ["review", "blocked", "review"]


@settings(max_examples=100, deadline=None)
@given(frames())
def test_rows_are_guard_rows(frame: pd.DataFrame) -> None:
    from joinedup.mci.rules import guard_rows

    rows = PairChecks(frame).rows()
    expected = guard_rows(frame)
    assert dict(rows) == expected and list(rows) == list(expected) and rows.get(-1) is None
