"""``joinedup link`` on small canonical CSV files, through the real typer command."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from joinedup.cli.link import link


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command(name="link")(link)
    app.command(name="noop")(lambda: None)  # two commands: typer keeps the subcommand name
    return app


def _run(*args: str):  # noqa: ANN202
    return CliRunner().invoke(_app(), ["link", *args])


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_link_writes_master_ids_per_source_record(tmp_path: Path) -> None:
    revenues = _write(tmp_path / "revenues.csv",
                      "source_key,given_name,family_name,date_of_birth,ni_number,postcode,shoe_size\n"
                      "R1,John,Smith,1980-01-02,AB123456C,NP20 1AB,9\n"
                      "R2,Olivia,Evans,1990-04-01,,NP20 1AB,4\n")
    housing = _write(tmp_path / "housing_extract.csv",
                     "source_system,source_key,given_name,family_name,date_of_birth,ni_number,postcode\n"
                     "housing,H1,Jon,Smith,1980-01-02,AB123456C,NP20 1AB\n"
                     "housing,H2,Oliver,Evans,1990-04-01,,NP20 1AB\n")
    out, pairs = tmp_path / "out.csv", tmp_path / "pairs.csv"
    result = _run(str(revenues), str(housing), "--out", str(out), "--pairs", str(pairs))
    assert result.exit_code == 0, result.output
    assert "ignoring unknown column(s) shoe_size" in result.output
    assert "deterministic rules only: 4 records" in result.output
    frame = pd.read_csv(out, dtype=str)
    assert list(frame.columns) == ["source_system", "source_key", "master_id"]
    master = {(s, k): m for s, k, m in frame.itertuples(index=False)}
    assert set(master) == {("revenues", "R1"), ("revenues", "R2"), ("housing", "H1"), ("housing", "H2")}
    assert master[("revenues", "R1")] == master[("housing", "H1")]  # same NI number and DOB
    assert master[("revenues", "R2")] != master[("housing", "H2")]  # not linked: different first names
    scored = pd.read_csv(pairs, dtype=str)
    assert {"match_probability", "outcome"} <= set(scored.columns)
    assert "link" in set(scored.outcome)


def test_missing_columns_are_fine_and_errors_name_the_file(tmp_path: Path) -> None:
    only_keys = _write(tmp_path / "hr.csv", "source_key,family_name\nE1,Jones\nE2,Jones\n")
    out = tmp_path / "out.csv"
    assert _run(str(only_keys), "--out", str(out)).exit_code == 0
    assert len(pd.read_csv(out)) == 2
    no_key = _write(tmp_path / "bad.csv", "given_name\nAnn\n")
    failed = _run(str(no_key), "--out", str(out))
    assert failed.exit_code == 2 and "bad.csv" in failed.output and "source_key" in failed.output
    dup = _write(tmp_path / "dup.csv", "source_key,given_name\nX1,Ann\nX1,Bob\n")
    failed = _run(str(dup), "--out", str(out))
    assert failed.exit_code == 2 and "duplicated" in failed.output
    assert "Ann" not in failed.output and "Bob" not in failed.output  # no personal data in errors


def test_thresholds_file_is_validated_and_names_the_line(tmp_path: Path) -> None:
    data = _write(tmp_path / "people.csv", "source_key,given_name\nX1,Ann\n")
    bad = _write(tmp_path / "match.yaml", "link_weight: 8\nreview_weight: 9\nlink_wieght: 3\n")
    result = _run(str(data), "--out", str(tmp_path / "out.csv"), "--thresholds", str(bad))
    assert result.exit_code == 2
    assert "line 3: link_wieght: unknown key" in result.output
    _write(bad, "link_weight: 8\nreview_weight: 9\n")
    result = _run(str(data), "--out", str(tmp_path / "out.csv"), "--thresholds", str(bad))
    assert result.exit_code == 2 and "review_weight <= link_weight" in result.output


def test_threshold_outcomes() -> None:
    from joinedup.mci.thresholds import MatchThresholds

    t = MatchThresholds(link_weight=8, review_weight=0, merge_weight=12)
    assert [t.outcome(w) for w in (8.0, 7.9, 0.0, -0.1)] == ["link", "review", "review", "new person"]


def test_blank_cells_are_read_as_none_exactly_as_replace_did(tmp_path: Path) -> None:
    """read_canonical_csv's one-comparison-per-column blanking gives what
    ``frame.replace({"": None})`` gave: None for an empty cell, text (spaces kept) otherwise."""
    from joinedup.mci.link_command import read_canonical_csv

    path = tmp_path / "housing.csv"
    path.write_text('source_key,given_name,family_name,postcode\r\nA1,, ,"" \r\nA2,Ann,"",NA\r\n'
                    'A3,None,nan,\r\n', encoding="utf-8")
    frame, _ = read_canonical_csv(path)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8").replace({"": None})
    for column in raw.columns:
        got, expected = frame[column].tolist(), raw[column].tolist()
        assert [type(v) for v in got] == [type(v) for v in expected] and got == expected, column
    assert frame["given_name"].tolist() == [None, "Ann", "None"]


def test_link_pauses_the_cyclic_collector_and_puts_it_back(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The collector is off while a run links (its object columns are walked by every full
    collection) and on again afterwards, also when the run fails; off stays off."""
    import gc

    import joinedup.mci.link_command as link_command

    seen = []

    def records(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.append(gc.isenabled())
        raise link_command.LinkInputError("stop here")

    monkeypatch.setattr(link_command, "read_inputs", records)
    assert gc.isenabled()
    with pytest.raises(link_command.LinkInputError):
        link_command.link_files([tmp_path / "a.csv"], tmp_path / "out.csv")
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        with pytest.raises(link_command.LinkInputError):
            link_command.link_files([tmp_path / "a.csv"], tmp_path / "out.csv")
        assert not gc.isenabled()
    finally:
        gc.enable()
