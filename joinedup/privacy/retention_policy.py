"""The retention periods a council chose, read from ``schemas/retention.yaml``.

Why a file and not constants: retention is a data-protection decision the council's DPO makes
and may change (UK GDPR storage limitation); it belongs with the rest of the configuration,
validated so a mistyped key is refused instead of silently keeping data for ever.
"""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from joinedup.configfile import load_model
from joinedup.paths import project_root


class RetentionPolicy(BaseModel):
    """How many days each kind of held data is kept (see schemas/retention.yaml)."""

    model_config = ConfigDict(extra="forbid")
    landing_days: int = Field(90, ge=1, description="Raw landing pages and manifests of staged batches.")
    drop_files_days: int = Field(30, ge=1, description="Drop-folder files in processed/ and rejected/.")
    quarantine_days: int = Field(180, ge=1, description="Settled (not open) quarantine entries.")
    reports_days: int = Field(365, ge=1, description="Dated match reports under var/reports.")
    audit_log_days: int = Field(2190, ge=1, description="Audit log entries (kept longer than what they describe).")
    gone_from_source_days: int = Field(90, ge=1, description=(
        "Source records their system deleted (gone from a full extract): removed from the index this "
        "many days after, as the source's own retention removed them there."))

    @model_validator(mode="after")
    def _audit_outlives_data(self) -> "RetentionPolicy":
        shortest_needed = max(self.landing_days, self.quarantine_days)
        if self.audit_log_days < shortest_needed:
            raise ValueError(f"audit_log_days ({self.audit_log_days}) must be at least landing_days and "
                             f"quarantine_days ({shortest_needed}): the audit log must outlive what it describes")
        return self


def policy_path() -> Path:
    return project_root() / "schemas" / "retention.yaml"


def load_policy(path: Path | None = None) -> RetentionPolicy:
    """The council's policy; the defaults above when the project has no retention.yaml."""
    path = path or policy_path()
    if not path.exists():
        return RetentionPolicy()
    return load_model(path, RetentionPolicy)


def json_schema() -> str:
    """The JSON Schema of retention.yaml (for editors), as written to schemas/retention.schema.json."""
    return json.dumps(RetentionPolicy.model_json_schema(), indent=2) + "\n"
