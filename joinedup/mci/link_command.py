"""``joinedup link``: batch linking of canonical CSV files, without the MCI database.

Each input CSV is one source in the canonical person layout (header names are canonical
field names). Its source is the file stem, unless the file has a ``source_system`` column.
Missing columns are fine; unknown ones are ignored with a warning (names of columns only,
never values). The records are standardised, linked by the same rules, model and cluster
checks the nightly match uses, and written as ``source_system, source_key, master_id``.
With ``pairs_path``, every decided pair is written too (record keys, match weight and
probability, outcome). The model is trained on the input itself (if it is big enough).

Being database-free, this doubles as the benchmark harness (``benchmarks/mci_bench.py``).
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from joinedup.canonical import person_fields
from joinedup.exports import write_csv
from joinedup.mci.gc_pause import cyclic_gc_paused
from joinedup.mci.match import choose_model, cluster_records, decide_pairs, links_from
from joinedup.mci.pair_checks import PairChecks
from joinedup.mci.standardise import standardise
from joinedup.mci.thresholds import MatchThresholds, load_thresholds

log = logging.getLogger(__name__)


class LinkInputError(ValueError):
    """An input file cannot be linked (the message names the file and what to do)."""


@dataclass
class LinkOutcome:
    records: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    persons: int = 0
    pairs_linked: int = 0
    pairs_review: int = 0
    pairs_blocked: int = 0
    links_refused: int = 0
    mode: str = "deterministic"
    mode_reason: str = ""
    model_version: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_canonical_csv(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """One input file as canonical records (text), and warnings about its columns."""
    if not path.is_file():
        raise LinkInputError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise LinkInputError(f"{path}: not UTF-8 text; convert it (e.g. iconv -f cp1252 -t utf-8)") from None
    except pd.errors.EmptyDataError:
        raise LinkInputError(f"{path}: empty file; a header row of canonical field names is needed") from None
    known = set(person_fields())
    notes = []
    unknown = [c for c in frame.columns if c not in known]
    if unknown:
        notes.append(f"{path.name}: ignoring unknown column(s) {', '.join(unknown)} "
                     f"(canonical fields are: {', '.join(person_fields())})")
    if "source_key" not in frame.columns:
        raise LinkInputError(f"{path}: no source_key column; each record needs its key in its source system")
    frame = _blank_as_none(frame[[c for c in frame.columns if c in known]])
    if "source_system" not in frame.columns:
        frame["source_system"] = path.stem
    else:
        frame["source_system"] = frame["source_system"].fillna(path.stem)
    blank = frame["source_key"].isna()
    if blank.any():
        raise LinkInputError(f"{path}: {int(blank.sum())} row(s) without a source_key "
                             f"(first at data row {int(blank.to_numpy().argmax()) + 1})")
    return frame, notes


def _blank_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    """A new frame with every empty cell None (a CSV cannot tell blank from missing).

    The same as ``frame.replace({"": None})`` on text columns, done with one array
    comparison per column (three times faster on a quarter of a million rows).
    """
    columns = {}
    for name in frame.columns:
        values = frame[name].to_numpy(dtype=object, copy=True)
        values[values == ""] = None
        columns[name] = values
    return pd.DataFrame(columns, index=frame.index, columns=frame.columns)


def read_inputs(paths: Iterable[Path]) -> tuple[pd.DataFrame, list[str]]:
    frames, notes = [], []
    for path in paths:
        frame, more = read_canonical_csv(Path(path))
        frames.append(frame)
        notes += more
    if not frames:
        raise LinkInputError("no input files given")
    records = pd.concat(frames, ignore_index=True)
    dupes = records.duplicated(["source_system", "source_key"])
    if dupes.any():
        first = records[dupes].iloc[0]
        raise LinkInputError(f"{int(dupes.sum())} duplicated (source_system, source_key) pair(s), "
                             f"e.g. {first.source_system}/{first.source_key}; keys must be unique per source")
    return records, notes


def link_records(records: pd.DataFrame, thresholds: MatchThresholds | None = None,
                 ) -> tuple[pd.DataFrame, pd.DataFrame, LinkOutcome]:
    """(assignments: source_system, source_key, master_id; pairs; figures) for canonical
    records (a frame with at least source_system and source_key)."""
    thresholds = thresholds or load_thresholds()
    records = records.reset_index(drop=True).copy()
    records["record_id"] = range(len(records))
    outcome = LinkOutcome(records=len(records),
                          sources={str(k): int(v) for k, v in records.source_system.value_counts().items()})
    features = standardise(records)
    choice = choose_model(features, thresholds, load_current=lambda: None, save=None)
    outcome.mode = "rules+model" if choice.model is not None else "deterministic"
    outcome.mode_reason = choice.reason
    outcome.model_version = choice.model.model_version if choice.model is not None else None
    everyone = set(range(len(records)))
    checks = PairChecks(features)  # the constraints over whole columns: the rules' and the model's pairs
    decisions = decide_pairs(features, everyone, thresholds, model=choice.model, with_evidence=False,
                             checks=checks)
    links = links_from(decisions, [], set())
    counter = [0]

    def new_master() -> str:
        counter[0] += 1
        return f"P{counter[0]:08d}"

    # the guard checks every group of linked records on arrays first; a row of the features
    # it reads (rules.GUARD_COLUMNS) is made only for the few joins left to compare one by one
    plan = cluster_records(everyone, links, checks.rows(), thresholds, new_master_id=new_master, checks=checks)
    outcome.persons = len(plan.new_masters)
    counts = decisions.outcome.value_counts()
    outcome.pairs_linked = int(counts.get("link", 0))
    outcome.pairs_review = int(counts.get("review", 0))
    outcome.pairs_blocked = int(counts.get("blocked", 0))
    outcome.links_refused = len(plan.refused)

    masters = np.array([plan.assignments[i] for i in range(len(records))], dtype=object)
    assignments = pd.DataFrame({
        "source_system": records.source_system, "source_key": records.source_key,
        "master_id": masters.tolist(),
    })
    l = decisions.record_id_l.astype(int).to_numpy()
    r = decisions.record_id_r.astype(int).to_numpy()
    outcomes = decisions.outcome.to_numpy(dtype=object).copy()
    if plan.refused:  # few pairs: only they are looked up
        refused = {(min(a, b), max(a, b)) for a, b in plan.refused}
        for i, (a, b) in enumerate(zip(l.tolist(), r.tolist())):
            if (a, b) in refused:
                outcomes[i] = "link refused"
    pairs = pd.DataFrame({
        "source_system_l": records.source_system.to_numpy()[l], "source_key_l": records.source_key.to_numpy()[l],
        "source_system_r": records.source_system.to_numpy()[r], "source_key_r": records.source_key.to_numpy()[r],
        "match_weight": decisions.match_weight.to_numpy(), "match_probability": decisions.match_probability.to_numpy(),
        "rule": decisions["rule"].to_numpy(),
        "outcome": outcomes,
        "same_master_id": (masters[l] == masters[r]).astype(bool),
    })
    return assignments, pairs, outcome


def link_files(inputs: Iterable[Path], out: Path, *, pairs_path: Path | None = None,
               thresholds_path: Path | None = None) -> LinkOutcome:
    """Read the inputs, link them, write ``out`` (and ``pairs_path``); the figures."""
    with cyclic_gc_paused():
        records, notes = read_inputs(inputs)
        for note in notes:
            warnings.warn(note, stacklevel=2)
        assignments, pairs, outcome = link_records(records, load_thresholds(thresholds_path))
        outcome.warnings = notes
        write_csv(assignments, out)  # spreadsheet-safe: a source key may start with '='
        if pairs_path is not None:
            write_csv(pairs, pairs_path)
    return outcome
