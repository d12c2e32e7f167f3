"""Import Great Expectations once per process, without paying for what the gate never uses.

Every night step runs in a fresh process (an Airflow task, or ``joinedup check``), so the
gate pays GX's import on every batch of a small incremental night. Measured here
(``benchmarks/quality_bench.py --import-only``): ``import great_expectations`` costs about
4.7 s of CPU, and 2.3 s of it is two libraries GX imports at the top of one expectation
module (``expect_column_kl_divergence_to_be_less_than``: Altair for its chart renderer and
SciPy's statistics) that none of our suites use.

So they are imported *lazily* (``importlib.util.LazyLoader``): the module object exists at
once, and its code runs the first time anything touches it. An expectation that does need
them (a council adds a KL-divergence rule to its suite) still works — it just pays for the
import when it runs. Nothing of GX's behaviour changes; every expectation is still
registered and every rule of every suite still runs.

A library some other code already imported is left as it is.
"""
from __future__ import annotations

import importlib.util
import sys
import threading
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

#: Imported by GX at import time, used by no expectation our suites name (see module doc).
LAZY_MODULES = ("altair", "scipy.stats")

_lock = threading.Lock()


class _LazyFinder:
    """A meta-path finder that hands out lazy-loading specs for ``names`` only."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in self.names:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # not installed, or a loader LazyLoader cannot wrap: import it normally
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def great_expectations() -> ModuleType:
    """The ``great_expectations`` module, imported on first call with ``LAZY_MODULES`` lazy."""
    module = sys.modules.get("great_expectations")
    if module is not None:
        return module
    with _lock:
        if "great_expectations" in sys.modules:
            return sys.modules["great_expectations"]
        names = tuple(n for n in LAZY_MODULES if n not in sys.modules)
        finder = _LazyFinder(names)
        sys.meta_path.insert(0, finder)
        try:
            import great_expectations as gx
        finally:
            sys.meta_path.remove(finder)
        return gx
