"""Clusters and master IDs.

Linked pairs are joined into clusters (union-find), strongest link first, unless the join
would put two records that can never be one person in the same cluster (a steward's
cannot-link; different valid NI or NHS numbers; twins; a different date of birth AND given
name, the signature of a household member reached through a chain of links). A link that
would merge two persons already in the index must itself be strong (``merge_allowed``):
links are taken strongest first, so the weaker of the two links that bridge two persons is
the one tested. A steward's must-link is applied first and always.

A cluster takes the master ID its records already carry; a cluster with none gets a new ID;
a cluster whose records carry several is a merge: the oldest ID survives, the others are
marked merged into it, and the merge is an event. History is never rewritten.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from joinedup.mci.rules import never_same_cluster

MUST_LINK = "steward must-link"


class Link(NamedTuple):
    """A pair to join. ``strength`` orders the joins (higher first); ``kind`` is the rule
    name, 'model' for a probabilistic link, or MUST_LINK. (A named tuple, not a frozen
    dataclass: a first build makes one per linked pair, and a tuple is made four times
    faster.)"""

    a: int
    b: int
    strength: float = 0.0
    kind: str = "model"

    @property
    def forced(self) -> bool:
        return self.kind == MUST_LINK


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.members: dict[int, set[int]] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        up = parent.get(x)
        if up is None:  # first sight: a cluster of one
            parent[x] = x
            self.members[x] = {x}
            return x
        if up == x:
            return x
        root = up
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: int, b: int, allowed: Callable[[set[int], set[int]], bool]) -> bool:
        return self.union_roots(self.find(a), self.find(b), allowed) is not None

    def union_roots(self, ra: int, rb: int, allowed: Callable[[set[int], set[int]], bool]) -> int | None:
        """Join the clusters rooted at ``ra`` and ``rb`` if ``allowed``; the joined root, or
        None when refused (roots from :meth:`find`, so a caller that has them looks up nothing)."""
        if ra == rb:
            return ra
        if not allowed(self.members[ra], self.members[rb]):
            return None
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra] |= self.members.pop(rb)
        return ra


@dataclass
class ClusterPlan:
    """What the night changes: new persons, links, merges, and links refused (with why)."""

    assignments: dict[int, str] = field(default_factory=dict)  # record id -> master id
    new_masters: list[str] = field(default_factory=list)
    merges: list[tuple[str, str]] = field(default_factory=list)  # (absorbed, survivor)
    refused: list[tuple[int, int]] = field(default_factory=list)
    refused_reasons: dict[tuple[int, int], str] = field(default_factory=dict)


def _as_link(item: Link | tuple) -> Link:
    if isinstance(item, Link):
        return item
    return Link(int(item[0]), int(item[1]), *item[2:])


def plan_clusters(
    record_ids: Iterable[int],
    links: Iterable[Link | tuple[int, int]],
    current_master: Mapping[int, str | None],
    master_seq: Mapping[str, int],
    may_join: Callable[[set[int], set[int]], bool],
    new_master_id: Callable[[], str],
    *,
    merge_allowed: Callable[[Link], bool] | None = None,
    clear: Callable[[np.ndarray], np.ndarray] | None = None,
) -> ClusterPlan:
    """``record_ids``: tonight's pending records; ``links``: pairs to join;
    ``current_master``: the master ID each involved record carries now (None if new).

    ``may_join(members_a, members_b)`` says whether two clusters may become one;
    ``merge_allowed(link)`` whether a link may merge two persons already in the index
    (default: always). Must-links skip both checks.

    Links are tried strongest first, one by one. ``clear`` (:meth:`ClusterGuard.clear`)
    says, for an array of record ids, which of them ``may_join`` can refuse nothing about:
    a group of linked records all clear and carrying at most one master ID is joined whole
    (no link of it can be refused), and only the other groups' links are tried one by one.
    The plan is the same either way.
    """
    links = [_as_link(l) for l in links]
    a = np.fromiter(map(attrgetter("a"), links), np.int64, len(links))
    b = np.fromiter(map(attrgetter("b"), links), np.int64, len(links))
    order = _join_order(links, a, b)
    ordered = [links[i] for i in order.tolist()]
    pending = sorted(record_ids)
    uf = UnionFind()
    plan = ClusterPlan()
    whole: list[list[int]] = []  # groups joined whole, each in the order UnionFind would meet them
    if clear is not None and ordered:
        pending, one_by_one, whole = _groups_joined_whole(pending, a[order], b[order], current_master, clear)
        ordered = [link for link, kept in zip(ordered, one_by_one.tolist()) if kept]
    masters: dict[int, set[str]] = {}

    def masters_of(root: int) -> set[str]:
        if root not in masters:  # a record not joined yet: its own master ID, if any
            m = current_master.get(root)
            masters[root] = {m} if m else set()
        return masters[root]

    for rid in pending:
        uf.find(rid)
    for link in ordered:
        ra, rb = uf.find(link.a), uf.find(link.b)
        if ra == rb:
            continue
        ma, mb = masters_of(ra), masters_of(rb)
        if link.forced:
            allowed: Callable[[set[int], set[int]], bool] = lambda _a, _b: True  # noqa: E731
        else:
            if ma and mb and ma != mb and merge_allowed is not None and not merge_allowed(link):
                plan.refused.append((link.a, link.b))
                plan.refused_reasons[(link.a, link.b)] = "would merge two persons on a weak link"
                continue
            allowed = may_join
        root = uf.union_roots(ra, rb, allowed)
        if root is not None:
            masters[root] = ma | mb
        else:
            plan.refused.append((link.a, link.b))
            plan.refused_reasons[(link.a, link.b)] = "a hard constraint forbids it"
    clusters: dict[int, set[int]] = defaultdict(set)
    for rid in list(uf.parent):
        clusters[uf.find(rid)].add(rid)
    everyone = list(clusters.values()) + [set(members) for members in whole]
    for members in sorted(everyone, key=min):
        found = sorted({m for r in members if (m := current_master.get(r))}, key=lambda m: master_seq[m]) \
            if current_master else []
        if found:
            survivor = found[0]
            plan.merges.extend((absorbed, survivor) for absorbed in found[1:])
        else:
            survivor = new_master_id()
            plan.new_masters.append(survivor)
        for rid in members:
            plan.assignments[rid] = survivor
    return plan


def _join_order(links: list[Link], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The order links are tried in: must-links first, then the strongest, then by pair (the
    sort is stable: equal links keep their order)."""
    strength = np.fromiter(map(attrgetter("strength"), links), float, len(links))
    if np.isnan(strength).any():  # NaN has no place in an order: Python's sort as it always was
        return np.array(sorted(range(len(links)), key=lambda i: (
            not links[i].forced, -links[i].strength, min(links[i].a, links[i].b), max(links[i].a, links[i].b))),
            dtype=np.int64)
    forced = np.fromiter((l.forced for l in links), bool, len(links))
    return np.lexsort((np.maximum(a, b), np.minimum(a, b), -strength, ~forced))


def _groups_joined_whole(pending: list[int], a: np.ndarray, b: np.ndarray, current_master: Mapping[int, str | None],
                         clear: Callable[[np.ndarray], np.ndarray]) -> tuple[list[int], np.ndarray, list[list[int]]]:
    """Split the records into groups connected by the links ``a``-``b`` (in the order they
    are tried); a group whose records are all ``clear`` and carry at most one master ID can
    be joined whole. Returns the pending records of the other groups, which links are theirs
    (to be tried one by one), and the groups joined whole, each listed in the order the
    union-find would first meet its records (pending records in order, then the others as
    the links reach them), so that its set is built as before."""
    ends = np.empty(2 * len(a), dtype=np.int64)
    ends[0::2], ends[1::2] = a, b
    seen, first = np.unique(ends, return_index=True)
    pending_ids = np.unique(np.array(pending, dtype=np.int64))
    not_pending = ~np.isin(seen, pending_ids)
    nodes = np.concatenate([pending_ids, seen[not_pending][np.argsort(first[not_pending], kind="stable")]])
    by_id = np.argsort(nodes, kind="stable")
    locate = lambda ids: by_id[np.searchsorted(nodes[by_id], ids)]  # noqa: E731
    at_a = locate(a)
    group = linked_groups(len(nodes), at_a, locate(b))
    dirty = np.zeros(len(nodes), dtype=bool)  # by group label (a node index)
    np.logical_or.at(dirty, group, ~np.asarray(clear(nodes), dtype=bool))
    if current_master:
        codes = pd.factorize(np.array([current_master.get(r) for r in nodes.tolist()], dtype=object))[0]
        low = np.full(len(nodes), np.iinfo(np.int64).max)
        high = np.full(len(nodes), -1)
        carried = codes >= 0
        np.minimum.at(low, group[carried], codes[carried])
        np.maximum.at(high, group[carried], codes[carried])
        dirty |= (high >= 0) & (low != high)  # two master IDs: a link may be refused as a weak merge
    one_by_one = dirty[group]
    keep = set(nodes[one_by_one].tolist())
    order = np.argsort(group[~one_by_one], kind="stable")
    rest, labels = nodes[~one_by_one][order], group[~one_by_one][order]
    bounds = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1], True]).tolist() if len(rest) else []
    members = rest.tolist()
    whole = [members[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
    return [r for r in pending if r in keep], one_by_one[at_a], whole


#: Largest group of linked records whose pairs :meth:`ClusterGuard.prepare` checks at once.
PREPARED_GROUP_CAP = 1000


class ClusterGuard:
    """``may_join`` for :func:`plan_clusters`: no cannot-link and no hard constraint
    (:func:`joinedup.mci.rules.never_same_cluster`) between any two records of the joined
    clusters. ``expand`` adds the records a cluster's members already share a master ID
    with (on a night, the rest of an existing person).

    A constraint is between two records and never changes, and clusters only grow, so a pair
    of clusters refused once stays refused: every conflicting pair found is remembered, and a
    later attempt to join clusters holding such a pair is refused at once, without comparing
    every record of one with every record of the other again (links are tried strongest
    first, so many weaker links between the same two clusters follow a refusal).

    With ``checks`` (the features' :class:`joinedup.mci.pair_checks.PairChecks`),
    :meth:`prepare` finds every conflict the joins can meet before the first join: two
    clusters a link joins lie in one group of records connected by the links (and by the
    persons ``expand`` adds), so all the pairs of each group are checked at once, on arrays.
    A join inside a group so prepared is then decided by the remembered conflicts alone.
    (``last_reason`` is then the reason of a remembered pair, not necessarily of the pair a
    record-by-record comparison would have met first.)"""

    def __init__(
        self,
        features: Mapping[int, Mapping[str, Any]],
        cannot_link: set[frozenset[int]] = frozenset(),
        expand: Callable[[set[int]], set[int]] | None = None,
        checks: Any = None,
    ) -> None:
        self.features = features
        self.cannot_link = cannot_link
        self._expands = expand is not None
        self.expand = expand or (lambda ids: ids)
        self.checks = checks
        self.last_reason: str | None = None
        self._conflicts: dict[int, dict[int, str]] = defaultdict(dict)  # found so far, both ways
        self._group: dict[int, int] = {}  # record id -> its prepared group (every pair checked)
        self._clear_ids = np.zeros(0, dtype=np.int64)  # prepared records, by id, and whether
        self._clear = np.zeros(0, dtype=bool)  # their group is clear (see clear())
        for pair in cannot_link:
            if len(pair) == 2:
                x, y = pair
                self._remember(x, y, "steward cannot-link")

    def _remember(self, x: int, y: int, why: str) -> None:
        self._conflicts[x][y] = why
        self._conflicts[y][x] = why

    def _known_conflict(self, a: set[int], b: set[int]) -> str | None:
        small, large = (a, b) if len(a) <= len(b) else (b, a)
        for x in small:
            known = self._conflicts.get(x)
            if known:
                for y, why in known.items():
                    if y in large:
                        return why
        return None

    def prepare(self, record_ids: Iterable[int], links: Iterable[Link | tuple[int, int]],
                group_cap: int = PREPARED_GROUP_CAP) -> None:
        """Check beforehand every pair of records that the joins of ``links`` can compare
        (needs ``checks``): the groups of records connected by the links (and by ``expand``)
        of up to ``group_cap`` records (pairs grow with the square: a larger group is checked
        join by join)."""
        if self.checks is None:
            return
        links = [_as_link(l) for l in links]
        ends = [np.fromiter(map(attrgetter("a"), links), np.int64, len(links)),
                np.fromiter(map(attrgetter("b"), links), np.int64, len(links))]
        records = np.fromiter(record_ids, np.int64)
        if self._expands:  # a record and the rest of its person: one group
            touched = _distinct(np.concatenate([records, *ends])).tolist()
            pairs = [(r, m) for r in touched for m in self.expand({r}) if m != r]
            ends = [np.concatenate([ends[0], np.array([p[0] for p in pairs], np.int64)]),
                    np.concatenate([ends[1], np.array([p[1] for p in pairs], np.int64)])]
        ids = _distinct(np.concatenate([records, *ends]))
        group = linked_groups(len(ids), np.searchsorted(ids, ends[0]), np.searchsorted(ids, ends[1]))
        order = np.argsort(group, kind="stable")
        ids, group = ids[order], group[order]
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        sizes = np.diff(np.r_[starts, len(ids)])
        kept = sizes <= group_cap
        left, right = _pairs_within(starts[kept & (sizes > 1)], sizes[kept & (sizes > 1)])
        with_features = self.checks.positions(ids, missing=-1)
        both = (with_features[left] >= 0) & (with_features[right] >= 0)  # a record without features binds no one
        left, right = left[both], right[both]
        reasons = self.checks.never_same_cluster(with_features[left], with_features[right])
        for i in np.flatnonzero(reasons != None).tolist():  # noqa: E711 - elementwise over an object array
            self._remember(int(ids[left[i]]), int(ids[right[i]]), reasons[i])
        in_kept = np.repeat(kept, sizes)
        self._group = dict(zip(ids[in_kept].tolist(), group[in_kept].tolist()))
        # a prepared group is clear when no two of its records conflict (nor a steward's
        # cannot-link joins two of them): no join inside it can be refused
        conflicted = np.isin(ids, np.fromiter(self._conflicts, np.int64, len(self._conflicts)))
        dirty = np.zeros(len(ids), dtype=bool)  # by group label (a node index)
        np.logical_or.at(dirty, group, conflicted)
        is_clear = in_kept & ~dirty[group]
        by_id = np.argsort(ids)
        self._clear_ids, self._clear = ids[by_id], is_clear[by_id]

    def clear(self, record_ids: np.ndarray) -> np.ndarray:
        """Which of these records lie in a prepared group where no join can be refused (no
        two of its records conflict): ``plan_clusters`` joins such a group whole."""
        record_ids = np.asarray(record_ids, dtype=np.int64)
        known = self._clear_ids
        at = np.minimum(np.searchsorted(known, record_ids), max(len(known) - 1, 0))
        if not len(known):
            return np.zeros(len(record_ids), dtype=bool)
        return (known[at] == record_ids) & self._clear[at]

    def _prepared_together(self, a: set[int], b: set[int]) -> bool:
        """Every record of ``a`` and ``b`` in one prepared group: all their pairs were checked."""
        group = self._group
        if not group or not a:
            return False
        first = group.get(next(iter(a)))
        return first is not None and all(group.get(x) == first for x in a) and all(group.get(y) == first for y in b)

    def __call__(self, a: set[int], b: set[int]) -> bool:
        a, b = self.expand(set(a)), self.expand(set(b))
        why = self._known_conflict(a, b)  # steward cannot-links are known from the start
        if why:
            self.last_reason = why
            return False
        if self._prepared_together(a, b):
            return True  # every conflict between them would be known
        for x in a:
            fx = self.features.get(x)
            if fx is None:
                continue
            for y in b:
                fy = self.features.get(y)
                if fy is not None:
                    why = never_same_cluster(fx, fy)
                    if why:
                        self._remember(x, y, why)
                        self.last_reason = why
                        return False
        return True


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (``np.unique`` by one sort: several times faster here)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def linked_groups(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of ``n`` nodes joined by the edges ``left[i]``-``right[i]``: the
    smallest node of each node's component. Whole-array hooking and pointer jumping (each
    root hooked under the smallest root it touches, then every node pointed at its root),
    repeated until no edge joins two roots."""
    label = np.arange(n, dtype=np.int64)
    while True:
        low_l, low_r = label[left], label[right]
        if (low_l == low_r).all():
            return label
        low = np.minimum(low_l, low_r)
        np.minimum.at(label, low_l, low)
        np.minimum.at(label, low_r, low)
        while True:  # point every node at its root
            up = label[label]
            if (up == label).all():
                break
            label = up


def _pairs_within(starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i < j) of positions inside each run ``starts[k] .. starts[k] + sizes[k] - 1``."""
    position = np.repeat(starts, sizes) + _counting_within(sizes)  # every position of every run
    after = np.repeat(starts + sizes, sizes) - position - 1  # later positions in its run
    left = np.repeat(position, after)
    right = left + 1 + _counting_within(after)
    return left, right


def _counting_within(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., counts[k] - 1 for each k, concatenated."""
    total = int(counts.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
