"""The golden record's fast paths (rules worked out once; one record taken whole) choose
exactly what the straightforward survivorship does, on records that tie, disagree and miss
values, so the set-based refresh of a million persons keeps every golden value and source."""
from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from joinedup.canonical import identity_fields
from joinedup.mci.golden import Survivorship, field_plan, golden_record

RULES = Survivorship.model_validate({
    "default": {"rule": "trust", "order": ["revenues", "housing", "hr", "socialcare", "revenues"]},
    "fields": {"given_name": {"rule": "most_frequent"}, "family_name": {"rule": "most_recent"},
               "middle_names": {"rule": "most_complete"}, "postcode": {"rule": "most_recent", "order": ["hr"]}},
})


def reference_golden(records: list[dict[str, Any]], rules: Survivorship) -> tuple[dict, dict]:
    """Survivorship written the plain way (the implementation before the fast paths)."""
    def neg(text: str) -> tuple[int, ...]:
        return tuple(-ord(c) for c in text)

    golden: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in identity_fields():
        candidates = [r for r in records if r.get(name) not in (None, "")]
        if not candidates:
            continue
        rule, order = rules.for_field(name)
        recency = lambda r: r.get("updated_at") or ""  # noqa: E731
        trust = lambda r: order.index(r["source_system"]) if r["source_system"] in order else len(order)  # noqa: E731
        if rule == "trust":
            best = min(candidates, key=lambda r: (trust(r), neg(recency(r))))
        elif rule == "most_recent":
            best = max(candidates, key=lambda r: (recency(r), -trust(r)))
        elif rule == "most_complete":
            best = max(candidates, key=lambda r: (len(str(r[name])), recency(r)))
        else:
            votes = Counter(r[name] for r in candidates)
            best = min(candidates, key=lambda r: (-votes[r[name]], trust(r), neg(recency(r))))
        golden[name] = best[name]
        sources[name] = f"{best['source_system']}/{best['source_key']}"
    return golden, sources


# Few distinct values, so records tie and agree often (the cases tie-breaking decides).
value = st.sampled_from([None, "", "A", "B", "AB", "ABC"])
record = st.fixed_dictionaries({
    "source_system": st.sampled_from(["revenues", "housing", "hr", "socialcare", "parking"]),
    "source_key": st.sampled_from(["1", "2", "3"]),
    "updated_at": st.sampled_from([None, "2024-01-01T00:00:00", "2025-06-01T00:00:00"]),
    **{name: value for name in ("given_name", "family_name", "middle_names", "postcode", "uprn",
                                "date_of_birth", "ni_number", "email")},
})


@settings(max_examples=300, deadline=None)
@given(st.lists(record, min_size=0, max_size=5))
def test_golden_record_with_a_plan_matches_plain_survivorship(records: list[dict[str, Any]]) -> None:
    expected = reference_golden(records, RULES)
    assert golden_record(records, RULES) == expected
    assert golden_record(records, plan=field_plan(RULES)) == expected


def test_one_record_gives_every_value_it_has_and_names_itself_as_the_source() -> None:
    only = {"source_system": "hr", "source_key": "E1", "updated_at": None, "given_name": "Ann",
            "family_name": "", "postcode": "CF10 1AA", "email": None}
    golden, sources = golden_record([only], RULES)
    assert golden == {"given_name": "Ann", "postcode": "CF10 1AA"}
    assert sources == {"given_name": "hr/E1", "postcode": "hr/E1"}
    assert golden_record([], RULES) == ({}, {})
