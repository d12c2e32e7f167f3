"""The mapping language: ``mappings/<source>.yaml`` says how source fields become canonical ones.

    columns: [customer_ref, first_name, last_name, dob, ...]   # what the source sends (drift check)
    fields:
      source_key:     {from: customer_ref}
      given_name:     {from: first_name, transform: [trim, title_case_name]}
      date_of_birth:  {from: dob, transform: {parse_date: {formats: ["%d/%m/%Y"]}}}
      address_line_1: {from: [house_no, street], join: " "}
      sex:            {constant: U}

``transform`` is a name, a ``{name: {params}}`` mapping, or a list of those, applied in order.
Keys under ``fields`` must be canonical field names; every problem is reported with its line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from joinedup.canonical import person_fields
from joinedup.configfile import load_model
from joinedup.mapping.transforms import TRANSFORMS, get_transform


class TransformStep(BaseModel):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


def _steps(value: Any) -> list[TransformStep]:
    items = value if isinstance(value, list) else [value]
    steps = []
    for item in items:
        if isinstance(item, str):
            steps.append(TransformStep(name=item))
        elif isinstance(item, dict) and len(item) == 1:
            name, params = next(iter(item.items()))
            if params is not None and not isinstance(params, dict):
                raise ValueError(f"parameters of transform {name!r} must be a mapping")
            steps.append(TransformStep(name=name, params=params or {}))
        else:
            raise ValueError("a transform is a name or a single {name: {parameters}} mapping")
    return steps


class FieldRule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: str | list[str] | None = Field(None, alias="from")
    join: str = " "
    constant: str | None = None
    transform: list[TransformStep] = Field(default_factory=list)

    @field_validator("transform", mode="before")
    @classmethod
    def _parse_transform(cls, value: Any) -> Any:
        return [] if value is None else _steps(value)

    @field_validator("transform")
    @classmethod
    def _known_transforms(cls, steps: list[TransformStep]) -> list[TransformStep]:
        for step in steps:
            try:
                get_transform(step.name)
            except KeyError as exc:  # UnknownTransform: its message lists the known names
                raise ValueError(str(exc)) from None
        return steps

    @model_validator(mode="after")
    def _one_origin(self) -> "FieldRule":
        if (self.source is None) == (self.constant is None):
            raise ValueError("give exactly one of 'from' (source column or columns) or 'constant'")
        return self

    def source_columns(self) -> list[str]:
        if self.source is None:
            return []
        return [self.source] if isinstance(self.source, str) else list(self.source)


CanonicalField = Literal[tuple(person_fields())]  # type: ignore[valid-type]


class MappingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    columns: list[str] | None = Field(None, description="Every column the source sends; used to detect schema drift.")
    optional_columns: list[str] = Field(default_factory=list, description="Columns the source may leave out.")
    fields: dict[CanonicalField, FieldRule]  # a key that is no canonical field is reported with the others
    path: Path | None = Field(None, exclude=True)

    @field_validator("fields")
    @classmethod
    def _canonical_fields(cls, fields: dict[str, FieldRule], info: ValidationInfo) -> dict[str, FieldRule]:
        if "source_key" not in fields:
            raise ValueError("source_key must be mapped: it is the record's key in its source system")
        if "source_system" in fields:
            raise ValueError("source_system is set from the adapter's name; do not map it")
        return fields

    def expected_columns(self) -> list[str]:
        if self.columns is not None:
            return list(self.columns)
        seen: dict[str, None] = {}
        for rule in self.fields.values():
            seen.update(dict.fromkeys(rule.source_columns()))
        return list(seen)


def load_mapping(path: Path) -> MappingSpec:
    spec = load_model(path, MappingSpec)
    spec.path = path
    return spec


def known_transforms() -> list[str]:
    return sorted(TRANSFORMS)
