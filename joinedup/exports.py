"""CSV files the product writes for people to open: every cell made safe for a spreadsheet.

Why: a value that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return before
one) is run as a formula when Excel or LibreOffice opens the file ("CSV injection": e.g.
``=cmd|' /C calc'!A0`` in a surname a source system sent us). The OWASP advice is followed:
such a cell is prefixed with a single quote, which a spreadsheet shows as text and which a
reader of the file can strip. Plain numbers (``-3.25``, ``+44``) are left as they are, so the
match weights in ``joinedup link --pairs`` stay numbers. Every CSV or XLSX export goes
through ``write_csv`` (or ``neutralise_cell`` for a writer of its own); internal files that
only the product reads back (the simulator's truth file, landing pages) do not.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# The characters a spreadsheet treats as the start of a formula, with the full-width forms
# some locales accept, and the control characters that can hide one.
FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def is_formula_like(value: str) -> bool:
    """True when a spreadsheet could read ``value`` as a formula (leading spaces skipped)."""
    if not value:
        return False
    if value[0] not in FORMULA_STARTS and value.lstrip(" ")[:1] not in FORMULA_STARTS:
        return False
    return _NUMBER.fullmatch(value.strip()) is None


def neutralise_cell(value: Any) -> Any:
    """``value`` as a spreadsheet-safe cell: formula-like text gets a leading ``'``."""
    if isinstance(value, str) and is_formula_like(value):
        return "'" + value
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell neutralised (and the column names too)."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            # Only a cell whose text starts (after spaces) with a formula character can need it:
            # found in one pass over the values (cheaper than three .str passes), then
            # checked one by one.
            text = safe[column].astype(object)
            starts = np.fromiter(
                (isinstance(v, str) and v.lstrip(" ")[:1] in FORMULA_STARTS for v in text.to_numpy()),
                dtype=bool, count=len(text))
            if starts.any():
                safe.loc[starts, column] = text[starts].map(neutralise_cell)
    safe.columns = [neutralise_cell(str(c)) for c in safe.columns]
    return safe


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` as UTF-8 CSV with every cell spreadsheet-safe."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # RFC 4180 line ends: a CR or LF inside a value is then always quoted, never a row break.
    neutralise_frame(frame).to_csv(path, index=False, encoding="utf-8", lineterminator="\r\n")
    return path


def write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """The same for rows without pandas (a streaming export)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\r\n")
        out.writerow([neutralise_cell(str(h)) for h in header])
        for row in rows:
            out.writerow([neutralise_cell(v) for v in row])
    return path
