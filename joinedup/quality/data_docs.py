"""GX Data Docs for every validated batch: GX's own HTML site under ``var/reports/data_docs/``.

The gate validates in an ephemeral context (fast, nothing on disk). Afterwards its result,
with every value taken out (counts only: a regex rule's "unexpected values" would be NI
numbers and postcodes), is stored in a small file-backed GX context under ``var/gx/`` and
GX's site builder renders that one validation page, the suite's page and the index. So the
site grows by one page per batch and is never rebuilt whole; the index reads each validation's
small facts file, not the whole stored result (``data_docs_index``), and GX's static files are
written only when the site does not already hold them (``data_docs_site``). GX's page templates are compiled
once and kept under ``var/cache/gx_templates`` for the next processes (see
``_SharedTemplateCache``).

Data Docs are a report: if building them fails, the night goes on (a warning names the
source and batch). ``JOINEDUP_DATA_DOCS=off`` skips them (say on a machine short of time).
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from joinedup.landing import safe_run_id
from joinedup.quality.gx_loader import great_expectations
from joinedup.paths import reports_dir, var_dir

log = logging.getLogger(__name__)

SITE = "joinedup_data_docs"
KEEP_DEFAULT = 30  # validations kept per source suite: GX's index reads every stored one


def keep_per_suite() -> int:
    """How many validations per source the site keeps (``JOINEDUP_DATA_DOCS_KEEP``): GX's
    index builder loads every stored result, so an unbounded store slows every night."""
    try:
        return max(1, int(os.environ.get("JOINEDUP_DATA_DOCS_KEEP", KEEP_DEFAULT)))
    except ValueError:
        return KEEP_DEFAULT


def data_docs_dir() -> Path:
    return reports_dir() / "data_docs"


def data_docs_index() -> Path | None:
    """The site's index.html (every validated batch, newest first), or None before the first."""
    index = data_docs_dir() / "index.html"
    return index if index.exists() else None


def enabled() -> bool:
    return os.environ.get("JOINEDUP_DATA_DOCS", "on").strip().lower() not in ("off", "0", "false", "no")


class _SharedTemplateCache:
    """GX's Data Docs views each build their own Jinja environment, so every page recompiles
    the same ~30 templates: two thirds of a page's build time, measured, and paid again by
    every night step (each is a fresh process). Jinja's bytecode cache hook, installed on every
    view, compiles each template once: kept in memory for this process and on disk under
    ``var/cache/gx_templates`` for the next ones. Jinja checks each entry against its
    template's source and its own Python version, so a GX or Python upgrade recompiles."""

    def __init__(self) -> None:
        self.cache: Any = None
        self.installed = False

    def install(self, folder: Callable[[], Path | None]) -> None:
        if self.installed:
            return
        from great_expectations.render.view.view import DefaultJinjaView

        self.cache = _template_bytecode(folder)
        original = DefaultJinjaView.__init__
        cache = self.cache

        def init(view: Any, *args: Any, **kwargs: Any) -> None:
            original(view, *args, **kwargs)
            env = getattr(view, "env", None)
            if env is not None and env.bytecode_cache is None:
                env.bytecode_cache = cache

        DefaultJinjaView.__init__ = init  # type: ignore[method-assign]
        self.installed = True


def template_cache_dir() -> Path:
    """Where compiled Data Docs templates are kept between processes."""
    return var_dir() / "cache" / "gx_templates"


def _template_bytecode(folder: Callable[[], Path | None]) -> Any:
    """A Jinja bytecode cache: memory first, then the folder ``folder()`` names at the time
    (None: memory only; the project's var/ can change between tests of one process). Files are
    written to a temporary name and renamed, so a parallel step never reads half a file."""
    import jinja2

    class _MemoryThenDisk(jinja2.BytecodeCache):
        def __init__(self) -> None:
            self.store: dict[str, bytes] = {}

        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            if bucket.key in self.store:
                bucket.bytecode_from_string(self.store[bucket.key])
                return
            where = folder()
            if where is None:
                return
            try:
                data = (where / f"{bucket.key}.jinja").read_bytes()
                bucket.bytecode_from_string(data)  # a stale file (other source, Python) leaves it empty
            except (OSError, ValueError, EOFError, TypeError):
                bucket.reset()
                return
            if bucket.code is not None:
                self.store[bucket.key] = data

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            data = bucket.bytecode_to_string()
            self.store[bucket.key] = data
            where = folder()
            if where is None:
                return
            try:
                where.mkdir(parents=True, exist_ok=True)
                tmp = where / f"{bucket.key}.{os.getpid()}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, where / f"{bucket.key}.jinja")
            except OSError as exc:  # a cache: the page is built all the same
                log.debug("template cache not written (%s)", type(exc).__name__)

    return _MemoryThenDisk()


_templates = _SharedTemplateCache()


@lru_cache(maxsize=4)
def _context(var: str, site_dir: str) -> Any:
    """A file-backed GX context under ``<var>/gx`` whose one Data Docs site is ``site_dir``."""
    gx = great_expectations()
    _templates.install(template_cache_dir)
    context = gx.get_context(mode="file", project_root_dir=var)
    site = {
        # GX's site builder, not writing its static files again when the site holds them (data_docs_site)
        "module_name": "joinedup.quality.data_docs_site",
        "class_name": "SiteBuilderKeepingAssets",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": site_dir},
        # GX's index builder, reading each validation's small facts file, not the whole result
        "site_index_builder": {"module_name": "joinedup.quality.data_docs_index", "class_name": "FactsIndexBuilder"},
    }
    sites = context.list_data_docs_sites()
    for name in list(sites):
        if name != SITE:
            context.delete_data_docs_site(name)
    if SITE not in sites:
        context.add_data_docs_site(SITE, site)
    elif sites[SITE] != site:
        context.update_data_docs_site(SITE, site)
    return context


def publish(validation: Any, source_system: str, batch_run_id: str) -> Path | None:
    """Add one batch's validation (a counts-only GX result from the gate) to the site;
    returns the page's path, or None when Data Docs are off or there was nothing validated."""
    if validation is None or not enabled():
        return None
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.core.run_identifier import RunIdentifier

    from joinedup.quality.data_docs_index import write_facts
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    site_dir = data_docs_dir()
    context = _context(str(var_dir()), str(site_dir))
    suite_name = validation.suite_name
    suite = ExpectationSuite(name=suite_name)
    for res in validation.results:
        suite.add_expectation_configuration(res.expectation_config)
    context.suites.add_or_update(suite)
    run_time = datetime.now(timezone.utc)
    run_id = RunIdentifier(run_name=safe_run_id(batch_run_id), run_time=run_time)
    validation.meta["run_id"] = run_id
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=run_id,
        batch_identifier=f"{source_system}-{safe_run_id(batch_run_id)}",
    )
    store = context.validation_results_store
    store.set(key, validation)
    write_facts(Path(context.root_directory), key, store.store_backend.get(key.to_tuple()))
    _prune(context, suite_name, site_dir)
    context.build_data_docs(site_names=[SITE], resource_identifiers=[key, ExpectationSuiteIdentifier(name=suite_name)])
    pages = sorted((site_dir / "validations" / suite_name / safe_run_id(batch_run_id)).rglob("*.html"))
    return pages[-1] if pages else data_docs_index()


def _prune(context: Any, suite_name: str, site_dir: Path) -> None:
    """Drop the oldest validations of a suite beyond ``keep_per_suite()``, pages and index
    facts included."""
    from joinedup.quality.data_docs_index import remove_facts

    store = context.validation_results_store
    keys = [k for k in store.list_keys() if k.expectation_suite_identifier.name == suite_name]
    keys.sort(key=lambda k: k.run_id.run_time)
    for old in keys[: max(0, len(keys) - keep_per_suite())]:
        store.remove_key(old)
        remove_facts(Path(context.root_directory), old)
        folder = site_dir / "validations" / suite_name / old.run_id.run_name
        page = folder / old.run_id.run_time.strftime("%Y%m%dT%H%M%S.%fZ") / f"{old.batch_identifier}.html"
        page.unlink(missing_ok=True)
        for empty in (page.parent, folder):
            if empty.is_dir() and not any(empty.iterdir()):
                empty.rmdir()


def publish_quietly(validation: Any, source_system: str, batch_run_id: str) -> str | None:
    """``publish``, but a failure is a warning, not a failed night. Returns the page's path
    relative to ``var/reports`` (for the run's figures), or None."""
    try:
        page = publish(validation, source_system, batch_run_id)
    except Exception as exc:  # noqa: BLE001 - a report must not stop the load
        log.warning("Data Docs not built for source %s, batch %s: %s", source_system, batch_run_id, type(exc).__name__)
        return None
    if page is None:
        return None
    try:
        return str(page.relative_to(reports_dir()))
    except ValueError:
        return str(page)
