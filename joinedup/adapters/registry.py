"""Adapter kinds: the built-in ones plus any a package registers under the entry point group
``joinedup.adapters`` (``[project.entry-points."joinedup.adapters"] mykind = "pkg.mod:Class"``),
so a council's own adapter plugs in without editing the engine."""
from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joinedup.adapters.base import Adapter
    from joinedup.adapters.config import SourceConfig

ENTRY_POINT_GROUP = "joinedup.adapters"

# Built-in kinds, by import path (imported only when used).
BUILT_IN: dict[str, str] = {
    "csv": "joinedup.adapters.files:CsvAdapter",
    "rest": "joinedup.adapters.rest:RestAdapter",
    "soap": "joinedup.adapters.soap:SoapAdapter",
    "xml": "joinedup.adapters.xml_file:XmlFileAdapter",
    "fixed_width": "joinedup.adapters.fixed_width:FixedWidthAdapter",
}


@lru_cache(maxsize=1)
def _kinds() -> dict[str, str]:
    kinds = dict(BUILT_IN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        kinds.setdefault(ep.name, ep.value)
    return kinds


def known_kinds() -> list[str]:
    return sorted(_kinds())


def adapter_class(kind: str) -> type[Any]:
    from importlib import import_module

    try:
        target = _kinds()[kind]
    except KeyError:
        raise ValueError(f"unknown adapter kind {kind!r}; known: {', '.join(known_kinds())}") from None
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def build_adapter(config: SourceConfig) -> Adapter:
    cls = adapter_class(config.kind)
    return cls(config, cls.Options.model_validate(config.options))
