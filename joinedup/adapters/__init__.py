"""The adapter framework: extract raw records from a council's systems, page by page."""
from joinedup.adapters.base import (
    Adapter,
    FatalSourceError,
    Health,
    Page,
    RetriableSourceError,
    SourceError,
)
from joinedup.adapters.config import SourceConfig, load_source, load_sources
from joinedup.adapters.registry import adapter_class, build_adapter, known_kinds

__all__ = [
    "Adapter",
    "FatalSourceError",
    "Health",
    "Page",
    "RetriableSourceError",
    "SourceConfig",
    "SourceError",
    "adapter_class",
    "build_adapter",
    "known_kinds",
    "load_source",
    "load_sources",
]
