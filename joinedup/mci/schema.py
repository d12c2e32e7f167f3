"""The MCI database schema: Alembic migrations, applied in code (no alembic.ini).

Why this module exists: tables used to be made by ``Base.metadata.create_all``, which creates
missing tables but never changes an existing one, so a council's database silently fell behind
the code. Now every schema change is an Alembic revision in ``joinedup/mci/migrations/versions``
and every entry point calls :func:`upgrade`, which

* brings an empty database to the newest revision (``head``);
* upgrades a database that is behind;
* adopts a database made by ``create_all`` before migrations existed: it is stamped when its
  tables match the models (or the first revision's tables, then upgraded), and refused, with
  the differences listed, when they do not;
* does all this once per process and database, so the pipeline's many ``get_engine()`` calls
  cost nothing after the first;
* imports Alembic only when there is something to do: a night step opening a database that is
  already at the newest revision reads one row and compares it with the head revision, kept
  in ``var/cache/`` under a digest of the revision files (importing Alembic to read them cost
  about 0.15 s of every night step's process; see :func:`head_revision`).

Whoever adds a table: see ``joinedup/mci/migrations/README.md``.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:  # Alembic itself is imported where it is used (see the module doc)
    from alembic.config import Config
    from alembic.script import ScriptDirectory

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Every module that defines tables on ``joinedup.mci.store.Base``. A new module with tables
#: must be added here, or autogenerate and the divergence test will not see it.
MODEL_MODULES: tuple[str, ...] = (
    "joinedup.mci.store",
    "joinedup.api.models",
    "joinedup.steward.models",
    "joinedup.mci.features",
)

#: The first revision: the schema as ``create_all`` made it when migrations were introduced.
BASELINE_REVISION = "0001"
BASELINE_TABLES: frozenset[str] = frozenset(
    {
        "landing_batches",
        "source_cursors",
        "source_records",
        "quarantine",
        "persons",
        "person_events",
        "review_pairs",
        "steward_decisions",
        "runs",
        "api_keys",
        "person_search_keys",
        "steward_users",
        "audit_log",
    }
)

VERSION_TABLE = "alembic_version"
# Any constant: serialises concurrent upgrades of one PostgreSQL database (Airflow runs tasks
# in parallel processes, each of which may be the first to touch a new database).
_PG_LOCK_KEY = 0x4A55_4D43  # "JUMC"


class SchemaError(RuntimeError):
    """The database's schema cannot be brought to the code's (adoption refused, no head...)."""


class NoSchemaChanges(SchemaError):
    """``revision`` was asked to autogenerate but the models and migrations already agree."""


def import_all_models() -> MetaData:
    """Import every model module and return the one MetaData they share."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    from joinedup.mci.store import Base

    return Base.metadata


def migration_options() -> dict[str, Any]:
    """Options for Alembic's context: compare column types; batch mode so SQLite can alter."""
    return {
        "compare_type": True,
        "render_as_batch": True,
        "version_table": VERSION_TABLE,
    }


def alembic_config(
    url: str | None = None,
    connection: Connection | None = None,
    migrations_dir: Path = MIGRATIONS_DIR,
) -> Config:
    """An Alembic Config for our migrations, built in code (works from an installed wheel)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("version_locations", str(migrations_dir / "versions"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url:
        # '%' must be doubled for ConfigParser interpolation (URL-encoded passwords).
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


HEAD_CACHE = "alembic_head.json"  # under var/cache: {"digest": ..., "head": ...}


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest revision shipped with this version of JoinedUp (see :func:`head_of`)."""
    return head_of(MIGRATIONS_DIR)


def head_of(migrations_dir: Path) -> str:
    """The newest revision in ``migrations_dir``.

    Alembic reads it from the revision files; its answer is kept in ``var/cache/`` with a
    digest of those files (every name and byte), and taken from there while the digest is
    the same, so a night step's process need not import Alembic to learn it. Any change to
    a revision file (a new one, an edit, a removal) changes the digest and Alembic is asked
    again. A missing, damaged or unwritable cache only means asking Alembic."""
    digest = versions_digest(migrations_dir)
    cached = _cached_head(digest)
    if cached is not None:
        return cached
    from alembic.script import ScriptDirectory

    head = _single_head(ScriptDirectory.from_config(alembic_config(migrations_dir=migrations_dir)))
    _keep_head(digest, head)
    return head


def versions_digest(migrations_dir: Path = MIGRATIONS_DIR) -> str:
    """A digest of the revision files (names and contents): what the head is a function of."""
    digest = hashlib.sha256()
    for path in sorted((migrations_dir / "versions").glob("*.py")):
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _head_cache_path() -> Path:
    from joinedup.paths import var_dir

    return var_dir() / "cache" / HEAD_CACHE


def _cached_head(digest: str) -> str | None:
    try:
        kept = json.loads(_head_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(kept, dict) and kept.get("digest") == digest and isinstance(kept.get("head"), str):
        return kept["head"]
    return None


def _keep_head(digest: str, head: str) -> None:
    """Write the cache beside, then rename over (a parallel step never reads half a file)."""
    try:
        path = _head_cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"digest": digest, "head": head}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a cache: Alembic is asked again next time
        logger.debug("head revision not cached (%s)", type(exc).__name__)


def _single_head(script: ScriptDirectory) -> str:
    heads = script.get_heads()
    if len(heads) != 1:
        raise SchemaError(
            f"the migrations have {len(heads)} heads ({', '.join(heads) or 'none'}) in "
            f"{MIGRATIONS_DIR / 'versions'}; two revisions share a parent: set one's "
            "down_revision to the other"
        )
    return heads[0]


# --------------------------------------------------------------------------
# Upgrade (once per process and database)
# --------------------------------------------------------------------------

_lock = threading.Lock()
_done_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()
_done_urls: set[str] = set()


def upgrade(engine_or_url: Engine | str | None = None, revision: str = "head") -> str | None:
    """Bring the database to ``revision`` (default the newest); return the revision it is at.

    ``engine_or_url``: an Engine, a SQLAlchemy URL, or None for the MCI's own database
    (``JOINEDUP_DB_URL`` or var/mci.sqlite). Repeated calls in one process for the same engine
    (or URL) return at once.
    """
    engine, owned, key = _resolve(engine_or_url)
    try:
        with _lock:
            if revision == "head" and (engine in _done_engines or key in _done_urls):
                return head_revision()
            at = _upgrade(engine, revision)
            if revision == "head":
                _done_engines.add(engine)
                if owned:
                    _done_urls.add(key)
            return at
    finally:
        if owned:
            engine.dispose()


def _resolve(engine_or_url: Engine | str | None) -> tuple[Engine, bool, str]:
    if isinstance(engine_or_url, Engine):
        return engine_or_url, False, engine_or_url.url.render_as_string(hide_password=False)
    if engine_or_url is None:
        from joinedup.mci.store import database_url

        engine_or_url = database_url()
    return create_engine(engine_or_url), True, engine_or_url


def _upgrade(engine: Engine, revision: str) -> str | None:
    if revision == "head" and _at_head(engine):
        import_all_models()  # as the long way does: every table's model is registered
        return head_revision()  # the usual case: one cheap read, no Alembic run
    try:
        at = _upgrade_once(engine, revision)
    except Exception:
        # Another process may have made the same tables at the same moment (SQLite has no
        # advisory lock): if the database is now where we wanted it, all is well.
        if revision == "head" and current(engine) == head_revision():
            logger.info("schema was upgraded by another process meanwhile")
            return head_revision()
        raise
    if revision == "head":
        head_of(MIGRATIONS_DIR)  # Alembic is loaded now: keep the head for the next processes
    return at


def _at_head(engine: Engine) -> bool:
    """Whether the database already records the newest revision (every night step's process
    opens the MCI once; running Alembic's upgrade machinery each time cost 1-4 s per process)."""
    try:
        with engine.connect() as conn:
            versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    except SQLAlchemyError:
        return False  # no version table yet: a new or adopted database goes the long way
    return versions == [head_revision()]


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Serialise upgrades of one SQLite file across processes (PostgreSQL uses an advisory lock).

    SQLite's driver commits DDL at once, so two processes making a new database at the same
    moment would each create half the tables; a lock file beside the database prevents it.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    import fcntl

    lock_path = Path(database).with_name(Path(database).name + ".schema-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _upgrade_once(engine: Engine, revision: str) -> str | None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    metadata = import_all_models()
    with _sqlite_file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        config = alembic_config(connection=conn)
        names = set(inspect(conn).get_table_names())
        if VERSION_TABLE not in names and names & set(metadata.tables):
            _adopt(conn, config, metadata)
        before = MigrationContext.configure(conn, opts=migration_options()).get_current_revision()
        command.upgrade(config, revision)
        after = MigrationContext.configure(conn, opts=migration_options()).get_current_revision()
    if before != after:
        logger.info("MCI schema upgraded from %s to %s", before or "empty", after)
    return after


def _adopt(conn: Connection, config: Config, metadata: MetaData) -> None:
    """Stamp a database made by create_all, if its tables are ours; else refuse, saying why."""
    from alembic import command

    diffs = [d for d in _diffs(conn, metadata) if not _is_foreign_table(d)]
    if not diffs:
        command.stamp(config, "head")
        logger.info("adopted an unversioned MCI database: its tables match the models; stamped head")
        return
    later = [d for d in diffs if not _is_missing_later_table(d)]
    present = set(inspect(conn).get_table_names())
    if not later and BASELINE_TABLES <= present:
        command.stamp(config, BASELINE_REVISION)
        logger.info(
            "adopted an unversioned MCI database at the first revision; %d later table(s) to add",
            len(diffs),
        )
        return
    listed = "; ".join(describe_difference(d) for d in (later or diffs)[:20])
    raise SchemaError(
        f"the database at {conn.engine.url.render_as_string(hide_password=True)} has JoinedUp "
        f"tables but no {VERSION_TABLE} table, and they differ from the models: {listed}. "
        "Bring it in line by hand (or restore it), then record the revision it matches with "
        "`joinedup mci db stamp REVISION` and run `joinedup mci db upgrade`."
    )


def _is_foreign_table(diff: Any) -> bool:
    """A table in the database that no model defines (another application's): not ours to judge."""
    return isinstance(diff, tuple) and diff[0] == "remove_table"


def _is_missing_later_table(diff: Any) -> bool:
    """A table, an index or a column that a revision after the baseline adds."""
    if not isinstance(diff, tuple):
        return False
    if diff[0] == "add_table":
        return diff[1].name not in BASELINE_TABLES
    if diff[0] == "add_index":
        return diff[1].table.name not in BASELINE_TABLES or diff[1].name not in baseline_indexes()
    if diff[0] == "add_column":
        _, _, table, column = diff
        return table in BASELINE_TABLES and column.name not in baseline_columns().get(table, frozenset())
    return False


@lru_cache(maxsize=None)
def _baseline_schema() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """The index names and each table's columns that the baseline revision makes, read off a
    scratch SQLite database upgraded to it."""
    from alembic import command

    with tempfile.TemporaryDirectory(prefix="joinedup-baseline-") as scratch:
        engine = create_engine(f"sqlite:///{Path(scratch) / 'baseline.sqlite'}")
        try:
            with engine.begin() as conn:
                command.upgrade(alembic_config(connection=conn), BASELINE_REVISION)
            found = inspect(engine)
            tables = found.get_table_names()
            return (frozenset(ix["name"] for table in tables for ix in found.get_indexes(table)),
                    {table: frozenset(c["name"] for c in found.get_columns(table)) for table in tables})
        finally:
            engine.dispose()


def baseline_indexes() -> frozenset[str]:
    """The names of the indexes the baseline revision makes: an index missing from an adopted
    database and not among them is one a later revision adds, so the upgrade from the baseline
    will make it."""
    return _baseline_schema()[0]


def baseline_columns() -> dict[str, frozenset[str]]:
    """Each baseline table's columns as the baseline revision makes them: a column missing from
    an adopted database and not among them is one a later revision adds (0004:
    ``source_records.gone_run_id``), so the upgrade from the baseline will add it."""
    return _baseline_schema()[1]


# --------------------------------------------------------------------------
# Inspection
# --------------------------------------------------------------------------


def current(engine_or_url: Engine | str | None = None) -> str | None:
    """The revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    engine, owned, _ = _resolve(engine_or_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn, opts=migration_options()).get_current_revision()
    finally:
        if owned:
            engine.dispose()


def differences(engine_or_url: Engine | str | None = None) -> list[Any]:
    """Alembic's autogenerate diff between the database and the models ([] when they agree)."""
    metadata = import_all_models()
    engine, owned, _ = _resolve(engine_or_url)
    try:
        with engine.connect() as conn:
            return _diffs(conn, metadata)
    finally:
        if owned:
            engine.dispose()


def _diffs(conn: Connection, metadata: MetaData) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts=migration_options())
    return [d for d in compare_metadata(context, metadata) if not _is_version_table(d)]


def _is_version_table(diff: Any) -> bool:
    return isinstance(diff, tuple) and diff[0] == "remove_table" and diff[1].name == VERSION_TABLE


def describe_difference(diff: Any) -> str:
    """One autogenerate difference in words (table, column and index names only)."""
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return ", ".join(describe_difference(d) for d in diff)
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        return f"{kind} {diff[1].name}"
    if kind in ("add_column", "remove_column"):
        return f"{kind} {diff[2]}.{diff[3].name}"
    if kind in ("add_index", "remove_index"):
        return f"{kind} {diff[1].name} on {diff[1].table.name}"
    if kind.startswith("modify_"):
        return f"{kind} {diff[2]}.{diff[3]}"
    return kind


# --------------------------------------------------------------------------
# New revisions (for engineers)
# --------------------------------------------------------------------------


def stamp(engine_or_url: Engine | str | None, revision: str) -> None:
    """Record that the database is at ``revision`` without running anything (after a manual fix)."""
    from alembic import command

    engine, owned, _ = _resolve(engine_or_url)
    try:
        with engine.begin() as conn:
            command.stamp(alembic_config(connection=conn), revision)
    finally:
        if owned:
            engine.dispose()


def new_revision(
    message: str, *, autogenerate: bool = True, migrations_dir: Path = MIGRATIONS_DIR
) -> Path:
    """Write a new revision file in migrations/versions and return its path.

    With ``autogenerate`` the operations are computed by comparing the models with a scratch
    SQLite database upgraded to the current head, so the result does not depend on anyone's
    own database. Raises :class:`NoSchemaChanges` when there is nothing to write.
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    import_all_models()
    script = ScriptDirectory.from_config(alembic_config(migrations_dir=migrations_dir))
    heads = script.get_heads()
    if len(heads) > 1:
        _single_head(script)  # raises, saying what to do
    rev_id = f"{_next_number(script):04d}"
    with tempfile.TemporaryDirectory(prefix="joinedup-revision-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'head.sqlite'}"
        engine = create_engine(url)
        try:
            if heads:
                with engine.begin() as conn:
                    command.upgrade(alembic_config(connection=conn, migrations_dir=migrations_dir), "head")
            if autogenerate:
                diffs = differences(engine)
                if not diffs:
                    raise NoSchemaChanges(
                        "the models and the migrations already agree: nothing to write "
                        "(add or change a model on joinedup.mci.store.Base first)"
                    )
            with engine.begin() as conn:
                config = alembic_config(url=url, connection=conn, migrations_dir=migrations_dir)
                written = command.revision(
                    config, message=message, autogenerate=autogenerate, rev_id=rev_id
                )
        finally:
            engine.dispose()
    head_revision.cache_clear()
    scripts = written if isinstance(written, list) else [written]
    return Path(scripts[0].path)


def _next_number(script: ScriptDirectory) -> int:
    numbers = [int(r.revision) for r in script.walk_revisions() if r.revision.isdigit()]
    return max(numbers, default=0) + 1
