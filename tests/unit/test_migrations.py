"""The MCI schema is made by Alembic revisions, and they must agree with the models.

``test_fresh_database_matches_the_models`` is the divergence check: it FAILS when someone adds
or changes a model without a revision (see joinedup/mci/migrations/README.md). The same check
runs on PostgreSQL in tests/component/test_migrations_pg.py.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, String, Table, create_engine, event, inspect, text
from typer.testing import CliRunner

from joinedup.mci import schema


def _url(tmp_path: Path, name: str = "mci.sqlite") -> str:
    return f"sqlite:///{tmp_path / name}"


@pytest.fixture
def extra_table():
    """A model that no revision knows, on the shared MetaData for the length of one test."""
    metadata = schema.import_all_models()
    table = Table(
        "zz_unmigrated_things", metadata, Column("id", Integer, primary_key=True), Column("label", String(40))
    )
    yield table
    metadata.remove(table)


def test_fresh_database_matches_the_models(tmp_path: Path) -> None:
    url = _url(tmp_path)
    assert schema.upgrade(url) == schema.head_revision()
    diffs = schema.differences(url)
    assert diffs == [], (
        "the models and the migrations differ: "
        + "; ".join(schema.describe_difference(d) for d in diffs)
        + ". Add a revision: joinedup mci db revision -m '...' (joinedup/mci/migrations/README.md)"
    )


def test_the_divergence_check_sees_a_model_without_a_revision(tmp_path: Path, extra_table: Table) -> None:
    url = _url(tmp_path)
    schema.upgrade(url)
    described = [schema.describe_difference(d) for d in schema.differences(url)]
    assert described == ["add_table zz_unmigrated_things"]


def test_every_model_module_is_known_to_the_migrations() -> None:
    """A module defining tables on Base but missing from MODEL_MODULES would escape the check."""
    import re

    package = Path(schema.__file__).resolve().parents[1]
    defining = set()
    for path in package.rglob("*.py"):
        if re.search(r"^class \w+\((?:\w+\.)?Base\b", path.read_text("utf-8"), re.MULTILINE):
            relative = path.relative_to(package.parent).with_suffix("")
            defining.add(".".join(relative.parts))
    assert "joinedup.mci.store" in defining
    assert defining <= set(schema.MODEL_MODULES), sorted(defining - set(schema.MODEL_MODULES))


def test_the_baseline_makes_exactly_the_tables_create_all_made(tmp_path: Path) -> None:
    url = _url(tmp_path)
    schema.upgrade(url, schema.BASELINE_REVISION)
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert tables == set(schema.BASELINE_TABLES) | {schema.VERSION_TABLE}
    assert schema.current(url) == schema.BASELINE_REVISION


def test_a_database_made_by_create_all_is_adopted_and_keeps_its_rows(tmp_path: Path) -> None:
    url = _url(tmp_path)
    engine = create_engine(url)
    schema.import_all_models().create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO source_cursors (source_system, cursor, run_id, updated_at) "
                          "VALUES ('housing', '2024-01-01', 'night-1', '2024-01-01 00:00:00')"))
    assert schema.current(engine) is None
    assert schema.upgrade(engine) == schema.head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT run_id FROM source_cursors")).scalar_one() == "night-1"
    assert schema.differences(engine) == []
    engine.dispose()


def test_a_create_all_database_from_before_later_revisions_is_stamped_at_the_baseline_and_upgraded(
    tmp_path: Path,
) -> None:
    """A council database made by create_all when only the baseline's tables existed."""
    if schema.head_revision() == schema.BASELINE_REVISION:
        pytest.fail("needs a revision after the baseline; there is one since 0002 (record features)")
    engine = create_engine(_url(tmp_path))
    metadata = schema.import_all_models()
    metadata.create_all(engine, tables=[metadata.tables[name] for name in sorted(schema.BASELINE_TABLES)])
    # ... and without the indexes later revisions added to those tables (0003: person_events)
    later = [ix.name for name in schema.BASELINE_TABLES for ix in metadata.tables[name].indexes
             if ix.name not in schema.baseline_indexes()]
    assert "ix_person_events_at" in later
    # ... and without the columns later revisions added to them (0004: source_records.gone_*)
    added = [(name, column) for name in sorted(schema.BASELINE_TABLES)
             for column in metadata.tables[name].columns.keys() if column not in schema.baseline_columns()[name]]
    assert ("source_records", "gone_run_id") in added
    with engine.begin() as conn:
        for name in later:
            conn.execute(text(f"DROP INDEX {name}"))
        for name, column in added:
            conn.execute(text(f"ALTER TABLE {name} DROP COLUMN {column}"))
    assert schema.upgrade(engine) == schema.head_revision()
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    assert schema.differences(engine) == []
    engine.dispose()


def test_a_database_whose_tables_differ_is_refused_with_the_difference_named(tmp_path: Path) -> None:
    url = _url(tmp_path)
    engine = create_engine(url)
    schema.import_all_models().create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE runs DROP COLUMN figures"))
    with pytest.raises(schema.SchemaError) as caught:
        schema.upgrade(engine)
    message = str(caught.value)
    assert "add_column runs.figures" in message
    assert "joinedup mci db stamp" in message
    assert schema.current(engine) is None  # nothing stamped
    engine.dispose()


def test_tables_of_another_application_do_not_block_a_new_schema(tmp_path: Path) -> None:
    url = _url(tmp_path)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)"))
    assert schema.upgrade(engine) == schema.head_revision()
    assert "someone_elses" in inspect(engine).get_table_names()
    engine.dispose()


def test_upgrade_runs_once_per_process_and_engine(tmp_path: Path) -> None:
    engine = create_engine(_url(tmp_path))
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    schema.upgrade(engine)
    first = len(statements)
    assert first > 13  # the tables were made
    schema.upgrade(engine)
    assert len(statements) == first
    engine.dispose()


def test_get_engine_gives_a_migrated_database(tmp_path: Path) -> None:
    from joinedup.mci.store import _engine_for, get_engine

    url = _url(tmp_path)
    try:
        engine = get_engine(url)
        assert schema.current(engine) == schema.head_revision()
        assert set(schema.BASELINE_TABLES) <= set(inspect(engine).get_table_names())
    finally:
        _engine_for.cache_clear()


def test_new_revision_writes_the_missing_table_after_the_head(tmp_path: Path, extra_table: Table) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    path = schema.new_revision("add unmigrated things", migrations_dir=migrations)
    written = path.read_text()
    assert path.parent == migrations / "versions"
    assert path.name.startswith(f"{int(schema.head_revision()) + 1:04d}_add_unmigrated_things")
    assert "op.create_table('zz_unmigrated_things'" in written
    assert f"down_revision: Union[str, Sequence[str], None] = '{schema.head_revision()}'" in written


def test_new_revision_refuses_when_nothing_changed(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.raises(schema.NoSchemaChanges):
        schema.new_revision("nothing", migrations_dir=migrations)
    assert sorted(p.name for p in (migrations / "versions").glob("0*.py")) == sorted(
        p.name for p in (schema.MIGRATIONS_DIR / "versions").glob("0*.py")
    )


def test_db_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from joinedup.cli import app

    monkeypatch.setenv("JOINEDUP_DB_URL", _url(tmp_path))
    runner = CliRunner()
    head = schema.head_revision()
    result = runner.invoke(app, ["mci", "db", "current"])
    assert result.exit_code == 0 and result.output.startswith("unversioned"), result.output
    result = runner.invoke(app, ["mci", "db", "upgrade"])
    assert result.exit_code == 0 and f"unversioned -> {head}" in result.output, result.output
    result = runner.invoke(app, ["mci", "db", "current"])
    assert result.exit_code == 0 and result.output.startswith(f"{head} (head {head}, up to date)"), result.output
    result = runner.invoke(app, ["mci", "db", "revision", "-m", "nothing new"])
    assert result.exit_code == 1 and "already agree" in result.output


def test_migrations_ship_in_the_package() -> None:
    """The wheel needs the template and every revision (package data + a versions package)."""
    import tomllib

    repo = Path(__file__).resolve().parents[2]
    data = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "*.mako" in data["joinedup.mci.migrations"]
    assert (schema.MIGRATIONS_DIR / "versions" / "__init__.py").exists()
    assert (schema.MIGRATIONS_DIR / "script.py.mako").exists()


# -- the head revision kept in var/cache (a night step opens the MCI without Alembic) --------

def _alembic_head(migrations: Path) -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(schema.alembic_config(migrations_dir=migrations)).get_current_head()


def test_cached_head_is_alembics_and_follows_the_revision_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOINEDUP_VAR", str(tmp_path / "var"))
    migrations = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "var" / "cache" / schema.HEAD_CACHE
    assert schema.head_of(migrations) == _alembic_head(migrations) == schema.head_revision()
    assert cache.exists()
    first = cache.read_text()
    assert schema.head_of(migrations) == _alembic_head(migrations)  # from the cache now
    schema.new_revision("a later one", autogenerate=False, migrations_dir=migrations)
    assert _alembic_head(migrations) != schema.head_revision()
    assert schema.head_of(migrations) == _alembic_head(migrations)  # a new file: asked again
    assert cache.read_text() != first
    edited = sorted((migrations / "versions").glob("0*.py"))[-1]
    edited.write_text(edited.read_text().replace("revision: str = ", "revision: str = 'x' + ", 1))
    assert _alembic_head(migrations).startswith("x")
    assert schema.head_of(migrations) == _alembic_head(migrations)  # an edited file: asked again


def test_cached_head_is_what_is_read_while_the_digest_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache is really consulted (a planted answer under the right digest is returned),
    and a damaged one is ignored and replaced."""
    import json

    monkeypatch.setenv("JOINEDUP_VAR", str(tmp_path / "var"))
    cache = tmp_path / "var" / "cache" / schema.HEAD_CACHE
    cache.parent.mkdir(parents=True)
    digest = schema.versions_digest(schema.MIGRATIONS_DIR)
    cache.write_text(json.dumps({"digest": digest, "head": "planted"}))
    assert schema.head_of(schema.MIGRATIONS_DIR) == "planted"
    cache.write_text(json.dumps({"digest": "0" * 64, "head": "planted"}))
    assert schema.head_of(schema.MIGRATIONS_DIR) == _alembic_head(schema.MIGRATIONS_DIR)
    cache.write_text("{not json")
    assert schema.head_of(schema.MIGRATIONS_DIR) == _alembic_head(schema.MIGRATIONS_DIR)
    assert json.loads(cache.read_text()) == {"digest": digest, "head": _alembic_head(schema.MIGRATIONS_DIR)}


def test_opening_an_up_to_date_database_imports_neither_alembic_nor_splink(tmp_path: Path) -> None:
    """A night step's process opens the MCI at its start: once the database is at the head
    (and the head is cached), that is one read, with no Alembic, Splink or DuckDB import."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "JOINEDUP_VAR": str(tmp_path / "var"), "JOINEDUP_DB_URL": _url(tmp_path)}
    probe = ("import sys; from joinedup.mci.store import get_engine, session_factory; get_engine(); "
             "from joinedup.mci.schema import import_all_models; "
             "assert 'record_features' in import_all_models().tables; session_factory()().close(); "
             "print(sorted(m for m in ('alembic', 'splink', 'duckdb') if m in sys.modules))")
    first = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert "alembic" in first.stdout  # the first process made the tables
    again = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "[]", again.stdout + again.stderr
