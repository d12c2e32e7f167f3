"""benchmarks/full_extract_bench.py checks one night of each full-extract system both ways,
reuses night 0's rows in the one and none in the other, and both hand over the same."""
from __future__ import annotations

import re
from pathlib import Path

import pytest


def test_both_ways_check_the_same_night_and_only_one_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import full_extract_bench

    monkeypatch.setenv("JOINEDUP_VAR", str(tmp_path / "var"))
    work = tmp_path / "work"
    work.mkdir()
    assert full_extract_bench.main(["--residents", "600", "--seed", "7", "--trials", "1", "--work", str(work)]) == 0
    out = capsys.readouterr().out
    assert list(work.iterdir()) == []  # the projects are removed
    for system in full_extract_bench.SYSTEMS:
        trials = dict(re.findall(rf"^{system} trial 1 (\w+) +check [\d.]+ s, peak [\d,]+ MB, ([\d,]+) of [\d,]+ rows reused$",
                                 out, re.M))
        assert trials.keys() == {"full", "changes"} and trials["changes"] == "0", out
        row = re.search(rf"^\| {system} \| ([\d,]+) \| ([\d,]+) \| [\d.]+ \| [\d.]+ \| -?[\d.]+ s \| [\d,]+ / [\d,]+ \| yes \|$",
                        out, re.M)
        assert row, out
        rows_in, reused = (int(v.replace(",", "")) for v in row.groups())
        assert 0 < reused < rows_in and trials["full"] == row.group(2)  # night 1 repeats most of night 0, not all
