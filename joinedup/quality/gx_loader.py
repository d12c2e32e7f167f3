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

- GX defines some 400 pydantic (v1) model classes at import, and pydantic v1 gives each
  subclass a deep copy of its bases' fields: 0.67 s of the import, measured, nearly all in
  ``copy.deepcopy``'s generic path for ``ModelField`` and ``FieldInfo`` (both plain
  ``__slots__`` classes: no ``__dict__``, no custom state or reduce). While GX is imported,
  those two classes get a ``__deepcopy__`` that does exactly what the generic path does for
  such a class (a new instance, every set slot deep-copied with the same memo) without its
  intermediate tuples and dicts; it is removed once GX is imported. Saves about 0.3-0.4 s.
  ``tests/unit/test_quality_fixed_costs.py`` checks that every GX model's fields come out
  the same as with the generic path.

Nothing of GX's pandas behaviour changes: every expectation is still registered and every
rule of every suite still runs.
"""
from __future__ import annotations

import atexit
import copy
import gc
import importlib.util
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
            with _quick_field_copies():
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


def _slot_copier(cls: type) -> Any:
    """``__deepcopy__`` for a class whose state is its ``__slots__`` only: what
    ``copy.deepcopy``'s generic path does (``cls.__new__``, memo entry, each set slot deep-copied
    and set), without building the intermediate state tuple and dict. Instances of any other
    class (a subclass with a ``__dict__``) take the generic path unchanged."""
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    slots_only = tuple(dict.fromkeys(n for n in names if n not in ("__dict__", "__weakref__")))
    deepcopy = copy.deepcopy

    def __deepcopy__(self: Any, memo: dict[int, Any]) -> Any:  # noqa: N807
        if type(self) is not cls:
            return copy._reconstruct(self, memo, *self.__reduce_ex__(4))  # the generic path
        new = cls.__new__(cls)
        memo[id(self)] = new
        for name in slots_only:
            try:
                value = getattr(self, name)
            except AttributeError:
                continue  # an unset slot stays unset, as in the generic path
            object.__setattr__(new, name, deepcopy(value, memo))
        return new

    return __deepcopy__


def _plain_slots_class(cls: type) -> bool:
    """True when ``copy.deepcopy`` would take its generic path over slots alone for ``cls``."""
    return (all("__dict__" not in k.__dict__ for k in cls.__mro__[:-1])
            and not hasattr(cls, "__deepcopy__") and cls.__reduce_ex__ is object.__reduce_ex__
            and cls.__reduce__ is object.__reduce__ and cls.__getstate__ is object.__getstate__
            and not hasattr(cls, "__setstate__"))


@contextmanager
def _quick_field_copies() -> Iterator[None]:
    """While GX is imported: pydantic v1's ``ModelField`` and ``FieldInfo`` copied by
    ``_slot_copier`` (see the module doc); left as they are if their layout is not the one
    that copier matches (a pydantic upgrade)."""
    try:
        from pydantic.v1.fields import FieldInfo, ModelField
    except ImportError:  # no pydantic v1 here: nothing to speed up
        yield
        return
    patched = [cls for cls in (ModelField, FieldInfo) if _plain_slots_class(cls)]
    for cls in patched:
        cls.__deepcopy__ = _slot_copier(cls)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for cls in patched:
            del cls.__deepcopy__  # type: ignore[attr-defined]
