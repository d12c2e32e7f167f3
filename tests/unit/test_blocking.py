"""Blocking: compound keys, no placeholder blocks, size caps reported, incremental.

Pure DuckDB (no Splink): fast.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

from joinedup.mci.blocking import (
    DEFAULT_BLOCKING_RULES,
    FEATURES_TABLE,
    PAIRS_TABLE,
    BlockingRule,
    BlockingTooLargeError,
    MEMORY_LIMIT_ENV,
    count_comparisons,
    default_memory_limit,
    generate_pairs,
    open_duckdb,
)
from joinedup.mci.probabilistic import _load_features
from tests.unit.test_probabilistic import feature_row


@pytest.fixture()
def con(tmp_path):
    connection = open_duckdb(memory_limit="256MB", temp_directory=tmp_path / "spill")
    yield connection
    connection.close()


def _load(con, rows) -> None:
    _load_features(con, pd.DataFrame(rows))


def _pairs(con) -> set[tuple[int, int]]:
    rows = con.execute(f"SELECT join_key_l, join_key_r FROM {PAIRS_TABLE}").fetchall()
    return {(int(a), int(b)) for a, b in rows}


def test_duckdb_memory_limit_and_spill_directory_are_set(tmp_path) -> None:
    spill = tmp_path / "spill"
    con = open_duckdb(memory_limit="300MB", temp_directory=spill)
    try:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        temp = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
    finally:
        con.close()
    assert limit.replace(" ", "").upper().startswith(("286", "300"))  # MiB or MB
    assert temp == str(spill) and spill.is_dir()
    with pytest.raises(ValueError, match="memory_limit"):
        open_duckdb(memory_limit="lots")


def test_default_memory_limit_is_a_share_of_the_machine_unless_configured(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    machine_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    auto = default_memory_limit()
    assert auto == f"{max(2, int(machine_gb / 4))}GB"
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "700MB")
    con = open_duckdb(temp_directory=tmp_path / "spill")  # no limit named: the setting's
    try:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    finally:
        con.close()
    assert limit.replace(" ", "").upper().startswith(("667", "700"))  # MiB or MB
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "plenty")
    with pytest.raises(ValueError, match=MEMORY_LIMIT_ENV):
        default_memory_limit()


def test_placeholder_birth_dates_and_no_fixed_abode_never_form_blocks(con) -> None:
    rows = [
        # Unrelated people whose only shared value is a placeholder DOB / ZZ99 postcode
        feature_row(1, "Anna", "Bell", "1900-01-01", dob_is_placeholder=True,
                    postcode="ZZ99 3VZ"),
        feature_row(2, "Aled", "Cole", "1900-01-01", dob_is_placeholder=True,
                    postcode="ZZ99 3VZ"),
        feature_row(3, "Amir", "Dunn", "1900-01-01", dob_is_placeholder=True,
                    postcode="ZZ99 3VZ"),
    ]
    _load(con, rows)
    report = generate_pairs(con, DEFAULT_BLOCKING_RULES)
    assert _pairs(con) == set()
    assert report.distinct_pairs == 0
    assert report.comparisons_before_dedupe == 0


def test_comparisons_are_counted_before_pairs_and_match_what_is_generated(con) -> None:
    rows = [feature_row(i, "Sam", "Smith", f"1980-01-{i:02d}") for i in range(1, 7)]
    rows += [feature_row(10 + i, "Jo", "Jones", f"1990-02-{i:02d}") for i in range(1, 4)]
    _load(con, rows)
    rule = BlockingRule("surname+birth_year", ("family_name_std", "dob_year"))
    counted = count_comparisons(con, [rule]).rules[0]
    assert counted.blocks == 2
    assert counted.comparisons == 15 + 3
    report = generate_pairs(con, [rule])
    assert report.distinct_pairs == 18
    assert all(a < b for a, b in _pairs(con))


def test_oversized_blocks_are_skipped_and_reported_without_the_key(con) -> None:
    rows = [feature_row(i, "Sam", "Smith", f"1980-01-{i:02d}") for i in range(1, 7)]
    rows += [feature_row(10 + i, "Jo", "Jones", f"1990-02-{i:02d}") for i in range(1, 4)]
    _load(con, rows)
    rule = BlockingRule("surname+birth_year", ("family_name_std", "dob_year"))
    report = generate_pairs(con, [rule], block_size_cap=5)
    assert _pairs(con) == {(11, 12), (11, 13), (12, 13)}
    [count] = report.rules
    assert count.oversized_blocks == 1 and count.comparisons_skipped == 15
    [big] = report.oversized
    assert big.records == 6 and big.comparisons == 15
    assert "SMITH" not in big.key_hash and len(big.key_hash) == 12
    assert "SMITH" not in report.summary()


def test_a_pair_found_by_several_rules_appears_once_under_the_first(con) -> None:
    rows = [
        feature_row(1, "Ann", "Lee", "1970-05-05", ni="AB123456C", postcode="LS1 1AA"),
        feature_row(2, "Ann", "Lee", "1970-05-05", ni="AB123456D", postcode="LS1 1AA"),
    ]
    _load(con, rows)
    generate_pairs(con, DEFAULT_BLOCKING_RULES)
    keys = con.execute(f"SELECT match_key, join_key_l, join_key_r FROM {PAIRS_TABLE}").fetchall()
    assert keys == [("0", 1, 2)]  # rule 0 is the NI key


def test_incremental_blocking_touches_only_new_records(con) -> None:
    rows = [feature_row(i, "Sam", "Smith", f"1980-01-{i:02d}") for i in range(1, 7)]
    _load(con, rows)
    rule = BlockingRule("surname+birth_year", ("family_name_std", "dob_year"))
    full = generate_pairs(con, [rule])
    all_pairs = _pairs(con)
    assert full.distinct_pairs == 15
    night = generate_pairs(con, [rule], new_ids={2, 5})
    assert _pairs(con) == {p for p in all_pairs if 2 in p or 5 in p}
    assert night.distinct_pairs == 9
    assert night.rules[0].comparisons == 2 * 4 + 1  # new x old + new x new


def test_too_many_comparisons_stops_before_generating(con) -> None:
    rows = [feature_row(i, "Sam", "Smith", f"1980-01-{i:02d}") for i in range(1, 7)]
    _load(con, rows)
    rule = BlockingRule("surname+birth_year", ("family_name_std", "dob_year"))
    with pytest.raises(BlockingTooLargeError, match="surname\\+birth_year"):
        generate_pairs(con, [rule], max_comparisons=10)
    exists = con.execute(
        f"SELECT count(*) FROM information_schema.tables WHERE table_name = '{PAIRS_TABLE}'"
    ).fetchall()[0][0]
    assert exists == 0
    assert con.execute(f"SELECT count(*) FROM {FEATURES_TABLE}").fetchall()[0][0] == 6


def test_the_duckdb_spill_directory_is_private(tmp_path) -> None:  # noqa: ANN001
    """Spilled pages hold personal data: the directory is readable by its owner only."""
    import stat

    from joinedup.mci.blocking import open_duckdb

    spill = tmp_path / "spill"
    con = open_duckdb(temp_directory=spill)
    try:
        assert con.execute("SELECT current_setting('temp_directory')").fetchone()[0] == str(spill)
        assert stat.S_IMODE(spill.stat().st_mode) == 0o700
    finally:
        con.close()
