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


def _trust_rank(order: list[str], system: str) -> int:
    return order.index(system) if system in order else len(order)


def golden_record(records: list[dict[str, Any]], rules: Survivorship | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """(golden values, field -> 'source_system/source_key' it came from)."""
    rules = rules or survivorship()
    golden: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in identity_fields():
        candidates = [r for r in records if r.get(name) not in (None, "")]
        if not candidates:
            continue
        rule, order = rules.for_field(name)
        recency = lambda r: r.get("updated_at") or ""  # noqa: E731
        trust = lambda r: _trust_rank(order, r["source_system"])  # noqa: E731
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
