"""The declarative description of a source: one YAML file per source in ``adapters/``.

    name: revenues                  # also the source_system of its records
    kind: csv                       # an adapter kind (joinedup adapter list)
    description: Council-tax payers from revenues & benefits
    connection_id: revenues_api     # credentials come from Airflow / JOINEDUP_CONN_<ID>, never here
    mapping: revenues.yaml          # a file in mappings/
    schedule: "0 2 * * *"
    extract: changes                # or full: every record every night (HR, social care)
    gone_guard: {max_share: 0.05, min_records: 25}   # full extracts: how many records may vanish at once
    special_category: false         # true for social care: masked for roles without access
    quality: {max_failure_rate: 0.05}
    retries: {attempts: 3, delay_seconds: 60}
    timeout_minutes: 60
    pool: legacy_mainframe          # optional Airflow pool: caps concurrent extracts from one system
    options: {...}                  # what the kind needs (validated by the adapter's Options)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from joinedup.configfile import ConfigError, describe_errors, load_yaml
from joinedup.paths import project_root


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QualitySettings(Strict):
    max_failure_rate: float = Field(0.05, ge=0, le=1, description="Share of a batch that may be quarantined before the source's load stops.")


class GoneGuard(Strict):
    """How many records one full extract may lack before JoinedUp distrusts it (a truncated
    or filtered extract looks exactly like a mass deletion)."""

    max_share: float = Field(0.05, ge=0, le=1, description=(
        "Share of the source's held records one full extract may lack: more, and none is flagged gone "
        "from source (the source's load fails loudly instead)."))
    min_records: int = Field(25, ge=0, description=(
        "A full extract may always lack this many records (a small source's ordinary deletions)."))

    def limit(self, held: int) -> int:
        """How many of ``held`` records one extract may lack."""
        return max(self.min_records, int(self.max_share * held))


class RetrySettings(Strict):
    attempts: int = Field(3, ge=0, le=20)
    delay_seconds: int = Field(60, ge=0, le=3600)


class SourceConfig(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    kind: str
    description: str = ""
    connection_id: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    mapping: str
    schedule: str | None = "0 2 * * *"
    extract: Literal["changes", "full"] = Field("changes", description=(
        "What each delivery holds: `changes` (the records new or changed since the last extract) or "
        "`full` (every record, every night, as an HR or social-care extract). A full extract's records "
        "that are the same as in its last batch are not mapped again: their mapped rows are reused "
        "(every row still passes the quality gate). A record a full extract no longer holds is flagged "
        "gone from source (kept, with its link and history)."))
    gone_guard: GoneGuard = GoneGuard()
    special_category: bool = False
    quality: QualitySettings = QualitySettings()
    retries: RetrySettings = RetrySettings()
    timeout_minutes: int = Field(60, ge=1, le=24 * 60)
    pool: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,256}$", description=(
        "Airflow pool the extract (land) task runs in: caps how many extracts call one shared "
        "legacy system at once. Create it first: `joinedup airflow pools set NAME SLOTS DESCRIPTION`."))
    options: dict[str, Any] = Field(default_factory=dict)
    path: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _known_kind(self) -> "SourceConfig":
        from joinedup.adapters.registry import known_kinds

        if self.kind not in known_kinds():
            raise ValueError(f"unknown adapter kind {self.kind!r}; known: {', '.join(known_kinds())}")
        return self

    def mapping_path(self) -> Path:
        return project_root() / "mappings" / self.mapping


def load_source(path: Path) -> SourceConfig:
    """Load one ``adapters/*.yaml`` file, validating the common keys and the kind's options."""
    from joinedup.adapters.registry import adapter_class

    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, ["the file must be a YAML mapping (key: value lines)"])
    try:
        config = SourceConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, describe_errors(exc, lines)) from None
    try:
        adapter_class(config.kind).Options.model_validate(config.options)
    except ValidationError as exc:
        raise ConfigError(path, describe_errors(exc, lines, prefix=("options",))) from None
    if path.stem != config.name:
        raise ConfigError(path, [f"name {config.name!r} must equal the file name ({path.stem!r})"])
    config.path = path
    return config


def adapters_dir() -> Path:
    return project_root() / "adapters"


def load_sources(folder: Path | None = None) -> list[SourceConfig]:
    """Every source in ``adapters/`` (files starting with '_' are ignored), by name."""
    folder = folder or adapters_dir()
    return [load_source(p) for p in sorted(folder.glob("*.yaml")) if not p.name.startswith("_")]
