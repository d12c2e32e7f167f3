"""How good is a master citizen index? Score it against the synthetic council's truth.

``evaluate(assignments, truth, twins)`` compares the MCI's clusters (each source record's
master ID) with the true persons (each source record's person_id):

- pairwise precision, recall and F1 over pairs of records placed together, counted from
  cluster sizes (C(k, 2) per cluster and per cluster-person overlap), never by listing pairs,
  so a million records cost a few dictionaries;
- cluster figures a steward understands: the share of persons whose records form exactly one
  master record and nothing else (exact clusters), master records that mix several persons
  (false merges), persons split over several master records (missed merges);
- twins merged: twin pairs given the same master ID (the false merge that hurts most).

Records the truth knows but the index does not are scored as their own singleton cluster
(``unassigned``); records the truth does not know are ignored (``unknown``).
"""
from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

RecordKey = tuple[str, str]  # (source_system, source_key)


def _pairs(k: int) -> int:
    return k * (k - 1) // 2


@dataclass(frozen=True)
class Evaluation:
    """The scores of one MCI against the truth (see the module docstring for definitions)."""

    records: int
    persons: int
    clusters: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    f1: float
    exact_clusters: int
    exact_cluster_rate: float
    false_merges: int
    missed_merges: int
    twin_pairs: int
    twins_merged: int
    unassigned: int
    unknown: int

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """A few lines for a terminal (counts only: no personal data)."""
        return "\n".join([
            f"records {self.records:,}  persons {self.persons:,}  master records "
            f"{self.clusters:,}",
            f"pairwise precision {self.precision:.4f}  recall {self.recall:.4f}  "
            f"F1 {self.f1:.4f}",
            f"exact clusters {self.exact_cluster_rate:.2%} ({self.exact_clusters:,} persons)  "
            f"false merges {self.false_merges:,}  missed merges {self.missed_merges:,}",
            f"twin pairs merged {self.twins_merged:,} of {self.twin_pairs:,}",
            f"records not in the index {self.unassigned:,}  records unknown to the truth "
            f"{self.unknown:,}",
        ])


def evaluate(assignments: Iterable[tuple[str, str, str]],
             truth: Iterable[tuple[str, str, str]],
             twins: Iterable[frozenset[str] | tuple[str, str]] = ()) -> Evaluation:
    """Score ``assignments`` (system, key, master_id) against ``truth`` (system, key,
    person_id). ``twins`` holds pairs of person_ids who are twins.

    Conventions: with no predicted pairs precision is 1.0; with no true pairs recall is 1.0.
    A record assigned twice raises ValueError (an index gives each record one master ID).
    """
    person_of: dict[RecordKey, str] = {}
    for system, key, person in truth:
        rk = (system, key)
        if rk in person_of and person_of[rk] != person:
            raise ValueError(f"truth gives record {system}/{key} two persons")
        person_of[rk] = person

    master_of: dict[RecordKey, str] = {}
    unknown = 0
    for system, key, master in assignments:
        rk = (system, key)
        if rk in master_of:
            if master_of[rk] != master:
                raise ValueError(f"record {system}/{key} is assigned to two master IDs")
            continue
        if rk not in person_of:
            unknown += 1
            continue
        master_of[rk] = master

    unassigned = 0
    cluster_size: Counter[str] = Counter()
    person_size: Counter[str] = Counter()
    overlap: Counter[tuple[str, str]] = Counter()
    persons_in_cluster: dict[str, set[str]] = defaultdict(set)
    clusters_of_person: dict[str, set[str]] = defaultdict(set)
    for rk, person in person_of.items():
        master = master_of.get(rk)
        if master is None:  # not in the index: a cluster of its own
            unassigned += 1
            master = f"\x00unassigned:{rk[0]}:{rk[1]}"
        cluster_size[master] += 1
        person_size[person] += 1
        overlap[(master, person)] += 1
        persons_in_cluster[master].add(person)
        clusters_of_person[person].add(master)

    predicted_pairs = sum(_pairs(k) for k in cluster_size.values())
    true_pairs = sum(_pairs(k) for k in person_size.values())
    correct_pairs = sum(_pairs(k) for k in overlap.values())
    precision = correct_pairs / predicted_pairs if predicted_pairs else 1.0
    recall = correct_pairs / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    exact = sum(1 for person, masters in clusters_of_person.items()
                if len(masters) == 1
                and cluster_size[next(iter(masters))] == person_size[person])
    false_merges = sum(1 for persons in persons_in_cluster.values() if len(persons) > 1)
    missed_merges = sum(1 for masters in clusters_of_person.values() if len(masters) > 1)

    twin_pairs = {frozenset(p) for p in twins}
    merged = 0
    for pair in twin_pairs:
        if len(pair) != 2:
            raise ValueError("a twin pair must name two different person_ids")
        a, b = tuple(pair)
        if clusters_of_person.get(a, set()) & clusters_of_person.get(b, set()):
            merged += 1

    persons = len(person_size)
    return Evaluation(
        records=len(person_of), persons=persons, clusters=len(cluster_size),
        true_pairs=true_pairs, predicted_pairs=predicted_pairs, correct_pairs=correct_pairs,
        precision=precision, recall=recall, f1=f1,
        exact_clusters=exact, exact_cluster_rate=exact / persons if persons else 1.0,
        false_merges=false_merges, missed_merges=missed_merges,
        twin_pairs=len(twin_pairs), twins_merged=merged,
        unassigned=unassigned, unknown=unknown,
    )


# --- reading the truth written by joinedup.simulators.council.write_council ---------------

def read_truth(path: str | Path) -> list[tuple[str, str, str]]:
    """Rows of a ``truth.csv`` (header source_system,source_key,person_id)."""
    return _read_csv(Path(path), ("source_system", "source_key", "person_id"))


def read_twins(path: str | Path) -> set[frozenset[str]]:
    """Twin pairs from a ``twins.csv`` (header person_id_a,person_id_b)."""
    return {frozenset(row) for row in _read_csv(Path(path), ("person_id_a", "person_id_b"))}


def _read_csv(path: Path, header: tuple[str, ...]) -> list:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: write the council first "
                                "(joinedup.simulators.write_council)")
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        first = tuple(next(reader, ()))
        if first != header:
            raise ValueError(f"{path}: expected header {','.join(header)}, "
                             f"found {','.join(first) or 'nothing'}")
        rows = []
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ValueError(f"{path}, line {line}: expected {len(header)} columns, "
                                 f"found {len(row)}")
            rows.append(tuple(row))
        return rows


def evaluate_folder(folder: str | Path, assignments: Iterable[tuple[str, str, str]]
                    ) -> Evaluation:
    """Score ``assignments`` against the truth.csv and twins.csv in ``folder``."""
    folder = Path(folder)
    return evaluate(assignments, read_truth(folder / "truth.csv"),
                    read_twins(folder / "twins.csv"))
