"""benchmarks/index_store_bench.py runs both ways of storing a first build's index on a small
council, and they leave the same rows."""
from __future__ import annotations

from pathlib import Path

import pytest


def test_both_paths_store_the_same_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import index_store_bench

    monkeypatch.setenv("JOINEDUP_VAR", str(tmp_path / "var"))
    source = tmp_path / "source.sqlite"
    index_store_bench._new_database(source, 300, 7)
    staged = index_store_bench.trial(source, "staged", tmp_path)
    chunked = index_store_bench.trial(source, "chunked", tmp_path)
    assert staged["records"] == chunked["records"] == staged["feature_rows"] > 250
    assert staged["keys"] == chunked["keys"] and staged["keys"][0] > 10 * staged["records"]
    assert not list(tmp_path.glob("copy-*"))  # the copies are removed

    assert index_store_bench.main(["--db", str(source), "--trials", "1"]) == 0
    out = capsys.readouterr().out
    assert "same rows from both: yes" in out and out.count("trial 1:") == 2


def test_a_rebuild_by_both_paths_stores_the_same_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import create_engine, text

    from benchmarks import index_store_bench

    monkeypatch.setenv("JOINEDUP_VAR", str(tmp_path / "var"))
    source = tmp_path / "source.sqlite"
    index_store_bench._new_database(source, 300, 7, with_index=True)
    engine = create_engine(f"sqlite:///{source}")
    with engine.connect() as conn:
        stored_before = conn.execute(text("SELECT count(*) FROM record_block_keys")).scalar()
    engine.dispose()
    staged = index_store_bench.trial(source, "staged", tmp_path, rebuild=True)
    chunked = index_store_bench.trial(source, "chunked", tmp_path, rebuild=True)
    assert staged["keys"] == chunked["keys"] and staged["keys"][0] == stored_before > 0
    assert staged["feature_rows"] == chunked["feature_rows"] == staged["records"] > 250

    with pytest.raises(SystemExit, match="no stored index"):  # nothing to re-build in a staged-only database
        bare = tmp_path / "bare.sqlite"
        index_store_bench._new_database(bare, 50, 7)
        index_store_bench.trial(bare, "staged", tmp_path, rebuild=True)
    assert index_store_bench.main(["--db", str(source), "--trials", "1", "--rebuild"]) == 0
    out = capsys.readouterr().out
    assert "(re-build)" in out and "same rows from both: yes" in out
