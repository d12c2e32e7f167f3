"""The Data Docs site builder: GX's own, except that a batch does not write GX's static files
again when the site already holds them, byte for byte.

GX's ``SiteBuilder.build`` copies its static folder (fonts, images, style sheets: 20 files,
4 MB) into the site on every build, and every checked batch builds the site: about 0.04 s of
each check step's 0.13-0.17 s of Data Docs (measured), to write the same bytes again. Here each
file GX would copy is compared with the site's copy first (the same files GX's
``HtmlSiteStore.copy_static_assets`` walks, under the keys it would write them to); when every
one is there and identical, this build skips the copy, and otherwise GX copies them all as it
always does (a new GX version, a damaged or deleted site, a first build). The pages, the index
and everything else are built by GX unchanged. Named in the site's config (``module_name`` /
``class_name``, see ``data_docs._context``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from joinedup.quality.gx_loader import great_expectations

great_expectations()  # GX's own import order: its package first, then its renderer
from great_expectations.data_context.store import html_site_store  # noqa: E402
from great_expectations.render.renderer.site_builder import SiteBuilder  # noqa: E402

_EXCLUDED = (".DS_Store",)  # what copy_static_assets leaves out


def gx_static_dir() -> str:
    """Where ``HtmlSiteStore.copy_static_assets`` reads GX's static files (its default)."""
    return html_site_store.file_relative_path(html_site_store.__file__,
                                              os.path.join("..", "..", "render", "view", "static"))


def _static_files(folder: str) -> list[str]:
    """The files copy_static_assets copies from ``folder``: every file below it, recursively
    (directories followed as ``Path.is_dir`` does), but ``.DS_Store``."""
    found: list[str] = []
    for item in Path(folder).iterdir():
        if item.is_dir():
            found.extend(_static_files(os.path.join(folder, item.name)))
        elif item.name not in _EXCLUDED:
            found.append(os.path.join(folder, item.name))
    return found


def static_assets_current(store: Any) -> bool:
    """Whether the site of ``store`` (an ``HtmlSiteStore``) already holds every static file GX
    would copy into it, with the same bytes. False whenever that cannot be told for sure: GX
    installed in a zip (it unpacks first), a site not on the file system."""
    source = gx_static_dir()
    backend = store.store_backends.get("static_assets")
    base = getattr(backend, "full_base_directory", None)
    if ".zip" in source.lower() or base is None or not hasattr(backend, "_convert_key_to_filepath"):
        return False
    try:
        for name in _static_files(source):
            parts = Path(name).parts
            key = parts[parts.index("static"):]  # the key copy_static_assets writes it under
            target = os.path.join(base, backend._convert_key_to_filepath(key))
            with open(name, "rb") as theirs, open(target, "rb") as ours:
                if theirs.read() != ours.read():
                    return False
    except (OSError, ValueError):
        return False
    return True


def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


class SiteBuilderKeepingAssets(SiteBuilder):
    """GX's ``SiteBuilder``; its build skips copying the static files when the site already
    holds them unchanged (``static_assets_current``)."""

    def build(self, resource_identifiers: Any = None, build_index: bool = True) -> Any:
        if static_assets_current(self.target_store):
            # this build's own store (made by __init__): nothing it would write is missing or different
            self.target_store.copy_static_assets = _nothing
        return super().build(resource_identifiers=resource_identifiers, build_index=build_index)
