"""What keeps the gate's fixed cost per batch down, without weakening it: GX imported with
Altair and SciPy's statistics lazy (still usable), one validation definition per source and
process (rebuilt when the suite changes; every rule still runs on every batch; no batch's
values kept in memory), and the Data Docs templates compiled once for every later process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.test_quality_gate import _housing_batch, _tenant

REPO = Path(__file__).resolve().parents[2]

_LAZY_PROBE = """
import sys
from joinedup.quality.gx_loader import great_expectations

gx = great_expectations()
assert gx.__name__ == "great_expectations" and hasattr(gx, "ValidationDefinition")
lazy = {name: type(sys.modules[name]).__name__ for name in ("altair", "scipy.stats")}
assert lazy == {"altair": "_LazyModule", "scipy.stats": "_LazyModule"}, lazy
assert great_expectations() is gx
# A lazy module is the real one the moment it is used (a KL-divergence rule would use both).
from scipy import stats
assert abs(stats.norm.cdf(0.0) - 0.5) < 1e-12
import altair
assert altair.Chart is not None and type(sys.modules["altair"]).__name__ == "module"
print("ok")
"""


def run_probe(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``source`` run as a script in a fresh interpreter (a file, not -c: pyspark's doctest
    guard exits a -c process)."""
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    return subprocess.run([sys.executable, str(probe), *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_gx_is_imported_with_altair_and_scipy_stats_lazy_and_both_still_work(tmp_path: Path) -> None:
    done = run_probe(tmp_path, _LAZY_PROBE)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_an_expectation_using_scipy_still_runs_after_the_lazy_import(project: Path) -> None:
    import pandas as pd

    from joinedup.quality.gx_loader import great_expectations

    gx = great_expectations()
    context = gx.get_context(mode="ephemeral")
    batch = context.data_sources.add_pandas("p").add_dataframe_asset("a").add_batch_definition_whole_dataframe("w")
    suite = context.suites.add(gx.ExpectationSuite(name="kl"))
    suite.add_expectation(gx.expectations.ExpectColumnKLDivergenceToBeLessThan(
        column="x", partition_object={"values": [1, 2], "weights": [0.5, 0.5]}, threshold=0.1))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="kl", data=batch, suite=suite))
    result = definition.run(batch_parameters={"dataframe": pd.DataFrame({"x": [1, 2, 1, 2]})})
    assert result.results[0].exception_info.get("raised_exception") is False
    assert result.success


def _canonical(rows: list[dict]) -> object:
    from joinedup.adapters.config import adapters_dir, load_source
    from joinedup.mapping.engine import map_records
    from joinedup.mapping.spec import load_mapping

    config = load_source(adapters_dir() / "housing.yaml")
    return map_records(rows, load_mapping(config.mapping_path()), "housing")


def test_one_definition_per_source_and_process_still_checks_every_batch(project: Path) -> None:
    from joinedup.quality import gate
    from joinedup.quality.data_docs import publish

    first = gate.validate_batch(_canonical(_housing_batch()), "housing", suite="housing", run_name="night-1")
    prepared = gate._prepared[("housing", "housing")]
    publish(first.validation, "housing", "night-1")  # a file-backed GX context now exists in this process
    clean = [_tenant(i) for i in range(1, 6)]
    clean[2]["NINumber"] = "QQ123456C"
    second = gate.validate_batch(_canonical(clean), "housing", suite="housing", run_name="night-2")
    assert gate._prepared[("housing", "housing")] is prepared  # built once
    assert second.by_rule == {"ni_number_valid": 1} and second.failed_positions == [2]
    assert len(second.validation.results) == len(first.validation.results) == len(gate.merged_expectations("housing", "housing"))
    # No batch's full result (values included) is kept by the reused context, nor stored on disk.
    assert prepared.context.validation_results_store.list_keys() == []
    stored = [p.read_text(encoding="utf-8") for p in (project / "var" / "gx").rglob("*.json")]
    assert stored and not any("QQ123456C" in text or "XYZ" in text for text in stored)


def test_a_changed_suite_file_gets_a_new_definition(project: Path) -> None:
    from joinedup.quality import gate

    gate.validate_batch(_canonical([_tenant(1)]), "housing", suite="housing")
    before = gate._prepared[("housing", "housing")]
    path = project / "schemas" / "expectations" / "housing.json"
    suite = json.loads(path.read_text(encoding="utf-8"))
    suite["expectations"].append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "email"},
                                  "meta": {"rule": "housing_email_required", "field": "email", "why": "test"}})
    path.write_text(json.dumps(suite), encoding="utf-8")
    gate._suite_expectations.cache_clear()
    result = gate.validate_batch(_canonical([_tenant(1)]), "housing", suite="housing")
    assert gate._prepared[("housing", "housing")] is not before
    assert result.by_rule == {"housing_email_required": 1}


def test_compiled_templates_are_reused_by_a_later_process_and_a_bad_file_is_ignored(tmp_path: Path) -> None:
    import jinja2

    from joinedup.quality.data_docs import _template_bytecode

    compiled: list[str] = []

    class Counting(jinja2.Environment):
        def _compile(self, source: str, filename: str) -> object:
            compiled.append(filename)
            return super()._compile(source, filename)

    folder = tmp_path / "cache"
    loader = jinja2.DictLoader({"page.html": "<p>{{ rows }} rows</p>"})
    first = Counting(loader=loader, bytecode_cache=_template_bytecode(lambda: folder))
    assert first.get_template("page.html").render(rows=3) == "<p>3 rows</p>"
    assert len(compiled) == 1 and len(list(folder.glob("*.jinja"))) == 1
    # A new cache (as in the next night step's process) loads it from disk: no compilation.
    later = Counting(loader=loader, bytecode_cache=_template_bytecode(lambda: folder))
    assert later.get_template("page.html").render(rows=4) == "<p>4 rows</p>"
    assert len(compiled) == 1
    # A damaged file costs a compilation, never a failed page.
    for path in folder.glob("*.jinja"):
        path.write_bytes(b"not bytecode")
    damaged = Counting(loader=loader, bytecode_cache=_template_bytecode(lambda: folder))
    assert damaged.get_template("page.html").render(rows=5) == "<p>5 rows</p>"
    assert len(compiled) == 2


_SPARK_PROBE = """
import sys
from joinedup.quality.gx_loader import great_expectations

gx = great_expectations()
from great_expectations.compatibility import pyspark as gx_spark
assert not gx_spark.pyspark, "GX saw PySpark"
assert "pyspark" not in sys.modules and "pyspark.ml" not in sys.modules
# Only GX's view changed: PySpark itself still imports afterwards (the Spark test needs it).
import pyspark
assert pyspark.__version__
print("ok")
"""


def test_gx_is_imported_as_if_pyspark_were_absent_and_pyspark_still_imports_after(tmp_path: Path) -> None:
    done = run_probe(tmp_path, _SPARK_PROBE)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def _index_links(html: str) -> list[str]:
    """The validations the index lists (GX writes them into the page's table data)."""
    import re

    return re.findall(r"'run_name': '([^']+)'", html)


def _undated(html: str) -> str:
    """The page without the build time GX stamps on its logo's address."""
    import re

    return re.sub(r"\?d=\d{8}T\d{6}\.\d+Z", "", html)


def test_the_data_docs_index_reads_facts_files_and_renders_what_gx_would(project: Path) -> None:
    """The index is built from each validation's facts file, not by loading every stored
    result; it lists the same validations, with the same pass/fail, as GX's own builder."""
    from joinedup.quality import gate
    from joinedup.quality.data_docs import SITE, _context, data_docs_dir, publish
    from joinedup.quality.data_docs_index import FactsIndexBuilder, facts_dir
    from joinedup.paths import var_dir

    clean = gate.validate_batch(_canonical([_tenant(i) for i in range(1, 4)]), "housing", suite="housing")
    broken = gate.validate_batch(_canonical(_housing_batch()), "housing", suite="housing")
    assert clean.validation.success and not broken.validation.success
    for night, result in enumerate([clean, broken, clean]):
        publish(result.validation, "housing", f"night-{night}")
    assert FactsIndexBuilder.last_read_from_facts == 3  # every link of the index came from a facts file
    ours = (data_docs_dir() / "index.html").read_text(encoding="utf-8")
    facts = sorted(facts_dir(var_dir() / "gx").rglob("*.json"))
    assert len(facts) == 3
    assert not any("QQ123456C" in p.read_text(encoding="utf-8") for p in facts)
    # Without the facts files the builder loads every stored result, the way GX does: same page.
    for path in facts:
        path.unlink()
    context = _context(str(var_dir()), str(data_docs_dir()))
    context.build_data_docs(site_names=[SITE])
    assert FactsIndexBuilder.last_read_from_facts == 0
    theirs = (data_docs_dir() / "index.html").read_text(encoding="utf-8")
    assert sorted(_index_links(ours)) == ["night-0", "night-1", "night-2"]
    assert ours.count("ge-failed-icon") == 1 and ours.count("ge-success-icon") == 2
    assert _undated(ours) == _undated(theirs)


def test_pruned_validations_take_their_facts_files_with_them(project: Path, monkeypatch) -> None:  # noqa: ANN001
    from joinedup.quality import gate
    from joinedup.quality.data_docs import data_docs_dir, publish
    from joinedup.quality.data_docs_index import facts_dir
    from joinedup.paths import var_dir

    monkeypatch.setenv("JOINEDUP_DATA_DOCS_KEEP", "2")
    result = gate.validate_batch(_canonical([_tenant(1)]), "housing", suite="housing")
    for night in range(4):
        publish(result.validation, "housing", f"night-{night}")
    facts = sorted(facts_dir(var_dir() / "gx").rglob("*.json"))
    assert [p.parts[-3] for p in facts] == ["night-2", "night-3"]
    assert sorted(_index_links((data_docs_dir() / "index.html").read_text(encoding="utf-8"))) == ["night-2", "night-3"]


_GC_PROBE = """
import gc
import joinedup.pipeline  # what a night step has imported before the gate
from joinedup.quality.gx_loader import great_expectations

before = gc.get_freeze_count()
gx = great_expectations()
frozen = gc.get_freeze_count()
assert gc.isenabled(), "the collector must run again after the import"
assert frozen > 100_000 and frozen > before, (before, frozen)
assert great_expectations() is gx and gc.get_freeze_count() == frozen  # once per process
# Frozen objects are still freed by reference counting, and new garbage cycles are collected.
class Node:
    pass
a, b = Node(), Node()
a.other, b.other = b, a
del a, b
assert gc.collect() >= 2
print("ok")
"""


def test_gx_import_runs_without_the_collector_and_is_then_frozen_out_of_its_full_passes(tmp_path: Path) -> None:
    done = run_probe(tmp_path, _GC_PROBE)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
    assert "leaked" not in done.stderr  # unfrozen at exit: extension modules finalise cleanly


_FIELDS_PROBE = """
import contextlib, json, re, sys
import joinedup.quality.gx_loader as loader

if sys.argv[1] == "generic":  # copy.deepcopy's own path, for comparison
    loader._quick_field_copies = contextlib.nullcontext
loader.great_expectations()
from pydantic.v1 import BaseModel
from pydantic.v1.fields import FieldInfo, ModelField

assert not hasattr(ModelField, "__deepcopy__") and not hasattr(FieldInfo, "__deepcopy__")  # removed after the import
assert loader._plain_slots_class(ModelField) and loader._plain_slots_class(FieldInfo)  # so the quick copies were used


def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def plain(value):
    return re.sub(r"0x[0-9a-f]+", "0x", repr(value))


def describe(field):
    return [field.name, plain(field), plain(field.field_info), field.alias, field.required, plain(field.default),
            field.shape, field.allow_none, sorted(field.class_validators),
            [getattr(v, "__qualname__", plain(v)) for v in field.validators or []],
            [describe(sub) for sub in field.sub_fields or []]]


models, shared = {}, 0
for cls in subclasses(BaseModel):
    if cls.__module__.startswith("great_expectations"):
        models[f"{cls.__module__}.{cls.__qualname__}"] = [describe(f) for f in cls.__fields__.values()]
        for base in cls.__mro__[1:]:
            for name, field in getattr(base, "__fields__", {}).items():
                shared += cls.__fields__.get(name) is field or cls.__fields__.get(name) is not None and cls.__fields__[name].field_info is field.field_info
print(json.dumps({"models": models, "shared": shared}, sort_keys=True, default=plain))
"""


def test_gx_models_get_the_same_fields_with_the_quick_copies_as_with_copy_deepcopy(tmp_path: Path) -> None:
    """Every pydantic model GX defines has the same fields (types, defaults, validators, field
    info, sub-fields) whichever way the bases' fields were copied, and shares the same field
    objects with its bases (a few, where pydantic itself re-uses them) as with copy.deepcopy."""
    out = {}
    for how in ("quick", "generic"):
        done = run_probe(tmp_path, _FIELDS_PROBE, how)
        assert done.returncode == 0, done.stderr[-2000:]
        out[how] = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(out["quick"]["models"]) > 200
    assert out["quick"]["shared"] == out["generic"]["shared"], (out["quick"]["shared"], out["generic"]["shared"])
    assert out["quick"]["models"] == out["generic"]["models"]


def _site_files(site: Path) -> dict[str, bytes]:
    """Every file of a Data Docs site, pages without the build time GX stamps into them."""
    out = {}
    for path in sorted(p for p in site.rglob("*") if p.is_file()):
        data = path.read_bytes()
        out[str(path.relative_to(site))] = _undated(data.decode("utf-8")).encode() if path.suffix == ".html" else data
    return out


def test_the_site_keeps_gx_static_files_and_writes_them_only_when_missing_or_changed(project: Path, monkeypatch) -> None:  # noqa: ANN001
    """Each batch's build leaves the site as GX's own builder would (every page and static
    file the same), but writes GX's static files only when the site does not hold them byte
    for byte: a deleted or altered one is written again."""
    from great_expectations.data_context.store.html_site_store import HtmlSiteStore

    from joinedup.paths import var_dir
    from joinedup.quality import gate
    from joinedup.quality.data_docs import SITE, _context, data_docs_dir, publish
    from joinedup.quality.data_docs_site import _static_files, gx_static_dir

    copies = []
    original = HtmlSiteStore.copy_static_assets
    def counted(self, *args):  # noqa: ANN001, ANN202 - a top-level call (it recurses into folders with an argument)
        copies.extend([] if args else [1])
        return original(self, *args)

    monkeypatch.setattr(HtmlSiteStore, "copy_static_assets", counted)
    result = gate.validate_batch(_canonical([_tenant(1), _tenant(2)]), "housing", suite="housing")
    publish(result.validation, "housing", "night-0")
    assert len(copies) == 1  # a new site: GX copies its static files
    static = data_docs_dir() / "static"
    gx_files = {str(Path(p).relative_to(Path(gx_static_dir()).parent)): Path(p).read_bytes()
                for p in _static_files(gx_static_dir())}
    assert len(gx_files) > 10
    assert {k: v for k, v in _site_files(data_docs_dir()).items() if k.startswith("static")} == gx_files
    publish(result.validation, "housing", "night-1")
    assert len(copies) == 1  # the site holds them: not written again
    css = next(static.rglob("*.css"))
    css.write_text("tampered", encoding="utf-8")
    publish(result.validation, "housing", "night-2")
    assert len(copies) == 2 and css.read_bytes() == gx_files[str(css.relative_to(data_docs_dir()))]
    next(static.rglob("*.otf")).unlink()
    publish(result.validation, "housing", "night-3")
    assert len(copies) == 3
    ours = _site_files(data_docs_dir())
    # GX's own builder over the same stored validations: the same site, file for file.
    monkeypatch.setattr(HtmlSiteStore, "copy_static_assets", original)
    context = _context(str(var_dir()), str(data_docs_dir()))
    config = context.list_data_docs_sites()[SITE]
    context.update_data_docs_site(SITE, {k: v for k, v in config.items() if k != "module_name"} | {"class_name": "SiteBuilder"})
    try:
        import shutil

        shutil.rmtree(data_docs_dir())
        context.build_data_docs(site_names=[SITE])
        assert _site_files(data_docs_dir()) == ours
    finally:
        context.update_data_docs_site(SITE, config)
