"""evaluate(): pairwise and cluster figures on tiny hand-made cases, numbers worked by hand."""
from __future__ import annotations

import pytest

from joinedup.evaluate import evaluate, read_truth, read_twins
from joinedup.simulators import NoiseConfig, build_council, write_council

# Truth: person A has records r1 r2 r3, B has r4 r5, C has r6.
TRUTH = [("s", "r1", "A"), ("s", "r2", "A"), ("t", "r3", "A"),
         ("s", "r4", "B"), ("t", "r5", "B"), ("t", "r6", "C")]


def test_split_and_merge_by_hand():
    # M1 = {r1, r2}; M2 = {r3, r4, r5}; M3 = {r6}.
    assignments = [("s", "r1", "M1"), ("s", "r2", "M1"), ("t", "r3", "M2"),
                   ("s", "r4", "M2"), ("t", "r5", "M2"), ("t", "r6", "M3")]
    ev = evaluate(assignments, TRUTH, {frozenset({"A", "B"}), frozenset({"A", "C"})})
    # predicted pairs: C(2,2)+C(3,2) = 1+3 = 4; true pairs: C(3,2)+C(2,2) = 3+1 = 4
    # correct: (M1,A) 1 pair + (M2,B) 1 pair = 2
    assert (ev.predicted_pairs, ev.true_pairs, ev.correct_pairs) == (4, 4, 2)
    assert ev.precision == 0.5 and ev.recall == 0.5 and ev.f1 == 0.5
    assert ev.exact_clusters == 1            # only C is exactly one master record
    assert ev.exact_cluster_rate == pytest.approx(1 / 3)
    assert ev.false_merges == 1              # M2 mixes A and B
    assert ev.missed_merges == 1             # A is split over M1 and M2
    assert ev.twin_pairs == 2 and ev.twins_merged == 1  # A+B share M2; A+C do not
    assert (ev.records, ev.persons, ev.clusters) == (6, 3, 3)


def test_perfect_index_scores_one():
    assignments = [(s, k, "M" + p) for s, k, p in TRUTH]
    ev = evaluate(assignments, TRUTH)
    assert (ev.precision, ev.recall, ev.f1) == (1.0, 1.0, 1.0)
    assert ev.exact_cluster_rate == 1.0
    assert ev.false_merges == ev.missed_merges == ev.twins_merged == 0


def test_everything_merged_into_one():
    ev = evaluate([(s, k, "M") for s, k, _ in TRUTH], TRUTH, [("B", "C")])
    # predicted C(6,2) = 15; correct = 3 + 1 = 4; true = 4
    assert ev.predicted_pairs == 15 and ev.correct_pairs == 4
    assert ev.precision == pytest.approx(4 / 15) and ev.recall == 1.0
    assert ev.f1 == pytest.approx(2 * (4 / 15) / (4 / 15 + 1))
    assert ev.false_merges == 1 and ev.missed_merges == 0 and ev.exact_clusters == 0
    assert ev.twins_merged == 1


def test_unassigned_records_are_singletons_and_unknown_ones_ignored():
    # r3 and r6 missing from the index; ("x", "zz") is not in the truth.
    assignments = [("s", "r1", "M1"), ("s", "r2", "M1"), ("s", "r4", "M2"),
                   ("t", "r5", "M2"), ("x", "zz", "M9")]
    ev = evaluate(assignments, TRUTH)
    assert ev.unassigned == 2 and ev.unknown == 1
    # predicted pairs 1 + 1 = 2, both correct; true pairs 4
    assert ev.precision == 1.0 and ev.recall == 0.5
    assert ev.missed_merges == 1             # A: {r1, r2} in M1, r3 alone
    assert ev.exact_clusters == 2            # B (M2) and C (its own singleton)
    assert ev.clusters == 4


def test_no_pairs_at_all_conventions():
    ev = evaluate([("s", "r1", "M1"), ("s", "r4", "M2")],
                  [("s", "r1", "A"), ("s", "r4", "B")])
    assert ev.precision == 1.0 and ev.recall == 1.0 and ev.exact_cluster_rate == 1.0


def test_all_singletons_have_no_recall():
    ev = evaluate([(s, k, k) for s, k, _ in TRUTH], TRUTH)
    assert ev.precision == 1.0 and ev.recall == 0.0 and ev.f1 == 0.0
    assert ev.missed_merges == 2             # A and B are split


def test_record_with_two_master_ids_is_an_error():
    with pytest.raises(ValueError, match="s/r1"):
        evaluate([("s", "r1", "M1"), ("s", "r1", "M2")], TRUTH)


def test_summary_has_the_figures_and_no_names():
    ev = evaluate([(s, k, "M" + p) for s, k, p in TRUTH], TRUTH)
    text = ev.summary()
    assert "precision 1.0000" in text and "F1 1.0000" in text


def test_truth_files_round_trip_and_score_perfectly(tmp_path):
    write_council(tmp_path, 300, seed=3, noise=NoiseConfig())
    truth = read_truth(tmp_path / "truth.csv")
    twins = read_twins(tmp_path / "twins.csv")
    council = build_council(300, seed=3)
    assert truth == council.truth and twins == council.twins
    ev = evaluate([(s, k, p) for s, k, p in truth], truth, twins)
    assert ev.f1 == 1.0 and ev.records == len(truth)


def test_missing_truth_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="write the council"):
        read_truth(tmp_path / "truth.csv")
