"""benchmarks/index_nights_bench.py lays one council's keys out both ways, adds the same nights
to both, and both end with the same keys."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest


def test_both_layouts_take_the_same_nights_and_hold_the_same_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import index_nights_bench, index_store_bench

    monkeypatch.setenv("JOINEDUP_VAR", str(tmp_path / "var"))
    source = tmp_path / "source.sqlite"
    index_store_bench._new_database(source, 300, 7, with_index=True)
    keys_before = index_nights_bench.key_checksum(source)[0]
    work = tmp_path / "work"
    work.mkdir()
    got = index_nights_bench.measure(source, work, nights=2, say=lambda s: None)
    assert keys_before > 1000 and got["same_keys"] is True
    assert set(got["filled"]) == {"ordered", "chunked"} and all(len(v) == 2 for v in got["nights"].values())
    assert list(work.iterdir()) == []  # the copies are removed
    assert index_nights_bench.key_checksum(source)[0] == keys_before  # the source is never changed

    # a copy laid out each way still has its by-record index and the same keys as the source
    for layout in index_nights_bench.LAYOUTS:
        copy = tmp_path / f"{layout}.sqlite"
        copy.write_bytes(source.read_bytes())
        index_nights_bench.lay_out(copy, layout)
        assert index_nights_bench.key_checksum(copy) == index_nights_bench.key_checksum(source)
        con = sqlite3.connect(copy)
        assert ("ix_record_block_keys_record",) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'record_block_keys'").fetchall()
        con.close()

    rows = index_nights_bench.night_keys(list(range(1, 501)), __import__("random").Random(1))
    assert len(rows) == 5 * index_nights_bench.KEYS_PER_RECORD  # 1% of 500 records, 15 keys each

    assert index_nights_bench.main(["--db", str(source), "--nights", "2", "--work", str(work)]) == 0
    out = capsys.readouterr().out
    assert "same keys in both: yes" in out and out.count("night 2 ") == 2
