"""The cluster guard remembers the conflicts it has found; it must refuse exactly what the
plain all-pairs guard refuses. Random councils (few distinct values, so NI numbers, twins and
household chains collide often), random links and steward cannot-links, existing persons: the
plans must be identical."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from joinedup.mci.cluster import ClusterGuard, Link, plan_clusters
from joinedup.mci.rules import never_same_cluster


class AllPairsGuard:
    """The guard as it was: every record of one cluster against every record of the other."""

    def __init__(self, features: Mapping[int, Mapping[str, Any]], cannot_link: set[frozenset[int]],
                 expand: Callable[[set[int]], set[int]] | None = None) -> None:
        self.features, self.cannot_link = features, cannot_link
        self.expand = expand or (lambda ids: ids)

    def __call__(self, a: set[int], b: set[int]) -> bool:
        a, b = self.expand(set(a)), self.expand(set(b))
        for x in a:
            for y in b:
                if frozenset((x, y)) in self.cannot_link:
                    return False
                fx, fy = self.features.get(x), self.features.get(y)
                if fx is not None and fy is not None and never_same_cluster(fx, fy):
                    return False
        return True


def _record(draw: Callable, rid: int) -> dict[str, Any]:
    pick = lambda values: draw(st.sampled_from(values))  # noqa: E731
    return {
        "record_id": rid,
        "ni_key": pick([None, None, "AB123456", "CE654321"]),
        "nhs_number": pick([None, None, None, "9434765919"]),
        "uprn": pick([None, "100", "200"]),
        "address_key": pick([None, "1 high st|cf10", "2 mill ln|np20"]),
        "dob": pick([None, "1990-01-02", "1990-02-01", "1961-04-03"]),
        "family_name_std": pick(["smith", "jones"]),
        "given_name_std": pick(["anna", "hannah", "tom", "thomas", "bill", "william"]),
        "given_name_roots": None,
        "email_std": pick([None, "a@example.org"]),
        "phone_std": None,
    }


@st.composite
def councils(draw: Callable) -> tuple:
    n = draw(st.integers(2, 14))
    features = {rid: _record(draw, rid) for rid in range(1, n + 1)}
    if draw(st.booleans()):
        del features[draw(st.integers(1, n))]  # a record with no features: only cannot-links bind it
    pair = st.tuples(st.integers(1, n), st.integers(1, n)).filter(lambda p: p[0] != p[1])
    links = [Link(a, b, draw(st.sampled_from([3.0, 9.0, 12.5, 20.0])), draw(st.sampled_from(["model", "nino+dob"])))
             for a, b in draw(st.lists(pair, max_size=30))]
    cannot = {frozenset(p) for p in draw(st.lists(pair, max_size=4))}
    existing = draw(st.lists(st.sampled_from([None, "M1", "M2", "M3"]), min_size=n, max_size=n))
    current = {rid: existing[rid - 1] for rid in range(1, n + 1)}
    return features, links, cannot, current


def _expand_to_persons(current: Mapping[int, str | None]):  # noqa: ANN202
    """expand() as the merge makes it: a record and every other record of its person."""
    members: dict[str, set[int]] = {}
    for rid, master in current.items():
        if master:
            members.setdefault(master, set()).add(rid)

    def expand(records: set[int]) -> set[int]:
        out = set(records)
        for rid in records:
            if current.get(rid):
                out |= members[current[rid]]
        return out

    return expand


def _plan(guard_class: type, features, links, cannot, current):  # noqa: ANN001, ANN202
    expand = _expand_to_persons(current)
    counter = iter(range(1000))
    guard = guard_class(features, cannot, expand)
    pending = [rid for rid, master in current.items() if master is None]
    return plan_clusters(pending, links, current, {"M1": 1, "M2": 2, "M3": 3}, guard,
                         lambda: f"N{next(counter)}", merge_allowed=lambda link: link.strength >= 12)


@settings(max_examples=400, deadline=None)
@given(councils())
def test_remembering_conflicts_refuses_exactly_what_all_pairs_refuses(council: tuple) -> None:
    remembered, all_pairs = _plan(ClusterGuard, *council), _plan(AllPairsGuard, *council)
    assert remembered.assignments == all_pairs.assignments
    assert remembered.refused == all_pairs.refused
    assert remembered.refused_reasons == all_pairs.refused_reasons
    assert remembered.merges == all_pairs.merges and remembered.new_masters == all_pairs.new_masters


def test_a_chain_is_refused_again_without_comparing_the_clusters_again() -> None:
    """A-B links, B-C links, A and C conflict (different NI numbers): the second link between
    {A, B} and C is refused from what the first refusal found."""
    base = {"uprn": None, "address_key": None, "dob": "1990-01-02", "family_name_std": "smith",
            "given_name_std": "anna", "given_name_roots": None, "email_std": None, "phone_std": None,
            "nhs_number": None}
    features = {1: {**base, "ni_key": "AB123456"}, 2: {**base, "ni_key": None}, 3: {**base, "ni_key": "CE654321"},
                4: {**base, "ni_key": None}}
    calls: list[tuple[int, int]] = []
    counted = {rid: _Counting(f, rid, calls) for rid, f in features.items()}
    guard = ClusterGuard(counted)
    links = [Link(1, 2, 20.0), Link(3, 4, 19.0), Link(2, 3, 15.0), Link(1, 4, 14.0), Link(2, 4, 13.0)]
    plan = plan_clusters([1, 2, 3, 4], links, {}, {}, guard, iter(["P1", "P2", "P3"]).__next__)
    assert plan.refused == [(2, 3), (1, 4), (2, 4)]
    assert plan.assignments[1] == plan.assignments[2] != plan.assignments[3] == plan.assignments[4]
    reads_after_first_refusal = len(calls)
    guard({1, 2}, {3, 4})
    assert len(calls) == reads_after_first_refusal  # refused from memory: no record read again
    assert guard.last_reason == "different NI numbers"


class _Counting(dict):
    """A feature row that records each read of its NI key (how often a pair was compared)."""

    def __init__(self, row: Mapping[str, Any], rid: int, calls: list) -> None:
        super().__init__(row)
        self._rid, self._calls = rid, calls

    def get(self, key: str, default: Any = None) -> Any:  # noqa: ANN401
        if key == "ni_key":
            self._calls.append((self._rid, len(self._calls)))
        return super().get(key, default)


def _plan_prepared(features, links, cannot, current, group_cap):  # noqa: ANN001, ANN202
    """The plan with the guard prepared on arrays (PairChecks) and clear groups joined whole."""
    import pandas as pd

    from joinedup.mci.pair_checks import PairChecks

    expand = _expand_to_persons(current)
    frame = pd.DataFrame([{**row, "record_id": rid} for rid, row in features.items()], dtype=object)
    frame["record_id"] = frame["record_id"].astype("int64")
    guard = ClusterGuard(features, cannot, expand, checks=PairChecks(frame))
    pending = [rid for rid, master in current.items() if master is None]
    guard.prepare(pending, links, group_cap=group_cap)
    counter = iter(range(1000))
    return plan_clusters(pending, links, current, {"M1": 1, "M2": 2, "M3": 3}, guard,
                         lambda: f"N{next(counter)}", merge_allowed=lambda link: link.strength >= 12,
                         clear=guard.clear)


@settings(max_examples=400, deadline=None)
@given(councils(), st.sampled_from([1, 3, 1000]))
def test_groups_checked_beforehand_and_joined_whole_plan_exactly_as_all_pairs(council: tuple, cap: int) -> None:
    """A cap of 1 or 3 leaves some groups to the join-by-join guard: both kinds in one plan."""
    prepared, all_pairs = _plan_prepared(*council, cap), _plan(AllPairsGuard, *council)
    assert list(prepared.assignments.items()) == list(all_pairs.assignments.items())  # order too
    assert prepared.refused == all_pairs.refused
    assert prepared.refused_reasons == all_pairs.refused_reasons
    assert prepared.merges == all_pairs.merges and prepared.new_masters == all_pairs.new_masters


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60))))
def test_linked_groups_are_the_connected_components(graph: tuple) -> None:
    import numpy as np

    from joinedup.mci.cluster import linked_groups

    n, edges = graph
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    left = np.array([a for a, _ in edges], dtype=np.int64)
    right = np.array([b for _, b in edges], dtype=np.int64)
    assert linked_groups(n, left, right).tolist() == [find(x) for x in range(n)]


def test_a_long_chain_is_one_group() -> None:
    import numpy as np

    from joinedup.mci.cluster import linked_groups

    order = np.random.default_rng(1).permutation(5000)
    groups = linked_groups(5000, order[:-1], order[1:])
    assert (groups == 0).all()
