"""Bulk writes to the MCI store: many rows in one statement, on SQLite and PostgreSQL alike.

Why it exists: a first build writes a row per source record, per block key, per person and
per event (a 1,000,000-record council: millions of rows). SQLAlchemy's executemany is fast
on SQLite (an in-process library) but on PostgreSQL with psycopg 3 it sends one INSERT or
UPDATE per row (pipelined, still ~0.1 ms of driver and server work per row: profiled at
2,000 residents, 119,000 rows took 12 s of a merge). PostgreSQL's own bulk path is ``COPY``:
one statement for a whole batch (~8x faster on the block keys). So:

- :func:`insert_rows` — PostgreSQL (psycopg 3): ``COPY table (columns) FROM STDIN``;
  anything else: one executemany per ``WRITE_CHUNK`` rows, as before.
- :func:`update_rows` — PostgreSQL: the rows are copied into a temporary table and applied
  with one ``UPDATE ... FROM`` joined on the key; anything else: one executemany per chunk.
- :func:`delete_rows` — the rows whose (composite) key is one of many, deleted: PostgreSQL
  copies the keys into a temporary table and joins them in one ``DELETE ... USING``;
  elsewhere one executemany of a keyed ``DELETE`` per chunk (an incremental night removes
  just the block keys and search keys that went).
- :func:`rows_matching` / :func:`delete_matching` — the rows whose key is one of many (read
  or deleted): on PostgreSQL the keys are copied into a temporary table and joined, one
  statement; elsewhere ``IN (...)`` chunks. (Chunked ``IN`` reads on a table filled the same
  night have no statistics to plan with, and once psycopg prepares them their lists are no
  longer hashed: staging's read per 500 records cost ~0.3 s each at 19,270 records.)

What a row gets is exactly what the Core statement would have written: a column missing
from the rows takes its Python-side default (``utcnow``, ``"matcher"``...), an update sets
the columns' ``onupdate`` values (``updated_at``), and ``None`` in a JSON column is stored
as JSON ``null`` as SQLAlchemy's ``JSON`` type does (``none_as_null=False``). Both run in
the caller's transaction (the session's own connection), so a rollback undoes them.
"""
from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Table, bindparam, delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import Column

#: Rows per executemany batch where COPY is not available.
WRITE_CHUNK = 5000
_temp_names = itertools.count(1)
#: Rows each table was asked to write through this module (inserted, updated, or deleted by
#: key), by table name, since the process started: how a test proves that a night which
#: changed nothing wrote nothing (clear it first). Counting is a dict add per call.
write_counts: Counter[str] = Counter()


def uses_copy(session: Session) -> bool:
    """Whether this session's database takes ``COPY`` through its driver (PostgreSQL with
    psycopg 3, the driver SQLAlchemy 2.1 picks for ``postgresql://``)."""
    dialect = session.get_bind().dialect
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *,
                autoflush: bool = False) -> int:
    """Insert ``rows`` (dicts keyed by column name, every row the same keys) into ``table``.
    Returns how many were written. ``autoflush``: flush the session's pending objects first,
    as an ORM statement (``insert(Model)``) does and a Core one (``insert(table)``) does not:
    a caller replacing an ORM statement keeps the order its rows were written in."""
    if not rows:
        return 0
    if autoflush and session.autoflush:
        session.flush()
    write_counts[table.name] += len(rows)
    if not uses_copy(session):
        statement = table.insert()
        for start in range(0, len(rows), WRITE_CHUNK):
            session.execute(statement, list(rows[start : start + WRITE_CHUNK]))
        return len(rows)
    given = [table.c[name] for name in rows[0]]
    defaults = [c for c in table.columns if c.name not in rows[0] and c.default is not None]
    _copy(session, table.name, given + defaults, map(_row_builder(given, defaults), rows))
    return len(rows)


def insert_values(session: Session, table: Table, columns: Sequence[str], values: Sequence[Sequence[Any]], *,
                  autoflush: bool = False) -> int:
    """Insert plain values (tuples in ``columns`` order; ints, strings, None: nothing for a
    column type to convert, no defaults, no JSON) into ``table``: COPY on PostgreSQL, one
    executemany on the driver's own cursor elsewhere (no row dicts, no SQLAlchemy
    processing: a first build stages tens of millions of block keys this way, at a fraction
    of ``insert_rows``' cost a row on SQLite). Returns how many rows were written.
    ``autoflush`` as for :func:`insert_rows`."""
    if not values:
        return 0
    if autoflush and session.autoflush:
        session.flush()
    write_counts[table.name] += len(values)
    if uses_copy(session):
        _copy(session, table.name, [table.c[c] for c in columns], values)
        return len(values)
    cur = _raw_connection(session).cursor()
    try:
        cur.executemany(f"INSERT INTO {_q(table.name)} ({', '.join(_q(c) for c in columns)}) "
                        f"VALUES ({', '.join('?' * len(columns))})", values)
    finally:
        cur.close()
    return len(values)


def update_rows(session: Session, table: Table, key: str, rows: Sequence[Mapping[str, Any]], *,
                autoflush: bool = False) -> int:
    """Set, for each row, the given columns of the record whose ``key`` column equals the
    row's ``key`` value (rows keyed by column name, every row the same keys). Columns with
    an ``onupdate`` (``updated_at``) are set too. Returns how many rows were given.
    ``autoflush`` as for :func:`insert_rows`."""
    if not rows:
        return 0
    if autoflush and session.autoflush:
        session.flush()
    write_counts[table.name] += len(rows)
    names = [n for n in rows[0] if n != key]
    stamped = [c for c in table.columns if c.onupdate is not None and c.name not in rows[0]]
    if not uses_copy(session):
        statement = (update(table).where(table.c[key] == bindparam(f"b_{key}"))
                     .values({n: bindparam(f"b_{n}") for n in names}))
        for start in range(0, len(rows), WRITE_CHUNK):
            session.execute(statement, [{f"b_{n}": v for n, v in row.items()}
                                        for row in rows[start : start + WRITE_CHUNK]])
        return len(rows)
    given = [table.c[key]] + [table.c[n] for n in names]
    temp = f"_jup_bulk_{table.name}_{next(_temp_names)}"
    raw = _raw_connection(session)
    with raw.cursor() as cur:
        cur.execute(f"CREATE TEMPORARY TABLE {temp} AS SELECT {', '.join(_q(c.name) for c in given)} "
                    f"FROM {_q(table.name)} WITH NO DATA")
    _copy(session, temp, given, map(_row_builder(given, []), rows))
    sets = [f"{_q(n)} = t.{_q(n)}" for n in names] + [f"{_q(c.name)} = %s" for c in stamped]
    with raw.cursor() as cur:
        cur.execute(f"UPDATE {_q(table.name)} AS d SET {', '.join(sets)} FROM {temp} AS t "
                    f"WHERE d.{_q(key)} = t.{_q(key)}", _row_builder([], stamped, onupdate=True)({}))
        # (a failed statement rolls the transaction back, and the temporary table with it)
        cur.execute(f"DROP TABLE {temp}")
    return len(rows)


def rows_matching(session: Session, table: Table, key_columns: Sequence[str], keys: Iterable[tuple[Any, ...]],
                  columns: Sequence[str], *, chunk: int = 500) -> list[tuple[Any, ...]]:
    """``columns`` of the rows of ``table`` whose ``key_columns`` equal one of ``keys``.

    PostgreSQL: the keys are copied into a temporary table and joined, one statement for any
    number of keys. Why not ``IN (...)`` chunks there: on a table filled in the same night
    (no statistics yet) the planner scans every row of the first key column's value and
    filters the chunk's list, and once psycopg prepares the statement (its fifth run) the
    list is no longer hashed: staging 19,270 records took 52 such reads of ~0.3 s each,
    growing with the table (quadratic over a first build). Elsewhere (SQLite, whose planner
    uses the unique index): ``chunk`` keys per ``IN`` on the last key column, grouped by
    the others."""
    wanted = sorted(set(keys))
    if not wanted:
        return []
    if not uses_copy(session):
        out: list[tuple[Any, ...]] = []
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for key in wanted:
            groups.setdefault(key[:-1], []).append(key[-1])
        selected = [table.c[c] for c in columns]
        last = table.c[key_columns[-1]]
        for prefix, values in groups.items():
            fixed = [table.c[c] == v for c, v in zip(key_columns[:-1], prefix)]
            for start in range(0, len(values), chunk):
                out += [tuple(r) for r in session.execute(
                    select(*selected).where(*fixed, last.in_(values[start : start + chunk])))]
        return out
    temp = f"_jup_keys_{table.name}_{next(_temp_names)}"
    given = [table.c[c] for c in key_columns]
    raw = _raw_connection(session)
    with raw.cursor() as cur:
        cur.execute(f"CREATE TEMPORARY TABLE {temp} AS SELECT {', '.join(_q(c) for c in key_columns)} "
                    f"FROM {_q(table.name)} WITH NO DATA")
    _copy(session, temp, given, wanted)
    on = " AND ".join(f"d.{_q(c)} = t.{_q(c)}" for c in key_columns)
    with raw.cursor() as cur:
        cur.execute(f"ANALYZE {temp}")  # the planner knows how many keys it joins
        cur.execute(f"SELECT {', '.join('d.' + _q(c) for c in columns)} FROM {_q(table.name)} AS d "
                    f"JOIN {temp} AS t ON {on}")
        found = [tuple(r) for r in cur.fetchall()]
        cur.execute(f"DROP TABLE {temp}")
    return found


#: Values per ``IN (...)`` of :func:`select_in` on SQLite (its variable limit is 32,766).
READ_CHUNK = 5000


def select_in(session: Session, sql: str, values: Iterable[Any], *, chunk: int = READ_CHUNK) -> list[tuple[Any, ...]]:
    """The rows of ``sql``, a plain SELECT whose one ``{in}`` marker stands where a column is
    tested against a long list of ``values`` (``... WHERE block_key {in}``), run on the
    driver's own cursor in the session's transaction.

    Why: an incremental night reads hundreds of thousands of rows by key (block keys, master
    IDs, stored features). Through SQLAlchemy each chunked ``IN`` is compiled again (its
    list is rendered per call: ~2 ms) and every row is processed; a 1% night at 1,000,000
    records spent ~25 s there. PostgreSQL: one statement, ``= ANY(%s)`` with the values as
    one array parameter (indexed, no chunks); elsewhere ``chunk`` values per ``IN (?, ...)``.

    Rows come as the driver gives them, with no type processing: select only plain integer,
    text and boolean columns (SQLite gives booleans as 0/1). ``sql`` is the caller's own
    text with quoted names, never user input."""
    wanted = sorted(set(values))
    if not wanted:
        return []
    if session.autoflush:
        session.flush()  # as a Core select through the session would
    raw = session.connection().connection.driver_connection
    if session.get_bind().dialect.name == "postgresql":
        cur = raw.cursor()
        try:
            cur.execute(sql.replace("{in}", "= ANY(%s)"), (wanted,))
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()
    out: list[tuple[Any, ...]] = []
    cur = raw.cursor()
    try:
        for start in range(0, len(wanted), chunk):
            part = wanted[start : start + chunk]
            cur.execute(sql.replace("{in}", f"IN ({', '.join('?' * len(part))})"), part)
            out += cur.fetchall()
    finally:
        cur.close()
    return out


def delete_matching(session: Session, table: Table, key: str, values: Iterable[Any], *, chunk: int = 500,
                    autoflush: bool = False) -> None:
    """Delete the rows of ``table`` whose ``key`` column is one of ``values``. PostgreSQL:
    the values are copied into a temporary table and one ``DELETE ... USING`` joins it (a
    first build replaces the stored features of a million records: 2,000 chunked deletes
    per table otherwise); elsewhere ``chunk`` values per ``IN``. ``autoflush`` as for
    :func:`insert_rows`."""
    wanted = sorted(set(values))
    if not wanted:
        return
    if autoflush and session.autoflush:
        session.flush()
    write_counts[table.name] += len(wanted)
    if not uses_copy(session):
        column = table.c[key]
        for start in range(0, len(wanted), chunk):
            session.execute(delete(table).where(column.in_(wanted[start : start + chunk])))
        return
    temp = f"_jup_del_{table.name}_{next(_temp_names)}"
    raw = _raw_connection(session)
    with raw.cursor() as cur:
        cur.execute(f"CREATE TEMPORARY TABLE {temp} AS SELECT {_q(key)} FROM {_q(table.name)} WITH NO DATA")
    _copy(session, temp, [table.c[key]], ((v,) for v in wanted))
    with raw.cursor() as cur:
        cur.execute(f"ANALYZE {temp}")
        cur.execute(f"DELETE FROM {_q(table.name)} AS d USING {temp} AS t WHERE d.{_q(key)} = t.{_q(key)}")
        cur.execute(f"DROP TABLE {temp}")


def delete_rows(session: Session, table: Table, key_columns: Sequence[str], keys: Iterable[tuple[Any, ...]],
                *, autoflush: bool = False) -> int:
    """Delete the rows of ``table`` whose ``key_columns`` equal one of ``keys`` (tuples in
    ``key_columns`` order). PostgreSQL: the keys are copied into a temporary table and one
    ``DELETE ... USING`` joins it on every key column; elsewhere one executemany of a keyed
    ``DELETE`` per ``WRITE_CHUNK`` keys (SQLite finds each row through the key's index).
    Returns how many keys were given. ``autoflush`` as for :func:`insert_rows`."""
    wanted = sorted(set(keys))
    if not wanted:
        return 0
    if autoflush and session.autoflush:
        session.flush()
    write_counts[table.name] += len(wanted)
    if not uses_copy(session):
        statement = delete(table).where(*(table.c[c] == bindparam(f"b_{c}") for c in key_columns))
        for start in range(0, len(wanted), WRITE_CHUNK):
            session.execute(statement, [{f"b_{c}": v for c, v in zip(key_columns, key)}
                                        for key in wanted[start : start + WRITE_CHUNK]])
        return len(wanted)
    temp = f"_jup_delk_{table.name}_{next(_temp_names)}"
    raw = _raw_connection(session)
    with raw.cursor() as cur:
        cur.execute(f"CREATE TEMPORARY TABLE {temp} AS SELECT {', '.join(_q(c) for c in key_columns)} "
                    f"FROM {_q(table.name)} WITH NO DATA")
    _copy(session, temp, [table.c[c] for c in key_columns], wanted)
    on = " AND ".join(f"d.{_q(c)} = t.{_q(c)}" for c in key_columns)
    with raw.cursor() as cur:
        cur.execute(f"ANALYZE {temp}")
        cur.execute(f"DELETE FROM {_q(table.name)} AS d USING {temp} AS t WHERE {on}")
        cur.execute(f"DROP TABLE {temp}")
    return len(wanted)


# --- PostgreSQL's COPY -----------------------------------------------------------------------

def _raw_connection(session: Session) -> Any:
    """The psycopg connection under the session's own (so the caller's transaction)."""
    return session.connection().connection.driver_connection


def _copy(session: Session, table_name: str, columns: list[Column], values: Any) -> None:
    raw = _raw_connection(session)
    sql = f"COPY {_q(table_name)} ({', '.join(_q(c.name) for c in columns)}) FROM STDIN"
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for row in values:
            copy.write_row(row)


def quote(name: str) -> str:
    """A table or column name quoted for SQL text (``select_in``'s callers)."""
    return '"' + name.replace('"', '""') + '"'


_q = quote


def _json_encoder(column: Column) -> Callable[[Any], Any]:
    """A JSON column's value as SQLAlchemy's JSON type serialises it (``json.dumps``; None
    is JSON ``null`` unless the type says ``none_as_null``)."""
    if column.type.none_as_null:
        return lambda v: None if v is None else json.dumps(v)
    return json.dumps


def _default_of(column: Column, onupdate: bool) -> Callable[[], Any]:
    """A function giving a column's Python-side default (or onupdate) value for one row."""
    default = column.onupdate if onupdate else column.default
    if default.is_callable:
        # SQLAlchemy's wrapper takes the execution context, which none of our defaults reads
        return lambda: default.arg(None)
    if not default.is_scalar:
        raise TypeError(f"column {column.table.name}.{column.name}: only scalar and callable "
                        "defaults can be written by the bulk path")
    return lambda: default.arg


def _row_builder(given: list[Column], defaulted: list[Column], *,
                 onupdate: bool = False) -> Callable[[Mapping[str, Any]], list[Any] | tuple[Any, ...]]:
    """A function turning one row dict into the values COPY writes: the ``given`` columns'
    values (JSON serialised), then the ``defaulted`` columns' defaults. Built once per batch,
    so a row costs one C-level item fetch and the JSON columns' serialising."""
    names = [c.name for c in given]
    fetch = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],) if names else ())
    json_at = [(i, _json_encoder(c)) for i, c in enumerate(given) if isinstance(c.type, JSON)]
    makers = [(_default_of(c, onupdate), _json_encoder(c) if isinstance(c.type, JSON) else None) for c in defaulted]
    if not json_at and not makers:
        return fetch

    def build(row: Mapping[str, Any]) -> list[Any]:
        values = list(fetch(row))
        for i, encode in json_at:
            values[i] = encode(values[i])
        for make, encode in makers:
            value = make()
            values.append(encode(value) if encode else value)
        return values

    return build
