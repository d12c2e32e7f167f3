"""The stored match index: each source record's match features and blocking keys.

Why it exists: an incremental night must not standardise, load and block the whole index
again. Each record's features (the output of :func:`joinedup.mci.standardise.standardise`)
are written here once, when the record is standardised, with one row per blocking key it
carries. A night then standardises only its pending records and asks the database for the
records that share a blocking key with them (indexed, chunked SQL), never the whole table.
A night writes only what changed: a pending record whose recomputed row equals its stored
one writes nothing, and a changed record's block keys are diffed, so only the keys that
went are deleted and only those that came inserted (:func:`store_features`). A first build,
with no key stored yet, stages its keys and moves them into their table in key order at the
end (:func:`store_index`), instead of inserting each chunk's at random places of the index.

Two tables (on :class:`joinedup.mci.store.Base`):

- ``record_features``   one row per source record: every match-feature column, and the
                        ``signature`` of the standardisation + key set that produced it (a
                        row with another signature is stale and recomputed);
- ``record_block_keys`` (block_key, record_id, rule_index): a 60-bit hash of one blocking
                        rule's key values (never the values themselves, which would be a
                        name or a date of birth). ``rule_index`` < ``RULE_KEY_OFFSET`` is
                        the model's blocking rule of that index (capped blocks); at or above
                        it, a deterministic rule's keys (never capped, as the rules are not).

The same DuckDB SQL (:meth:`BlockingRule.keyed_select_sql`) computes the keys as the full
build's blocking does, so the pairs found here are exactly the pairs the full build finds.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from joinedup.mci import bulk
from joinedup.mci import feature_columns as spec
from joinedup.mci.blocking import BlockingRule, open_duckdb
from joinedup.mci.rules import RULES
from joinedup.mci.store import Base, SourceRecord

log = logging.getLogger(__name__)

#: Bump when standardise() changes what it produces: every stored row is then recomputed.
FEATURES_VERSION = "2"  # 2: sex from a gendered title where none is recorded
#: rule_index of a deterministic rule's key = RULE_KEY_OFFSET + its position in rules.RULES.
RULE_KEY_OFFSET = 1000
#: Values per SQL IN (...) list: under SQLite's variable limit, kind to PostgreSQL's planner.
CHUNK = 500
#: A stored block key's columns.
KEY_COLUMNS = ("record_id", "block_key", "rule_index")
TEXT_COLUMNS = tuple(c for c in spec.FEATURE_COLUMNS
                     if c not in spec.INTEGER_COLUMNS and c not in spec.BOOLEAN_COLUMNS)


class RecordFeatures(Base):
    __tablename__ = "record_features"
    record_id: Mapped[int] = mapped_column(ForeignKey("source_records.id", ondelete="CASCADE"), primary_key=True)
    signature: Mapped[str] = mapped_column(String(16))
    source_system: Mapped[str | None] = mapped_column(String(40))
    source_key: Mapped[str | None] = mapped_column(String(200))
    given_name_std: Mapped[str | None] = mapped_column(String(200))
    given_name_roots: Mapped[str | None] = mapped_column(String(400))
    given_initial: Mapped[str | None] = mapped_column(String(4))
    middle_names_std: Mapped[str | None] = mapped_column(String(200))
    family_name_std: Mapped[str | None] = mapped_column(String(200))
    family_name_parts: Mapped[str | None] = mapped_column(String(400))
    family_name_phonetic: Mapped[str | None] = mapped_column(String(8))
    dob: Mapped[str | None] = mapped_column(String(10))
    dob_year: Mapped[int | None] = mapped_column(Integer)
    dob_is_placeholder: Mapped[bool] = mapped_column(Boolean, default=False)
    sex: Mapped[str | None] = mapped_column(String(1))
    ni_key: Mapped[str | None] = mapped_column(String(9))
    nhs_number: Mapped[str | None] = mapped_column(String(10))
    uprn: Mapped[str | None] = mapped_column(String(12))
    postcode: Mapped[str | None] = mapped_column(String(10))
    postcode_outward: Mapped[str | None] = mapped_column(String(5))
    address_key: Mapped[str | None] = mapped_column(String(400))
    email_std: Mapped[str | None] = mapped_column(String(320))
    phone_std: Mapped[str | None] = mapped_column(String(40))
    deceased: Mapped[bool] = mapped_column(Boolean, default=False)


class RecordBlockKey(Base):
    __tablename__ = "record_block_keys"
    block_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("source_records.id", ondelete="CASCADE"), primary_key=True)
    rule_index: Mapped[int] = mapped_column(Integer)


# Term-frequency look-ups count records per value of these columns.
Index("ix_record_features_given_name", RecordFeatures.given_name_std)
Index("ix_record_features_family_name", RecordFeatures.family_name_std)
Index("ix_record_features_postcode", RecordFeatures.postcode)
BLOCK_KEYS_BY_RECORD = Index("ix_record_block_keys_record", RecordBlockKey.record_id)

TABLES = (RecordFeatures.__table__, RecordBlockKey.__table__)


def ensure_tables(session: Session) -> None:
    """Create the two tables if this database has none yet (before Alembic adopts them)."""
    conn = session.connection()
    for table in TABLES:
        table.create(conn, checkfirst=True)


def rule_keys() -> list[BlockingRule]:
    """The deterministic rules' equality keys, as blocking rules (uncapped)."""
    return [BlockingRule(f"rule:{r.name}", r.keys) for r in RULES]


def signature(blocking_rules: Sequence[BlockingRule]) -> str:
    """What produced a stored row: the features version and every key definition."""
    text = repr((FEATURES_VERSION, spec.FEATURE_COLUMNS,
                 [(r.name, r.keys, r.where) for r in [*blocking_rules, *rule_keys()]]))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def compute_block_keys(features: pd.DataFrame, blocking_rules: Sequence[BlockingRule]) -> pd.DataFrame:
    """(record_id, rule_index, block_key) for every rule whose keys a record has, in DuckDB
    with the very SQL the full build blocks with."""
    from joinedup.mci.probabilistic import _load_features

    keyed = [(i, r) for i, r in enumerate(blocking_rules)]
    keyed += [(RULE_KEY_OFFSET + j, r) for j, r in enumerate(rule_keys())]
    con = open_duckdb(memory_limit="1GB")
    try:
        _load_features(con, features)
        selects = []
        for index, rule in keyed:
            parts = " || chr(31) || ".join(f"coalesce(CAST(k{i} AS VARCHAR), '')" for i in range(len(rule.keys)))
            name = rule.name.replace("'", "''")
            selects.append(
                f"SELECT record_id, {index} AS rule_index, "
                f"('0x' || substr(md5('{name}' || chr(30) || {parts}), 1, 15))::BIGINT AS block_key "
                f"FROM ({rule.keyed_select_sql('match_features')})")
        return con.execute(" UNION ALL ".join(selects)).df()
    finally:
        con.close()


# --- writing --------------------------------------------------------------------------------

def store_features(session: Session, features: pd.DataFrame, blocking_rules: Sequence[BlockingRule], *,
                   first_keys: FirstKeyLoad | None = None) -> int:
    """Bring the stored features and block keys of these records up to date; returns how
    many feature rows were written.

    Only what changed is written (an incremental night re-standardises every pending record,
    and most of them - a changed phone number, a re-sent extract - store what they stored
    before): a record whose stored row equals the new one (same values, same signature, so
    the same features version and key definitions) is left alone, block keys and all. For
    the others the feature row is replaced, and the block keys are diffed per record: the
    keys that went are deleted and the keys that came inserted, set-based (one read of the
    stored keys, one bulk delete, one bulk insert: COPY on PostgreSQL, joinedup.mci.bulk).
    ``first_keys`` (a first build, :func:`store_index`): no key is stored yet, so the keys
    are handed to it to be written in key order at the end instead."""
    if features.empty:
        return 0
    sig = signature(blocking_rules)
    # Bulk writes on the tables (COPY on PostgreSQL, executemany elsewhere: joinedup.mci.bulk),
    # never the ORM's bulk insert, which starts a new batch whenever the pattern of empty
    # values changes, i.e. nearly every row. A record has about 15 block keys.
    rows = _feature_rows(features, sig)
    columns = ["signature", *spec.FEATURE_COLUMNS]
    table = RecordFeatures.__table__
    session.flush()  # the stored rows read below are the session's too
    stored = {r[1]: tuple(r) for r in bulk.rows_matching(session, table, ("record_id",),
                                                           [(row["record_id"],) for row in rows], columns,
                                                           chunk=CHUNK)}
    values = ((row["record_id"], tuple(row[c] for c in columns)) for row in rows)
    changed = {rid: value for rid, value in values if stored.get(rid) != value}
    if not changed:
        return 0
    ids = list(changed)
    bulk.delete_matching(session, table, "record_id", [i for i in ids if i in stored], chunk=CHUNK)
    bulk.insert_values(session, table, columns, list(changed.values()))
    keys = _computed_keys(features[features["record_id"].isin(ids)], blocking_rules)
    if first_keys is not None:
        first_keys.add(keys)
    else:
        _store_block_keys(session, ids, keys)
    return len(changed)


def store_index(session: Session, features: pd.DataFrame, blocking_rules: Sequence[BlockingRule], *,
                chunk: int = 50_000) -> int:
    """:func:`store_features` for a whole index (the full path of a merge), ``chunk`` records
    at a time; returns how many feature rows were written.

    When no block key is stored at all (a council's first build), the keys do not go into
    their indexed table chunk by chunk: their hashes are random, so each chunk's keys land
    all over an ever larger B-tree (about 38 million keys at 1,000,000 residents with record
    history: inserted so, a chunk's keys took 10 s at first and 15 s by the 25th chunk,
    measured on as many synthetic keys). They are gathered in a staging table and moved in
    key order at the end (:class:`FirstKeyLoad`): the same rows, appended in order
    (``benchmarks/index_store_bench.py`` compares the two ways)."""
    first_keys = None
    if session.execute(select(RecordBlockKey.record_id).limit(1)).first() is None:
        first_keys = FirstKeyLoad(session)
    written = 0
    for start in range(0, len(features), chunk):
        written += store_features(session, features.iloc[start : start + chunk], blocking_rules,
                                  first_keys=first_keys)
    if first_keys is not None:
        first_keys.finish()
    return written


class FirstKeyLoad:
    """Block keys for an empty ``record_block_keys``, written in one ordered move.

    ``add`` appends computed keys to a temporary staging table (no index: appending costs
    the same however many rows are there); ``finish`` drops the by-record index, inserts
    every staged row ordered by the primary key (so its B-tree is appended to, never split
    at random), makes the by-record index again in one sort, and drops the staging table.
    All of it in the caller's transaction: a merge that fails later rolls the keys, the
    index's drop and re-creation back with everything else (SQLite and PostgreSQL both
    keep DDL in the transaction). On PostgreSQL the index's drop locks the table until the
    commit; only a first build, when there is nothing to read in it yet, takes this path."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.staging = Table("_jup_first_block_keys", MetaData(),
                             Column("record_id", BigInteger), Column("block_key", BigInteger),
                             Column("rule_index", Integer), prefixes=["TEMPORARY"])
        connection = session.connection()
        # one left on this connection by a merge that failed (SQLite keeps a temporary table
        # made before the transaction's first write through its rollback)
        connection.execute(text(f"DROP TABLE IF EXISTS {self.staging.name}"))
        self.staging.create(connection)
        self.rows = 0

    def add(self, keys: pd.DataFrame) -> None:
        """Stage computed keys (:func:`_computed_keys`)."""
        self.rows += bulk.insert_values(self.session, self.staging, KEY_COLUMNS, _key_values(keys))

    def finish(self) -> None:
        """Move the staged keys into ``record_block_keys`` in key order (see the class doc)."""
        connection = self.session.connection()
        names = ", ".join(KEY_COLUMNS)
        BLOCK_KEYS_BY_RECORD.drop(connection)
        connection.execute(text(f"INSERT INTO {RecordBlockKey.__tablename__} ({names}) "
                                f"SELECT {names} FROM {self.staging.name} ORDER BY block_key, record_id"))
        BLOCK_KEYS_BY_RECORD.create(connection)
        self.staging.drop(connection)
        bulk.write_counts[RecordBlockKey.__tablename__] += self.rows


def _computed_keys(features: pd.DataFrame, blocking_rules: Sequence[BlockingRule]) -> pd.DataFrame:
    """These records' block keys (:func:`compute_block_keys`), as int64 ``KEY_COLUMNS``, each
    row once."""
    return compute_block_keys(features, blocking_rules)[list(KEY_COLUMNS)].astype("int64").drop_duplicates()


def _key_values(keys: pd.DataFrame) -> list[tuple[int, ...]]:
    """The key rows as plain tuples in ``KEY_COLUMNS`` order (what ``bulk.insert_values`` takes)."""
    return list(zip(*(keys[c].tolist() for c in KEY_COLUMNS)))


def _store_block_keys(session: Session, record_ids: list[int], computed: pd.DataFrame) -> None:
    """Make these records' stored block keys exactly ``computed`` (:func:`_computed_keys`):
    the stored set and the computed set are diffed (a DataFrame merge), and only the keys
    that went are deleted and only those that came inserted."""
    table = RecordBlockKey.__table__
    columns = list(KEY_COLUMNS)
    stored = pd.DataFrame(bulk.select_in(session, "SELECT record_id, block_key, rule_index FROM record_block_keys "
                                         "WHERE record_id {in}", record_ids),
                          columns=columns).astype("int64")
    both = stored.merge(computed, on=columns, how="outer", indicator=True)
    gone = both[both["_merge"] == "left_only"]
    came = both[both["_merge"] == "right_only"]
    bulk.delete_rows(session, table, ("block_key", "record_id"),
                     list(zip(gone["block_key"].tolist(), gone["record_id"].tolist())))
    bulk.insert_values(session, table, columns, _key_values(came))


def _feature_rows(features: pd.DataFrame, sig: str) -> list[dict]:
    cols = [c for c in spec.FEATURE_COLUMNS]
    rows = []
    for values in zip(*(features[c].tolist() for c in cols)):
        row = dict(zip(cols, values))
        row["record_id"] = int(row["record_id"])
        year = row["dob_year"]
        row["dob_year"] = None if year is None or year != year else int(year)
        row["dob_is_placeholder"] = bool(row["dob_is_placeholder"])
        row["deceased"] = bool(row["deceased"])
        for c in TEXT_COLUMNS:
            v = row[c]
            row[c] = None if v is None or v != v else str(v)
        row["signature"] = sig
        rows.append(row)
    return rows


def stale_record_ids(session: Session, blocking_rules: Sequence[BlockingRule]) -> list[int]:
    """Source records with no stored features, or features another signature produced."""
    sig = signature(blocking_rules)
    stmt = (select(SourceRecord.id).outerjoin(RecordFeatures, RecordFeatures.record_id == SourceRecord.id)
            .where(or_(RecordFeatures.record_id.is_(None), RecordFeatures.signature != sig)))
    return list(session.scalars(stmt))


# --- reading --------------------------------------------------------------------------------

def load_features(session: Session, record_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Stored features (FEATURE_COLUMNS, the dtypes standardise() gives) of these records,
    or of every record when ``record_ids`` is None (training needs the whole index)."""
    table = RecordFeatures.__table__  # Core columns: plain rows, not the ORM's row loading
    if record_ids is None:
        cols = [table.c[c] for c in spec.FEATURE_COLUMNS]
        rows: list = session.execute(select(*cols).order_by(table.c.record_id)).all()
    else:  # the driver's rows, one statement per 5,000 ids (bulk.select_in); booleans cast below
        names = ", ".join(bulk.quote(c) for c in spec.FEATURE_COLUMNS)
        rows = sorted(bulk.select_in(session, f"SELECT {names} FROM record_features WHERE record_id {{in}}",
                                     (int(i) for i in record_ids)), key=lambda r: r[0])  # by record id
    frame = pd.DataFrame(rows, columns=list(spec.FEATURE_COLUMNS))
    for col in spec.FEATURE_COLUMNS:
        if col in spec.BOOLEAN_COLUMNS:
            frame[col] = frame[col].astype(bool)
        elif col == "record_id":
            frame[col] = frame[col].astype("int64")
        else:
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame


@dataclass
class Candidates:
    """What the store says an incremental night must compare.

    ``pairs``: the model's blocked pairs touching a pending record (match_key = index of
    the first rule that found the pair, join_key_l < join_key_r), as the full build's
    blocking makes them; ``record_ids``: every record sharing any key with a pending one
    (the deterministic rules' too); ``oversized``: blocks over the cap, skipped."""

    pairs: pd.DataFrame
    record_ids: set[int]
    oversized: int = 0


def candidates(session: Session, pending_ids: Iterable[int], block_size_cap: int) -> Candidates:
    """Blocked pairs and candidate records for ``pending_ids``, from the stored keys only."""
    pending = sorted(set(int(i) for i in pending_ids))
    # The driver's rows, a statement per 5,000 values (bulk.select_in), and the pairs made
    # with DataFrame joins: a 1% night at 1,000,000 records reads ~450,000 block members.
    mine = pd.DataFrame(bulk.select_in(session, "SELECT record_id, block_key, rule_index FROM record_block_keys "
                                       "WHERE record_id {in}", pending),
                        columns=["record_id", "block_key", "rule_index"]).astype("int64")
    sizes = pd.DataFrame(bulk.select_in(session, "SELECT block_key, count(*) FROM record_block_keys "
                                        "WHERE block_key {in} GROUP BY block_key", mine["block_key"].tolist()),
                         columns=["block_key", "size"]).astype("int64")
    rule_of = mine.drop_duplicates("block_key").set_index("block_key")["rule_index"]
    sizes["rule_index"] = sizes["block_key"].map(rule_of)
    over = (sizes["rule_index"] < RULE_KEY_OFFSET) & (sizes["size"] > block_size_cap)
    oversized = set(sizes.loc[over, "block_key"].tolist())
    wanted = sizes.loc[(sizes["size"] > 1) & ~over, "block_key"].tolist()
    members = pd.DataFrame(bulk.select_in(session, "SELECT record_id, block_key FROM record_block_keys "
                                          "WHERE block_key {in}", wanted),
                           columns=["record_id", "block_key"]).astype("int64")
    record_ids: set[int] = set(pending) | set(members["record_id"].tolist())
    # Each model-rule pair a pending record's key makes with another member of the block,
    # (lower id, higher id), kept with the lowest rule index that found it (the full build's
    # match_key). Ordered by pair: the scores and decisions do not depend on the order
    # (each pair is scored on its own and decide_pairs sorts its output by pair).
    model_keys = mine[mine["rule_index"] < RULE_KEY_OFFSET]
    joined = model_keys.merge(members.rename(columns={"record_id": "other"}), on="block_key")
    joined = joined[joined["record_id"] != joined["other"]]
    ids, others = joined["record_id"].to_numpy(), joined["other"].to_numpy()
    best = (pd.DataFrame({"join_key_l": np.minimum(ids, others), "join_key_r": np.maximum(ids, others),
                          "rule_index": joined["rule_index"].to_numpy()})
            .groupby(["join_key_l", "join_key_r"], sort=True)["rule_index"].min().reset_index())
    pairs = pd.DataFrame({
        "match_key": pd.Series([str(i) for i in best["rule_index"].tolist()], dtype=object),
        "join_key_l": best["join_key_l"].astype("int64"),
        "join_key_r": best["join_key_r"].astype("int64"),
    })
    if oversized:
        log.warning("incremental blocking: %d blocks over the cap of %d records skipped", len(oversized), block_size_cap)
    return Candidates(pairs, record_ids, len(oversized))


def term_frequencies(session: Session, column: str, values: Iterable[object]) -> pd.DataFrame:
    """Splink's term-frequency table for ``column``, restricted to ``values``, counted over
    the whole stored index: ``count(value) / count(non-null)``, as Splink computes it."""
    col = getattr(RecordFeatures, column)
    total = session.scalar(select(func.count(col))) or 0
    wanted = {str(v) for v in pd.unique(pd.Series(values, dtype=object)) if v is not None and v == v}
    name = bulk.quote(column)  # a feature column's name, never input
    counts = sorted(bulk.select_in(session, f"SELECT {name}, count(*) FROM record_features "
                                            f"WHERE {name} {{in}} GROUP BY {name}", wanted))
    return pd.DataFrame({column: [v for v, _ in counts],
                         f"tf_{column}": [n / total if total else 0.0 for _, n in counts]})
