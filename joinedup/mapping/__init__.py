"""Mapping: source fields -> the canonical person model, declared in ``mappings/*.yaml``."""
