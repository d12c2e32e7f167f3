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
from typing import Any

from joinedup.mci.rules import never_same_cluster

MUST_LINK = "steward must-link"


@dataclass(frozen=True)
class Link:
    """A pair to join. ``strength`` orders the joins (higher first); ``kind`` is the rule
    name, 'model' for a probabilistic link, or MUST_LINK."""

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
) -> ClusterPlan:
    """``record_ids``: tonight's pending records; ``links``: pairs to join;
    ``current_master``: the master ID each involved record carries now (None if new).

    ``may_join(members_a, members_b)`` says whether two clusters may become one;
    ``merge_allowed(link)`` whether a link may merge two persons already in the index
    (default: always). Must-links skip both checks.
    """
    uf = UnionFind()
    plan = ClusterPlan()
    masters: dict[int, set[str]] = {}

    def masters_of(root: int) -> set[str]:
        if root not in masters:  # a record not joined yet: its own master ID, if any
            m = current_master.get(root)
            masters[root] = {m} if m else set()
        return masters[root]

    for rid in sorted(record_ids):
        uf.find(rid)
    ordered = sorted((_as_link(l) for l in links),
                     key=lambda l: (not l.forced, -l.strength, min(l.a, l.b), max(l.a, l.b)))
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
    for members in sorted(clusters.values(), key=min):
        found = sorted({m for r in members if (m := current_master.get(r))}, key=lambda m: master_seq[m])
        if found:
            survivor = found[0]
            plan.merges.extend((absorbed, survivor) for absorbed in found[1:])
        else:
            survivor = new_master_id()
            plan.new_masters.append(survivor)
        for rid in members:
            plan.assignments[rid] = survivor
    return plan


class ClusterGuard:
    """``may_join`` for :func:`plan_clusters`: no cannot-link and no hard constraint
    (:func:`joinedup.mci.rules.never_same_cluster`) between any two records of the joined
    clusters. ``expand`` adds the records a cluster's members already share a master ID
    with (on a night, the rest of an existing person).

    A constraint is between two records and never changes, and clusters only grow, so a pair
    of clusters refused once stays refused: every conflicting pair found is remembered, and a
    later attempt to join clusters holding such a pair is refused at once, without comparing
    every record of one with every record of the other again (links are tried strongest
    first, so many weaker links between the same two clusters follow a refusal)."""

    def __init__(
        self,
        features: Mapping[int, Mapping[str, Any]],
        cannot_link: set[frozenset[int]] = frozenset(),
        expand: Callable[[set[int]], set[int]] | None = None,
    ) -> None:
        self.features = features
        self.cannot_link = cannot_link
        self.expand = expand or (lambda ids: ids)
        self.last_reason: str | None = None
        self._conflicts: dict[int, dict[int, str]] = defaultdict(dict)  # found so far, both ways
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

    def __call__(self, a: set[int], b: set[int]) -> bool:
        a, b = self.expand(set(a)), self.expand(set(b))
        why = self._known_conflict(a, b)  # steward cannot-links are known from the start
        if why:
            self.last_reason = why
            return False
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
