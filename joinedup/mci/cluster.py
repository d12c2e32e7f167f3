"""Clusters and master IDs.

Linked pairs are joined into clusters (union-find) unless a join would put two records that
can never be one person in the same cluster (a steward's cannot-link, different valid NI or
NHS numbers). A cluster takes the master ID its records already carry; a cluster with none
gets a new ID; a cluster whose records carry several is a merge: the oldest ID survives, the
others are marked merged into it, and the merge is an event. History is never rewritten.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.members: dict[int, set[int]] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        self.members.setdefault(x, {x})
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int, allowed: Callable[[set[int], set[int]], bool]) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if not allowed(self.members[ra], self.members[rb]):
            return False
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra] |= self.members.pop(rb)
        return True


@dataclass
class ClusterPlan:
    """What the night changes: new persons, links, merges, and pairs refused by a constraint."""

    assignments: dict[int, str] = field(default_factory=dict)  # record id -> master id
    new_masters: list[str] = field(default_factory=list)
    merges: list[tuple[str, str]] = field(default_factory=list)  # (absorbed, survivor)
    refused: list[tuple[int, int]] = field(default_factory=list)


def plan_clusters(
    record_ids: Iterable[int],
    links: Iterable[tuple[int, int]],
    current_master: dict[int, str | None],
    master_seq: dict[str, int],
    may_join: Callable[[set[int], set[int]], bool],
    new_master_id: Callable[[], str],
) -> ClusterPlan:
    """``record_ids``: tonight's pending records; ``links``: pairs to join (must-links first);
    ``current_master``: the master ID each involved record carries now (None if new)."""
    uf = UnionFind()
    plan = ClusterPlan()
    for rid in sorted(record_ids):
        uf.find(rid)
    for a, b in links:
        if not uf.union(a, b, may_join):
            plan.refused.append((a, b))
    clusters: dict[int, set[int]] = defaultdict(set)
    for rid in list(uf.parent):
        clusters[uf.find(rid)].add(rid)
    for members in sorted(clusters.values(), key=min):
        masters = sorted({m for r in members if (m := current_master.get(r))}, key=lambda m: master_seq[m])
        if masters:
            survivor = masters[0]
            plan.merges.extend((absorbed, survivor) for absorbed in masters[1:])
        else:
            survivor = new_master_id()
            plan.new_masters.append(survivor)
        for rid in members:
            plan.assignments[rid] = survivor
    return plan
