"""Clusters: strongest links first, hard constraints across whole clusters, no weak merges
of existing persons, steward decisions win, and the oldest master ID survives."""
from __future__ import annotations

import itertools

from joinedup.mci.cluster import MUST_LINK, ClusterGuard, Link, plan_clusters

PEOPLE = {  # match features, only what the constraints read
    1: {"given_name_std": "DAVID", "given_name_roots": "DAVID", "family_name_std": "EVANS", "dob": "1960-02-03", "uprn": "1"},
    2: {"given_name_std": "DAVE", "given_name_roots": "DAVID", "family_name_std": "EVANS", "dob": None, "uprn": "1"},
    3: {"given_name_std": "RHYS", "given_name_roots": "RHYS", "family_name_std": "EVANS", "dob": "1990-04-01", "uprn": "1"},
    4: {"given_name_std": "DAVID", "given_name_roots": "DAVID", "family_name_std": "EVANS", "dob": "1960-02-03", "ni_key": "AB123456"},
    5: {"given_name_std": "DAVID", "given_name_roots": "DAVID", "family_name_std": "EVANS", "dob": "1960-02-03", "ni_key": "CE654321"},
}


def _ids():
    counter = itertools.count(1)
    return lambda: f"N{next(counter)}"


def test_a_chain_through_a_weak_record_does_not_join_parent_and_child() -> None:
    # 2 (no date of birth) links to father 1 and to son 3: the son must stay apart.
    plan = plan_clusters({1, 2, 3}, [Link(1, 2, 20.0), Link(2, 3, 9.0)], {}, {}, ClusterGuard(PEOPLE), _ids())
    assert plan.assignments[1] == plan.assignments[2] != plan.assignments[3]
    assert plan.refused == [(2, 3)]


def test_different_ni_numbers_never_meet_in_one_cluster() -> None:
    plan = plan_clusters({1, 4, 5}, [Link(1, 4, 30.0), Link(1, 5, 25.0)], {}, {}, ClusterGuard(PEOPLE), _ids())
    assert plan.assignments[4] != plan.assignments[5]
    assert plan.assignments[1] == plan.assignments[4]  # the stronger link was taken first


def test_a_weak_link_does_not_merge_two_existing_persons() -> None:
    current = {1: "JU1", 4: "JU2"}
    seq = {"JU1": 1, "JU2": 2}
    strong = lambda link: link.strength >= 12  # noqa: E731
    weak = plan_clusters({2}, [Link(2, 1, 10.0), Link(2, 4, 9.0)], current, seq, ClusterGuard(PEOPLE), _ids(),
                         merge_allowed=strong)
    assert weak.merges == [] and weak.refused == [(2, 4)] and weak.assignments[2] == "JU1"
    sure = plan_clusters({2}, [Link(2, 1, 20.0), Link(2, 4, 15.0)], current, seq, ClusterGuard(PEOPLE), _ids(),
                         merge_allowed=strong)
    assert sure.merges == [("JU2", "JU1")]  # the oldest master ID survives


def test_steward_decisions_win() -> None:
    guard = ClusterGuard(PEOPLE, cannot_link={frozenset((1, 2))})
    refused = plan_clusters({1, 2}, [Link(1, 2, 50.0)], {}, {}, guard, _ids())
    assert refused.assignments[1] != refused.assignments[2]
    forced = plan_clusters({4, 5}, [Link(4, 5, 0.0, MUST_LINK)], {}, {}, ClusterGuard(PEOPLE), _ids())
    assert forced.assignments[4] == forced.assignments[5]  # a steward's must-link overrides the NI rule


def test_new_records_get_new_ids_and_existing_ones_keep_theirs() -> None:
    plan = plan_clusters({2, 3}, [Link(1, 2, 20.0)], {1: "JU7"}, {"JU7": 7}, ClusterGuard(PEOPLE), _ids())
    assert plan.assignments == {1: "JU7", 2: "JU7", 3: "N1"}
    assert plan.new_masters == ["N1"] and plan.merges == []
