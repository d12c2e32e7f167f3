"""The FEBRL4 benchmark's harness: its truth, its scoring and the recordlinkage contender
(the smallest of the three: seconds on FEBRL4; figures checked for plausibility, never timed)."""
from __future__ import annotations

import pytest

from benchmarks import match_bench


def test_quality_counts_links_at_or_above_each_threshold() -> None:
    truth = {frozenset(("rec-1-org", "rec-1-dup-0")), frozenset(("rec-2-org", "rec-2-dup-0"))}
    pairs = [("rec-1-org", "rec-1-dup-0", 0.9), ("rec-2-org", "rec-2-dup-0", 0.4),
             ("rec-1-org", "rec-2-dup-0", 0.6)]
    q = match_bench._quality(pairs, truth)["at_0.5"]
    assert (q["links"], q["precision"], q["recall"]) == (2, 0.5, 0.5)
    assert q["f1"] == pytest.approx(0.5)


def test_truth_pairs_each_duplicate_with_its_original() -> None:
    a, b = match_bench._load()
    truth = match_bench._truth(a, b)
    assert len(truth) == 5000
    for pair in truth:
        org, dup = sorted(pair, key=lambda r: r.endswith("-dup-0"))
        assert org.endswith("-org") and dup == org.replace("-org", "-dup-0")


def test_recordlinkage_contender_links_febrl4_and_is_scored() -> None:
    result = match_bench.run_recordlinkage()
    assert result["records"] == 10_000 and result["pairs_scored"] > 5000
    at_half = result["quality"]["at_0.5"]
    # ECM on FEBRL4's clean A-vs-B files finds nearly every link (0.9998 when measured)
    assert at_half["recall"] > 0.95 and at_half["precision"] > 0.95
    assert result["wall_s"] > 0
