"""A scored pair's evidence made when read (joinedup.mci.pair_evidence): the same dict as made
at once, and the merge's "linked" events built from it as before."""
from __future__ import annotations

import json
import math

import pandas as pd

from joinedup.mci.match import _linked_evidence
from joinedup.mci.pair_evidence import PairEvidence, ScoredColumns, as_dict, match_probability


class _Model:
    model_version = "test-1"
    prior_match_weight = -12.3456
    splink_settings = {"comparisons": [
        {"output_column_name": "dob", "comparison_levels": [
            {"sql_condition": "null", "is_null_level": True, "label_for_charts": "dob missing"},
            {"sql_condition": "a = b", "label_for_charts": "same date", "tf_adjustment_column": "dob"},
            {"sql_condition": "ELSE", "label_for_charts": "other date"}]},
        {"output_column_name": "sex", "comparison_levels": [
            {"sql_condition": "a = b", "label_for_charts": "same sex"},
            {"sql_condition": "ELSE", "label_for_charts": "other sex"}]}]}


def _scored() -> pd.DataFrame:
    return pd.DataFrame({
        "record_id_l": pd.Series([1, 2, 5], dtype="int64"),
        "record_id_r": pd.Series([2, 3, 9], dtype="int64"),
        "match_weight": [11.23456, -0.5, math.nan],
        "match_probability": [0.9996, 0.41, 0.0],
        "blocking_rule": pd.Series(["dob+given_initial", "surname+postcode", None], dtype=object),
        "gamma_dob": pd.Series([1, -1, 0], dtype="int64"),
        "mw_dob": [6.5, 0.0, -4.0],
        "mw_tf_adj_dob": [0.12345, 0.0, math.nan],
        "gamma_sex": pd.Series([1, 0, 1], dtype="int64"),
        "mw_sex": [0.9, -2.0, 0.9],
    })


def _as_made_at_once(row: dict, model_file: str) -> dict:
    """The evidence dict as match._evidence made it for every scored pair before."""
    return {"match_weight": round(float(row["match_weight"]), 3), "match_probability": float(row["match_probability"]),
            "prior_weight": round(float(_Model.prior_match_weight), 3),
            "fields": [{"field": "dob", "level": {1: "same date", 0: "other date", -1: "dob missing"}[row["gamma_dob"]],
                        "match_weight": round(row["mw_dob"] + (row["mw_tf_adj_dob"] or 0.0), 3),
                        "tf_adjustment": round(row["mw_tf_adj_dob"] or 0.0, 3)},
                       {"field": "sex", "level": {1: "same sex", 0: "other sex"}[row["gamma_sex"]],
                        "match_weight": round(row["mw_sex"], 3), "tf_adjustment": 0.0}],
            "blocking_rule": row["blocking_rule"], "model_version": "test-1", "model_file": model_file}


def test_each_pairs_evidence_is_the_dict_made_at_once() -> None:
    scored = _scored()
    evidence = ScoredColumns(_Model(), scored, "models/m.json").each()
    rows = scored.to_dict("records")
    assert len(evidence) == len(rows)
    for ev, row in zip(evidence, rows):
        # json: NaN is unequal to itself inside a dict
        assert json.dumps(as_dict(ev)) == json.dumps(_as_made_at_once(row, "models/m.json"))
        assert json.dumps(dict(ev)) == json.dumps(as_dict(ev))  # read as a Mapping: the same
        assert bool(ev)


def test_a_rules_name_comes_first_and_the_probability_is_read_without_the_dict() -> None:
    ev = ScoredColumns(_Model(), _scored(), None).each()[0].with_rule("ni_dob")
    made = as_dict(ev)
    assert list(made)[:2] == ["rule", "match_weight"] and made["rule"] == "ni_dob"
    assert ev.match_probability == 0.9996 == match_probability(ev)


def test_match_probability_defaults_as_the_merge_always_read_it() -> None:
    assert match_probability(None) == 1.0
    assert match_probability({"rule": "ni_dob"}) == 1.0
    assert match_probability({"match_probability": 0.0}) == 1.0  # a zero was always read as no figure
    assert match_probability({"match_probability": 0.25}) == 0.25
    zero = ScoredColumns(_Model(), _scored(), None).each()[2]
    assert match_probability(zero) == 1.0


def test_a_linked_events_evidence_names_its_pair_and_model() -> None:
    ev = ScoredColumns(_Model(), _scored(), "m.json").each()[1]
    made = _linked_evidence(("model", 0.41, ev, (2, 3)), "m.json")
    assert made == {**as_dict(ev), "linked_with": {"record_id_l": 2, "record_id_r": 3}, "model_file": "m.json"}
    assert _linked_evidence(("ni_dob", None, None, (4, 7)), "m.json") == {
        "rule": "ni_dob", "linked_with": {"record_id_l": 4, "record_id_r": 7}, "model_file": "m.json"}
    assert _linked_evidence(("ni_dob", None, {"rule": "ni_dob"}, (4, 7)), None)["rule"] == "ni_dob"
    assert _linked_evidence(None, "m.json") == {"rule": "new person", "model_file": "m.json"}
    assert isinstance(ev, PairEvidence)


def test_no_evidence_is_made_until_it_is_read(monkeypatch) -> None:  # noqa: ANN001 - pytest's fixture
    made = []
    original = ScoredColumns.evidence
    monkeypatch.setattr(ScoredColumns, "evidence", lambda self, i: made.append(i) or original(self, i))
    evidence = ScoredColumns(_Model(), _scored(), None).each()
    assert len(evidence) == 3 and made == []
    assert as_dict(evidence[1])["match_probability"] == 0.41 and made == [1]
