"""Write JSON Schemas for ``adapters/*.yaml`` and ``mappings/*.yaml`` from the pydantic models,
so an editor (VS Code's YAML extension reads the ``# yaml-language-server: $schema=`` line)
completes and checks them as the engineer types, as dbt does for its YAML.

    python -m joinedup.adapters.jsonschema_export          # writes schemas/adapter.schema.json
                                                            # and schemas/mapping.schema.json

Generated, not hand-written: re-run after changing a model (a test checks they are current).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from joinedup.paths import project_root


def adapter_schema() -> dict[str, Any]:
    """SourceConfig, with ``options`` checked against the chosen kind's Options model."""
    from joinedup.adapters.config import SourceConfig
    from joinedup.adapters.registry import adapter_class, known_kinds

    schema = SourceConfig.model_json_schema()
    schema["properties"].pop("path", None)
    kinds = known_kinds()
    schema["properties"]["kind"] = {"title": "Kind", "type": "string", "enum": kinds,
                                    "description": "The adapter kind (joinedup adapter list)."}
    defs = schema.setdefault("$defs", {})
    branches = []
    for kind in kinds:
        options = adapter_class(kind).Options.model_json_schema(ref_template="#/$defs/{model}")
        for name, sub in options.pop("$defs", {}).items():
            defs.setdefault(name, sub)
        name = f"{kind}_options"
        defs[name] = options
        branches.append({"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                         "then": {"properties": {"options": {"$ref": f"#/$defs/{name}"}}}})
    schema["allOf"] = branches
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "JoinedUp source (adapters/*.yaml)"
    return schema


def mapping_schema() -> dict[str, Any]:
    """MappingSpec, with ``transform`` in the short forms the YAML uses."""
    from joinedup.canonical import person_fields
    from joinedup.mapping.spec import MappingSpec, known_transforms

    schema = MappingSpec.model_json_schema(by_alias=True)
    schema["properties"].pop("path", None)
    names = known_transforms()
    step = {"anyOf": [
        {"type": "string", "enum": names},
        {"type": "object", "minProperties": 1, "maxProperties": 1,
         "propertyNames": {"enum": names}, "additionalProperties": {"type": ["object", "null"]}},
    ]}
    rule = schema["$defs"]["FieldRule"]
    rule["properties"]["transform"] = {"description": "A transform name, {name: {parameters}}, or a list of those.",
                                       "anyOf": [step, {"type": "array", "items": step}]}
    schema["$defs"].pop("TransformStep", None)
    fields = [f for f in person_fields() if f != "source_system"]
    schema["properties"]["fields"]["propertyNames"] = {"enum": fields}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "JoinedUp mapping (mappings/*.yaml)"
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_all(folder: Path | None = None) -> list[Path]:
    folder = folder or project_root() / "schemas"
    out = []
    for name, schema in (("adapter.schema.json", adapter_schema()), ("mapping.schema.json", mapping_schema())):
        path = folder / name
        path.write_text(render(schema), encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":
    for written in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(f"wrote {written}")
