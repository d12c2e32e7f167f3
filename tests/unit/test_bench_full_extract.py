"""benchmarks/full_extract_bench.py checks one night of each full-extract system both ways,
reuses night 0's rows in the one and none in the other, and both hand over the same."""
from __future__ import annotations

from pathlib import Path

import pytest


def test_both_ways_check_the_same_night_and_only_one_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import full_extract_bench

    monkeypatch.setenv("JOINEDUP_VAR", str(tmp_path / "var"))
    work = tmp_path / "work"
    work.mkdir()
    got = full_extract_bench.measure(600, 7, "full", 1, work, say=lambda s: None)
    assert set(got) == set(full_extract_bench.SYSTEMS)
    for system, figures in got.items():
        assert figures["same_outputs"] is True, system
        assert 0 < figures["rows_reused"] < figures["rows_in"], system  # night 1 repeats most of night 0, not all
        assert all(len(v) == 1 for v in figures["seconds"].values())
    assert [p.name for p in work.iterdir()] == ["result.json"]  # the projects are removed

    assert full_extract_bench.main(["--residents", "300", "--seed", "7", "--trials", "1", "--work", str(work)]) == 0
    out = capsys.readouterr().out
    assert out.count("| yes |") == 2 and "| hr | " in out and "| socialcare | " in out
