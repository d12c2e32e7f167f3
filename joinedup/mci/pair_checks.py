"""The constraints of :mod:`joinedup.mci.rules`, asked about many pairs at once.

A first build asks ``conflict`` about every candidate and scored pair, and the cluster guard
asks ``never_same_cluster`` about every pair it compares: hundreds of thousands of calls.
:class:`PairChecks` codes once, as integers, each column those rules compare (equal codes,
equal values; -1 missing), works out on whole arrays which pairs could fail a constraint
(a possible NI or NHS conflict, the household-twin setting with two given names, a different
date of birth and initial) and asks the rule itself only about those. The answers are the rules' own: the
arrays only choose which pairs need asking, and every pair a rule could refuse is chosen.

A column holding anything but text or None (not what ``standardise`` makes) is not coded;
every pair is then asked.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from joinedup.mci.rules import GUARD_COLUMNS, conflict, never_same_cluster, possible_twins_with_related_names

#: The columns whose equality the constraints test (the rest they read only for the pairs
#: asked: name roots, e-mail, phone).
_COMPARED = ("ni_key", "nhs_number", "dob", "family_name_std", "uprn", "address_key", "given_name_std")


def _truthy_text(values: np.ndarray, codes: np.ndarray, uniques: np.ndarray) -> np.ndarray | None:
    """Where Python would find a value of a column of str or None true (not None, not '');
    None for a column with any other kind of value (its codes are then not used)."""
    if infer_dtype(values, skipna=True) not in ("string", "empty"):
        return None
    if not all(v is None for v in values[codes < 0]):  # NaN or NA: true in Python, unequal to itself
        return None
    non_empty = np.array([u != "" for u in uniques] + [False], dtype=bool)  # last: code -1
    return non_empty[codes]


class PairChecks:
    """``conflict``, ``never_same_cluster`` and ``possible_twins_with_related_names`` for
    arrays of pairs of records of ``features`` (a frame with ``record_id`` and the
    ``GUARD_COLUMNS`` it has). Pairs are given as positions (:meth:`positions`)."""

    def __init__(self, features: pd.DataFrame) -> None:
        self.record_ids = features["record_id"].to_numpy()
        self._index = pd.Index(self.record_ids)
        self._features = features
        present = [c for c in GUARD_COLUMNS if c in features.columns]
        # what guard_rows hands the rules: an object column's own values (no copy), others as
        # Python scalars (tolist)
        self._values = {c: (features[c].to_numpy() if features[c].dtype == object else features[c].tolist())
                        for c in present}
        self._factorized: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._codes: dict[str, np.ndarray] = {}
        self._truthy: dict[str, np.ndarray] = {}
        self.coded = True
        n = len(features)
        for column in _COMPARED:
            if column not in present:  # absent: None for every record, as row.get gives
                self._codes[column], self._truthy[column] = np.full(n, -1, np.int64), np.zeros(n, bool)
                continue
            truthy = _truthy_text(features[column].to_numpy(dtype=object), self.codes(column),
                                  self._factorized[column][1])
            if truthy is None:
                self.coded = False
                break
            self._codes[column], self._truthy[column] = self.codes(column), truthy
        if self.coded:
            initials = [v[0] if t else None for v, t in zip(self._values.get("given_name_std", [None] * n),
                                                            self._truthy["given_name_std"].tolist())]
            self._codes["given_initial"] = np.asarray(pd.factorize(np.array(initials, dtype=object))[0], np.int64)

    def codes(self, column: str) -> np.ndarray:
        """A feature column as integers (``pd.factorize``): equal codes for equal values, -1
        for a missing one (None, NaN). Made once per column."""
        if column not in self._factorized:
            codes, uniques = pd.factorize(self._features[column].to_numpy(dtype=object), use_na_sentinel=True)
            self._factorized[column] = (np.asarray(codes, dtype=np.int64), uniques)
        return self._factorized[column][0]

    def positions(self, record_ids: Sequence[int] | np.ndarray, missing: int | None = None) -> np.ndarray:
        """Row positions of these record ids; for one not in the features ``missing``, or
        KeyError if that is None."""
        found = self._index.get_indexer(np.asarray(record_ids))
        if missing is not None:
            found[found < 0] = missing
        elif (found < 0).any():
            raise KeyError(int(np.asarray(record_ids)[np.argmax(found < 0)]))
        return found

    def row(self, position: int) -> dict[str, Any]:
        """One record's guard columns as the rules read them (``guard_rows``' row)."""
        return {c: values[position] for c, values in self._values.items()}

    def rows(self) -> Mapping[int, dict[str, Any]]:
        """record id -> its guard columns, as ``rules.guard_rows`` gives them, each made when
        asked for (the cluster guard, prepared with these checks, asks about few)."""
        return _Rows(self)

    # -- which pairs need asking (whole arrays) -------------------------------------------------
    def _same(self, column: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        codes = self._codes[column]
        return codes[left] == codes[right]

    def _both(self, column: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        truthy = self._truthy[column]
        return truthy[left] & truthy[right]

    def household_twin_setting(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``rules.household_twin_setting`` of each pair (coded columns only)."""
        has = self._truthy
        shared_id = ((has["ni_key"][left] & self._same("ni_key", left, right))
                     | (has["nhs_number"][left] & self._same("nhs_number", left, right)))
        home = ((has["uprn"][left] & self._same("uprn", left, right))
                | (has["address_key"][left] & self._same("address_key", left, right)))
        return (has["dob"][left] & self._same("dob", left, right) & self._same("family_name_std", left, right)
                & ~shared_id & home)

    def _twins_possible(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """The household-twin setting with given names that are not one and the same: where
        ``given_names_differ`` and ``possible_twins_with_related_names`` can say yes (both say
        no to the same given name)."""
        same_name = self._both("given_name_std", left, right) & self._same("given_name_std", left, right)
        return self.household_twin_setting(left, right) & ~same_name

    def _may_conflict(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Every pair ``conflict`` can refuse (and only a few others)."""
        differ = lambda c: self._both(c, left, right) & ~self._same(c, left, right)  # noqa: E731
        return differ("ni_key") | differ("nhs_number") | self._twins_possible(left, right)

    def _may_never_join(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Every pair ``never_same_cluster`` can refuse: ``conflict``'s, and a different full
        date of birth with given names of different initials."""
        other_person = (self._both("dob", left, right) & ~self._same("dob", left, right)
                        & self._both("given_name_std", left, right) & ~self._same("given_initial", left, right))
        return self._may_conflict(left, right) | other_person

    # -- the rules' answers ---------------------------------------------------------------------
    def _ask(self, rule: Callable[[Any, Any], str | None], chosen: np.ndarray | None,
             left: np.ndarray, right: np.ndarray) -> np.ndarray:
        out = np.full(len(left), None, dtype=object)
        asked = np.arange(len(left)) if chosen is None else np.flatnonzero(chosen)
        row = self.row
        for i, a, b in zip(asked.tolist(), left[asked].tolist(), right[asked].tolist()):
            out[i] = rule(row(a), row(b))
        return out

    def conflicts(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``conflict`` of each pair (positions): the reason, or None."""
        return self._ask(conflict, self._may_conflict(left, right) if self.coded else None, left, right)

    def never_same_cluster(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``never_same_cluster`` of each pair (positions): the reason, or None."""
        return self._ask(never_same_cluster, self._may_never_join(left, right) if self.coded else None,
                         left, right)

    def twin_doubts(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``possible_twins_with_related_names`` of each pair (positions): why a steward
        should look, or None (it answers only in the household-twin setting)."""
        chosen = self._twins_possible(left, right) if self.coded else None
        return self._ask(possible_twins_with_related_names, chosen, left, right)


class _Rows(Mapping[int, dict[str, Any]]):
    def __init__(self, checks: PairChecks) -> None:
        self._checks = checks
        self._at = dict(zip(checks.record_ids.tolist(), range(len(checks.record_ids))))

    def __getitem__(self, record_id: int) -> dict[str, Any]:
        return self._checks.row(self._at[record_id])

    def __iter__(self):  # noqa: ANN204 - Mapping protocol
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)
