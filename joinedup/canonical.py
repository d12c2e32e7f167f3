"""The canonical person model, read once from ``schemas/canonical_person.schema.json``.

Mapping, the quality gate, staging and the MCI all take their field list from here, so the
model is written down in exactly one place.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from joinedup.paths import project_root

SCHEMA_FILE = "canonical_person.schema.json"


@lru_cache(maxsize=1)
def person_schema() -> dict[str, Any]:
    """The JSON Schema of a canonical person record."""
    return json.loads(schema_path().read_text(encoding="utf-8"))


def person_fields() -> list[str]:
    """Canonical field names, in schema order (the column order of canonical CSVs)."""
    return list(person_schema()["properties"])


def identity_fields() -> list[str]:
    """Fields that describe the person (everything but the record's bookkeeping)."""
    return [f for f in person_fields() if f not in ("source_system", "source_key", "updated_at")]


def schema_path() -> Path:
    return project_root() / "schemas" / SCHEMA_FILE
