"""Survivorship prefers records their source still holds: a record gone from source (deleted
from a full extract) gives a field's value only when no held record has one."""
from __future__ import annotations

from typing import Any

from joinedup.mci.golden import GONE_FROM_SOURCE, Survivorship, golden_record

RULES = {
    "default": {"rule": "trust", "order": ["hr", "revenues", "housing"]},
    "fields": {"address_line_1": {"rule": "most_recent"}, "given_name": {"rule": "most_frequent"}},
}
PREFER = Survivorship.model_validate(RULES)
COMPETE = Survivorship.model_validate({**RULES, "prefer_held": False})


def _rec(system: str, key: str, updated: str, *, gone: bool = False, **values: Any) -> dict[str, Any]:
    record = {"source_system": system, "source_key": key, "updated_at": updated, **values}
    if gone:
        record[GONE_FROM_SOURCE] = True
    return record


# A leaver payroll purged: the most trusted and the most recent record, but gone from source.
LEAVER = _rec("hr", "E1", "2026-01-04T00:00:00", gone=True, given_name="Bill", phone="07700900001",
              address_line_1="1 Old Road", deceased_date="2026-01-02")
HELD = [
    _rec("revenues", "R1", "2025-03-01T00:00:00", given_name="William", phone="07700900002",
         address_line_1="2 New Street"),
    _rec("housing", "H1", "2024-05-01T00:00:00", given_name="William", address_line_1="2 New Street"),
]


def test_a_held_record_outranks_a_gone_one_under_every_rule() -> None:
    golden, sources = golden_record([LEAVER, *HELD], PREFER)
    assert golden["phone"] == "07700900002" and sources["phone"] == "revenues/R1"  # trust: hr ranks first
    assert golden["address_line_1"] == "2 New Street" and sources["address_line_1"] == "revenues/R1"  # most recent
    assert golden["given_name"] == "William"


def test_a_value_only_a_gone_record_has_is_kept() -> None:
    golden, sources = golden_record([LEAVER, *HELD], PREFER)
    assert golden["deceased_date"] == "2026-01-02" and sources["deceased_date"] == "hr/E1"


def test_most_frequent_counts_held_records_only_when_they_have_the_field() -> None:
    gone_twice = [_rec("hr", "E1", "2026-01-04", gone=True, given_name="Bill"),
                  _rec("hr", "E2", "2026-01-04", gone=True, given_name="Bill")]
    held = _rec("housing", "H1", "2024-05-01", given_name="William")
    assert golden_record([*gone_twice, held], PREFER)[0]["given_name"] == "William"
    assert golden_record([*gone_twice, held], COMPETE)[0]["given_name"] == "Bill"


def test_with_prefer_held_off_a_gone_record_competes_like_any_other() -> None:
    golden, sources = golden_record([LEAVER, *HELD], COMPETE)
    assert golden["phone"] == "07700900001" and sources["phone"] == "hr/E1"
    assert golden["address_line_1"] == "1 Old Road"


def test_a_person_whose_only_records_are_gone_keeps_their_values() -> None:
    golden, sources = golden_record([LEAVER], PREFER)
    assert golden["address_line_1"] == "1 Old Road" and sources["address_line_1"] == "hr/E1"
    assert GONE_FROM_SOURCE not in golden


def test_the_shipped_rules_prefer_held_records() -> None:
    from joinedup.mci.golden import survivorship

    assert survivorship().prefer_held is True
