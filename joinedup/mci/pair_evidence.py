"""A scored pair's evidence for the steward, made when it is read.

Every pair the model scores above the review weight carries its evidence (weight,
probability, prior, the level reached and the weight of each field, the blocking rule, the
model). Made as dicts for every scored pair at once (about 2.5 KB a pair), they were most of
what a first build held through clustering and golden records: at 100,000 residents with
record history (297,705 pairs) the merge held 1.74-1.81 GB from scoring to the end, 0.98 GB
with the evidence made when written; at 1,000,000 (3.2 million pairs) they were about 7 GB.
Only the evidence of the pairs that become a record's link, a review pair or a refused link
is ever written, so each pair keeps a :class:`PairEvidence` (a row number into the scored
columns, under 100 bytes) and its dict is made from the columns when the merge writes it
(the "linked" events a block at a time): the same dict, key for key, as made before (the
first build's events, review pairs, links and golden records compared row for row with the
same model: identical).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd


class ScoredColumns:
    """The scored pairs' columns evidence is made from, as arrays (one entry per pair)."""

    def __init__(self, model: Any, scored: pd.DataFrame, model_file: str | None) -> None:
        self.model = model
        self.model_file = model_file
        self.columns = {c: scored[c].to_numpy() for c in scored.columns if c not in ("record_id_l", "record_id_r")}

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` as the Python values ``Series.tolist()`` gives (``ndarray.item``: a Python
        scalar, or the object itself in an object column; about 4 us a row of 25 columns)."""
        return {c: v.item(i) for c, v in self.columns.items()}

    def evidence(self, i: int) -> dict[str, Any]:
        """Row ``i``'s evidence (what the steward sees; JSON-serialisable)."""
        from joinedup.mci.probabilistic import field_evidence

        model, row = self.model, self.row(i)
        fields = [{"field": name, "level": level, "match_weight": round(weight, 3), "tf_adjustment": round(tf, 3)}
                  for name, level, weight, tf in field_evidence(model, row)]
        return {
            "match_weight": round(float(row["match_weight"]), 3),
            "match_probability": float(row["match_probability"]),
            "prior_weight": round(float(model.prior_match_weight), 3),
            "fields": fields,
            "blocking_rule": row.get("blocking_rule"),
            "model_version": model.model_version,
            "model_file": self.model_file,
        }

    def each(self) -> np.ndarray:
        """A :class:`PairEvidence` per scored pair, in scored order."""
        n = len(next(iter(self.columns.values()), ()))
        # fromiter: assigning a list to an object array would take each Mapping for a
        # sequence and make its evidence (to ask its length) only to throw it away
        return np.fromiter((PairEvidence(self, i) for i in range(n)), dtype=object, count=n)


class PairEvidence(Mapping):
    """One scored pair's evidence, made from :class:`ScoredColumns` each time it is read
    (``as_dict`` once where it is written); ``rule`` puts a deterministic rule's name first,
    as ``{"rule": rule, **evidence}`` does."""

    __slots__ = ("_columns", "_row", "_rule")

    def __init__(self, columns: ScoredColumns, row: int, rule: str | None = None) -> None:
        self._columns, self._row, self._rule = columns, row, rule

    def with_rule(self, rule: str) -> PairEvidence:
        return PairEvidence(self._columns, self._row, rule)

    @property
    def match_probability(self) -> float:
        return float(self._columns.columns["match_probability"][self._row])

    def as_dict(self) -> dict[str, Any]:
        made = self._columns.evidence(self._row)
        return made if self._rule is None else {"rule": self._rule, **made}

    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())

    def __bool__(self) -> bool:  # never empty: no need to make it to know
        return True


def as_dict(evidence: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The evidence as a plain dict (None stays None)."""
    if evidence is None:
        return None
    return evidence.as_dict() if isinstance(evidence, PairEvidence) else dict(evidence)


def match_probability(evidence: Mapping[str, Any] | None, default: float = 1.0) -> float:
    """The evidence's match probability (``default`` when it has none, or none is given), read
    without making the whole evidence."""
    if isinstance(evidence, PairEvidence):
        return evidence.match_probability or default
    return float((evidence or {}).get("match_probability", default) or default)
