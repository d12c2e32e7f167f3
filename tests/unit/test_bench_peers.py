"""The side-by-side and threshold benchmarks' harness on a 300-resident council: figures
complete and plausible (never timed)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks import peers_bench, threshold_bench
from tests.conftest import write_canonical_council


def test_clusters_from_pairs_are_connected_components() -> None:
    out = peers_bench.clusters_from_pairs(["a", "b", "c", "d", "e"], [("a", "b"), ("c", "b"), ("d", "e")])
    assert out["a"] == out["b"] == out["c"] and out["d"] == out["e"] and out["a"] != out["d"]


def test_threshold_curve_counts_links_at_or_above_each_weight() -> None:
    truth = pd.DataFrame({"source_system": ["hr"] * 4, "source_key": ["1", "2", "3", "4"],
                          "person_id": ["p", "p", "q", "q"]})
    pairs = pd.DataFrame({
        "source_system_l": ["hr"] * 4, "source_key_l": ["1", "1", "3", "2"],
        "source_system_r": ["hr"] * 4, "source_key_r": ["2", "3", "4", "4"],
        "match_weight": [10.0, 9.0, None, 20.0], "match_probability": [0.999, 0.998, 1.0, 1.0],
        "outcome": ["link", "link", "link", "blocked"],
    })
    figures = threshold_bench.curve(pairs, truth, weights=[0.0, 9.5, 15.0])
    assert figures["true_pairs"] == 2 and figures["rule_only_pairs"] == 1
    at = {p["weight"]: p for p in figures["points"]}
    # w=0: 1-2 (right), 1-3 (wrong), 3-4 (rule, right); the blocked pair never counts
    assert (at[0.0]["links"], at[0.0]["correct"]) == (3, 2)
    assert at[0.0]["precision"] == pytest.approx(2 / 3) and at[0.0]["recall"] == 1.0
    assert (at[9.5]["links"], at[9.5]["precision"]) == (2, 1.0)
    assert (at[15.0]["links"], at[15.0]["recall"]) == (1, 0.5)


@pytest.fixture(scope="module")
def canonical(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Canonical CSVs of a 300-resident council (production mappings) with its truth."""
    return write_canonical_council(tmp_path_factory.mktemp("canonical"), 300, seed=5)


def test_the_three_contenders_run_on_the_same_csvs_and_are_scored(canonical: Path, tmp_path: Path) -> None:
    figures = peers_bench.measure(canonical, tmp_path, say=lambda s: None)
    assert set(figures["contenders"]) == {"joinedup", "splink", "recordlinkage"}
    records = {f["quality"]["records"] for f in figures["contenders"].values()}
    assert len(records) == 1 and records.pop() > 250  # the same records for everyone
    for which, f in figures["contenders"].items():
        q = f["quality"]
        assert f["wall_s"] > 0 and 50 < f["peak_rss_mb"] < 8000, which
        assert f["pairs_scored"] > 0, which
        assert 0.5 < q["precision"] <= 1 and 0.5 < q["recall"] <= 1, (which, q)
    ju = figures["contenders"]["joinedup"]
    assert 0 <= ju["splink_s"] <= ju["wall_s"] and 0 <= figures["joinedup_own_share"] <= 1
    assert "| Splink 5 alone" in peers_bench.table(figures)


def test_threshold_benchmark_writes_its_plot_from_joinedup_link_pairs(canonical: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    saved: dict = {}

    def save(kind: str, key: str, figures: dict) -> Path:
        saved.update(figures)
        return tmp_path / f"{kind}.json"

    monkeypatch.setattr(threshold_bench, "save_figures", save)
    png = tmp_path / "thresholds.png"
    assert threshold_bench.main(["--canonical", str(canonical), "--png", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert saved["true_pairs"] > 0 and saved["pairs_scored"] > 0
    assert all(0 <= p["precision"] <= 1 and 0 <= p["recall"] <= 1 for p in saved["points"])
    recalls = [p["recall"] for p in saved["points"]]
    assert recalls == sorted(recalls, reverse=True)  # a higher threshold never finds more
