"""What a user may see of a record: special-category (social care) records are masked for
users without the social-care permission. A masked record shows neither its values, nor its
key, nor even which system it comes from: being known to social care is itself sensitive.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from joinedup.canonical import identity_fields
from joinedup.mci.store import SourceRecord
from joinedup.steward.users import CurrentUser

RESTRICTED_LABEL = "Restricted record in a special-category system"
RESTRICTED_SOURCE = "special-category system"
# evidence keys that describe a comparison, never a value: all a restricted pair may show
EVIDENCE_SAFE_KEYS = {"field", "label", "level", "comparison", "comparison_level", "match_weight", "weight",
                      "bayes_factor", "m_probability", "u_probability", "rule", "score", "match_probability"}


@dataclass
class RecordView:
    id: int
    master_id: str | None
    restricted: bool
    source_system: str | None = None
    source_key: str | None = None
    link_rule: str | None = None
    link_score: float | None = None
    values: dict[str, Any] = field(default_factory=dict)
    gone_at: datetime | None = None  # when its source system was found no longer to hold it

    @property
    def label(self) -> str:
        return RESTRICTED_LABEL if self.restricted else f"{self.source_system}/{self.source_key}"

    @property
    def name(self) -> str:
        if self.restricted:
            return "restricted"
        parts = [self.values.get("given_name"), self.values.get("family_name")]
        return " ".join(p for p in parts if p) or "(no name)"


def is_restricted(record: SourceRecord, user: CurrentUser) -> bool:
    return bool(record.special_category) and not user.socialcare


def record_view(record: SourceRecord, user: CurrentUser) -> RecordView:
    if is_restricted(record, user):
        return RecordView(id=record.id, master_id=record.master_id, restricted=True)
    return RecordView(id=record.id, master_id=record.master_id, restricted=False, source_system=record.source_system,
                      source_key=record.source_key, link_rule=record.link_rule, link_score=record.link_score,
                      values=dict(record.record or {}), gone_at=record.gone_at)


def golden_view(golden: dict[str, Any], golden_sources: dict[str, str], records: list[SourceRecord],
                user: CurrentUser) -> list[dict[str, Any]]:
    """Rows of (field, value, source, restricted, gone) in canonical order; values that won from a
    restricted record are hidden along with their source. ``gone``: the value comes from a
    record its source no longer holds (no held record has the field)."""
    hidden = {f"{r.source_system}/{r.source_key}" for r in records if is_restricted(r, user)}
    gone = {f"{r.source_system}/{r.source_key}" for r in records if r.gone_at is not None}
    rows = []
    for name in identity_fields():
        if name not in golden:
            continue
        source = golden_sources.get(name)
        restricted = source in hidden
        rows.append({"field": name, "value": None if restricted else golden[name],
                     "source": RESTRICTED_SOURCE if restricted else source, "restricted": restricted,
                     "gone": not restricted and source in gone})
    return rows


def display_name(golden: dict[str, Any], golden_sources: dict[str, str], hidden_sources: set[str]) -> str:
    parts = [golden.get(f) for f in ("given_name", "family_name") if golden_sources.get(f) not in hidden_sources]
    return " ".join(p for p in parts if p) or "(name restricted or missing)"


def safe_evidence(evidence: dict[str, Any], restricted: bool) -> dict[str, Any]:
    """The evidence as stored, or, for a pair with a restricted side, only comparison labels
    and weights (an engineer may one day store compared values there)."""
    if not restricted:
        return evidence or {}
    out: dict[str, Any] = {}
    for key, value in (evidence or {}).items():
        if isinstance(value, list):
            out[key] = [{k: v for k, v in item.items() if k in EVIDENCE_SAFE_KEYS}
                        for item in value if isinstance(item, dict)]
        elif key in EVIDENCE_SAFE_KEYS:
            out[key] = value
    return out
