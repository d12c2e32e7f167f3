"""The Data Docs index without reading every stored validation back.

GX's index builder (``DefaultSiteIndexBuilder``) lists every validation of the site and, for
each, loads the whole stored result (one JSON file per batch, deserialised through
marshmallow: about 6 ms each, measured) only to learn four small facts: whether it passed,
its batch kwargs and spec, and its asset name. Every batch of every source rebuilds the index,
so that cost grows with the history kept (``JOINEDUP_DATA_DOCS_KEEP`` per source) and is paid
by every night step: about 0.7 s per step once four sources keep 30 nights each.

So when a batch's validation is stored, those facts are written beside it (a few hundred
bytes under ``var/gx/index_facts/``, same folder layout as GX's store), and the index builder
here reads them instead. The page it renders is GX's own, link for link; a validation whose
facts file is missing or unreadable (stored before this existed, or damaged) is loaded the
GX way. Pruning an old validation removes its facts file with it.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from joinedup.quality.gx_loader import great_expectations

log = logging.getLogger(__name__)

great_expectations()  # GX's own import order: its package first, then its renderer
from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult  # noqa: E402
from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder  # noqa: E402

FACTS = ("success", "batch_kwargs", "batch_spec", "asset_name")


def facts_dir(gx_root: Path) -> Path:
    return gx_root / "uncommitted" / "index_facts"


def facts_path(gx_root: Path, key: Any) -> Path:
    """Where a validation's facts live: ``<suite>/<run name>/<run time>/<batch>.json``, like
    GX's own validation store."""
    parts = [str(p) for p in key.to_tuple()]
    return facts_dir(gx_root).joinpath(*parts[:-1], f"{parts[-1]}.json")


def write_facts(gx_root: Path, key: Any, stored_json: str) -> None:
    """Keep the index's facts of one stored validation. ``stored_json`` is the result as GX
    stored it (values already taken out by the gate), so the facts are what GX would read."""
    stored = json.loads(stored_json)
    meta = stored.get("meta") or {}
    batch_definition = meta.get("active_batch_definition")
    asset_name = batch_definition.get("data_asset_name") if isinstance(batch_definition, dict) else None
    facts = {"success": stored.get("success"), "batch_kwargs": meta.get("batch_kwargs", {}),
             "batch_spec": meta.get("batch_spec", {}), "asset_name": asset_name}
    path = facts_path(gx_root, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(facts), encoding="utf-8")
    os.replace(tmp, path)


def remove_facts(gx_root: Path, key: Any) -> None:
    path = facts_path(gx_root, key)
    path.unlink(missing_ok=True)
    for folder in (path.parent, path.parent.parent, path.parent.parent.parent):
        try:
            folder.rmdir()  # only when empty
        except OSError:
            break


def read_facts(gx_root: Path, key: Any) -> dict[str, Any] | None:
    try:
        facts = json.loads(facts_path(gx_root, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(facts, dict) or any(name not in facts for name in FACTS) or not isinstance(facts["success"], bool):
        return None
    return facts


class _FactsFirst:
    """The data context as the index builder sees it: a validation result comes from its
    facts file when there is one (a result with no per-rule rows: the index shows none),
    otherwise from the context's store. Everything else is the context's own."""

    def __init__(self, context: Any, gx_root: Path) -> None:
        self._context = context
        self._gx_root = gx_root
        self.read_from_facts = 0

    def get_validation_result(self, expectation_suite_name: str, run_id: Any = None, batch_identifier: Any = None,
                              validation_results_store_name: str | None = None, failed_only: bool = False) -> Any:
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        if run_id is not None and batch_identifier is not None and not failed_only:
            key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=expectation_suite_name), run_id,
                                             batch_identifier)
            facts = read_facts(self._gx_root, key)
            if facts is not None:
                self.read_from_facts += 1
                meta = {"batch_kwargs": facts["batch_kwargs"], "batch_spec": facts["batch_spec"]}
                if facts["asset_name"] is not None:
                    meta["active_batch_definition"] = {"data_asset_name": facts["asset_name"]}
                return ExpectationSuiteValidationResult(success=facts["success"], results=[],
                                                        suite_name=expectation_suite_name, meta=meta)
        return self._context.get_validation_result(
            expectation_suite_name, run_id=run_id, batch_identifier=batch_identifier,
            validation_results_store_name=validation_results_store_name, failed_only=failed_only)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class FactsIndexBuilder(DefaultSiteIndexBuilder):
    """GX's index builder, reading each validation's facts file instead of the whole result
    (see the module doc). Named in the site's config (``site_index_builder``)."""

    last_read_from_facts = 0  # for tests and the bench: how many links came from facts files

    def _add_validations_to_index_links(self, index_links_dict: Any, validation_and_profiling_result_site_keys: Any) -> None:
        context = self.data_context
        gx_root = Path(context.root_directory)
        facts_first = _FactsFirst(context, gx_root)
        self.data_context = facts_first
        try:
            super()._add_validations_to_index_links(index_links_dict, validation_and_profiling_result_site_keys)
        finally:
            self.data_context = context
        FactsIndexBuilder.last_read_from_facts = facts_first.read_from_facts
