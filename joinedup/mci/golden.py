"""The golden record: per field, a configured survivorship rule picks the value the front
office sees from the source records linked to one master ID, and remembers its source."""
from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from joinedup.canonical import identity_fields
from joinedup.configfile import load_model
from joinedup.paths import project_root

RuleName = Literal["trust", "most_recent", "most_frequent", "most_complete"]


class FieldSurvivorship(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: RuleName
    order: list[str] | None = None


class Survivorship(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: FieldSurvivorship
    fields: dict[str, FieldSurvivorship] = {}

    def for_field(self, name: str) -> tuple[RuleName, list[str]]:
        spec = self.fields.get(name, self.default)
        return spec.rule, spec.order or self.default.order or []


@lru_cache(maxsize=4)
def _load(path: str) -> Survivorship:
    return load_model(Path(path), Survivorship)


def survivorship() -> Survivorship:
    return _load(str(project_root() / "schemas" / "survivorship.yaml"))


FieldPlan = tuple[str, RuleName, dict[str, int], int]


def field_plan(rules: Survivorship | None = None) -> list[FieldPlan]:
    """Each identity field with its rule and trust ranking, worked out once: a night refreshes
    hundreds of thousands of golden records with the same rules (pass the plan to
    :func:`golden_record`)."""
    rules = rules or survivorship()
    plan: list[FieldPlan] = []
    for name in identity_fields():
        rule, order = rules.for_field(name)
        plan.append((name, rule, {system: i for i, system in reversed(list(enumerate(order)))}, len(order)))
    return plan


def golden_record(records: list[dict[str, Any]], rules: Survivorship | None = None, *,
                  plan: list[FieldPlan] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """(golden values, field -> 'source_system/source_key' it came from).

    ``plan`` (from :func:`field_plan`) saves re-reading the rules for each person. A person
    with one record takes every value of it: each rule picks the only candidate."""
    plan = plan or field_plan(rules)
    golden: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if len(records) == 1:
        only = records[0]
        where = None
        for name, _rule, _ranks, _unranked in plan:
            value = only.get(name)
            if value not in (None, ""):
                golden[name] = value
                sources[name] = where = where or f"{only['source_system']}/{only['source_key']}"
        return golden, sources
    for name, rule, ranks, unranked in plan:
        candidates = [r for r in records if r.get(name) not in (None, "")]
        if not candidates:
            continue
        recency = lambda r: r.get("updated_at") or ""  # noqa: E731
        trust = lambda r: ranks.get(r["source_system"], unranked)  # noqa: E731
        if rule == "trust":
            best = min(candidates, key=lambda r: (trust(r), _neg(recency(r))))
        elif rule == "most_recent":
            best = max(candidates, key=lambda r: (recency(r), -trust(r)))
        elif rule == "most_complete":
            best = max(candidates, key=lambda r: (len(str(r[name])), recency(r)))
        else:  # most_frequent
            votes = Counter(r[name] for r in candidates)
            best = min(candidates, key=lambda r: (-votes[r[name]], trust(r), _neg(recency(r))))
        golden[name] = best[name]
        sources[name] = f"{best['source_system']}/{best['source_key']}"
    return golden, sources


def _neg(text: str) -> tuple[int, ...]:
    """Sort key that orders strings descending inside a min()."""
    return tuple(-ord(c) for c in text)
