"""The editor schemas: generated from the models, current, and they accept the council's files."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from joinedup.adapters.jsonschema_export import adapter_schema, mapping_schema, render

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name, build", [("adapter.schema.json", adapter_schema), ("mapping.schema.json", mapping_schema)])
def test_checked_in_schema_is_current(name, build) -> None:
    assert (REPO / "schemas" / name).read_text(encoding="utf-8") == render(build()), (
        f"schemas/{name} is stale: run python -m joinedup.adapters.jsonschema_export")


@pytest.mark.parametrize("path", sorted((REPO / "adapters").glob("*.yaml")), ids=lambda p: p.name)
def test_every_source_validates(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), json.loads(render(adapter_schema())))


@pytest.mark.parametrize("path", sorted((REPO / "mappings").glob("*.yaml")), ids=lambda p: p.name)
def test_every_mapping_validates(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), mapping_schema())


def test_schema_catches_what_the_loader_catches() -> None:
    schema = adapter_schema()
    good = yaml.safe_load((REPO / "adapters" / "hr.yaml").read_text(encoding="utf-8"))
    typo = {**good, "options": {**good["options"], "drop_fodler": "x"}}
    with pytest.raises(jsonschema.ValidationError, match="drop_fodler"):
        jsonschema.validate(typo, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "kind": "ftp"}, schema)
    with pytest.raises(jsonschema.ValidationError, match="parse_nin"):
        jsonschema.validate({"fields": {"source_key": {"from": "ID", "transform": "parse_nin"}}}, mapping_schema())
