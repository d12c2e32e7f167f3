"""Import Great Expectations once per process, without paying for what the gate never uses.

Every night step runs in a fresh process (an Airflow task, or ``joinedup check``), so the
gate pays GX's import on every batch of a small incremental night: after a first night, the
import is most of a check step's own time (profiled, session 4: about 2.4 s of CPU of a
check step's 3 s for a batch of a dozen rows; validating the batch takes 0.25 s and its
Data Docs page 0.2 s). Measured here (``benchmarks/quality_bench.py --import-only``):

- Two libraries GX imports at the top of one expectation module
  (``expect_column_kl_divergence_to_be_less_than``: Altair for its chart renderer and SciPy's
  statistics), used by none of our suites, cost 2.3 s of a plain ``import great_expectations``.
  They are imported *lazily* (``importlib.util.LazyLoader``): the module object exists at
  once, and its code runs the first time anything touches it. An expectation that does need
  them (a council adds a KL-divergence rule to its suite) still works; it pays for the import
  when it runs.
- PySpark (our ``test`` extra, for the Splink-on-Spark test; not installed in production) is
  imported by GX's Spark compatibility shim, with ``pyspark.ml`` and gRPC: about 0.4 s. The
  gate validates pandas frames only, so GX is imported *as if PySpark were absent*, which is
  exactly how GX runs in production, where it is: GX catches the ImportError and marks Spark
  "not installed". Only GX's view changes: the finder is removed once GX is imported, and
  ``import pyspark`` anywhere else works as before. A PySpark some other code already
  imported is left as it is (GX then sees it).

- Python's cyclic garbage collector runs its full (oldest-generation) pass over every object
  alive, and GX's import leaves about 270,000 of them: two or three full passes during the
  import and one or two in the batch's validation after it cost 0.4-0.6 s per check step
  (profiled: 0.58 s of GC in a check step of a 12-row batch). So the collector is paused
  while GX is imported (an import makes next to no garbage), and what the import built is
  then moved out of its sight (``gc.freeze()``: those objects are still freed the moment
  nothing refers to them; only reference cycles among them would wait for ``gc.unfreeze()``,
  done at exit so extension modules finalise cleanly). In a long-lived process this happens
  once, with GX's first import.

Nothing of GX's pandas behaviour changes: every expectation is still registered and every
rule of every suite still runs.
"""
from __future__ import annotations

import atexit
import gc
import importlib.util
import sys
import threading
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

#: Imported by GX at import time, used by no expectation our suites name (see module doc).
LAZY_MODULES = ("altair", "scipy.stats")
#: Imported by GX only for a backend the gate never uses; GX runs without them (see above).
HIDDEN_FROM_GX = ("pyspark",)

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


class _HidingFinder:
    """A meta-path finder under which ``names`` (and their submodules) look not installed."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (hidden while Great Expectations is "
                                      "imported: the quality gate does not use it)", name=fullname)
        return None


def great_expectations() -> ModuleType:
    """The ``great_expectations`` module, imported on first call with ``LAZY_MODULES`` lazy
    and ``HIDDEN_FROM_GX`` (unless already imported) out of its sight."""
    module = sys.modules.get("great_expectations")
    if module is not None:
        return module
    with _lock:
        if "great_expectations" in sys.modules:
            return sys.modules["great_expectations"]
        finders = [
            _HidingFinder(tuple(n for n in HIDDEN_FROM_GX if n not in sys.modules)),
            _LazyFinder(tuple(n for n in LAZY_MODULES if n not in sys.modules)),
        ]
        sys.meta_path[:0] = finders
        collecting = gc.isenabled()
        gc.disable()
        try:
            import great_expectations as gx
        finally:
            for finder in finders:
                sys.meta_path.remove(finder)
            if collecting:
                gc.enable()
        _freeze_once()
        return gx


_frozen = False


def _freeze_once() -> None:
    """Move what is alive now (GX's modules, classes and registries) out of the collector's
    full passes, once per process; undone at exit (see the module doc)."""
    global _frozen
    if _frozen:
        return
    gc.freeze()
    atexit.register(gc.unfreeze)
    _frozen = True
