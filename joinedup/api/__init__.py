"""The citizen lookup API for the CRM front office (``create_api``) and its search-key index
(``refresh_search_keys``, which the merge calls on the master IDs it touched).

Imports are lazy: the store imports ``joinedup.api.models`` to create its tables, and that
must not pull in the web application."""
from __future__ import annotations

from typing import Any

__all__ = ["create_api", "refresh_search_keys", "build_search_keys"]


def __getattr__(name: str) -> Any:
    if name == "create_api":
        from joinedup.api.app import create_api

        return create_api
    if name in ("refresh_search_keys", "build_search_keys"):
        from joinedup.api import search_keys

        return getattr(search_keys, name)
    raise AttributeError(f"module 'joinedup.api' has no attribute {name!r}")
