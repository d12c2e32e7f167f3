"""Blocking: which pairs of records are worth scoring at all.

Scoring every pair grows with N²; Splink scores about half a million pairs a
second here, so the lever at scale is blocking, not scoring (see DESIGN.md,
"Matching at scale"). This module:

* defines compound blocking rules over the match features (surname + birth year,
  postcode + initial, NI key, NHS number, UPRN + initial, date of birth + initial,
  ...), never keyed on a placeholder value (a placeholder date of birth is already
  missing in the features; 'ZZ99' no-fixed-abode postcodes are excluded here);
* counts, before any pair is made, how many comparisons each rule would generate,
  and reports the blocks above a size cap (these are skipped: pairs in them are only
  found if another rule finds them);
* generates the distinct candidate pairs in DuckDB, optionally only pairs that
  touch a set of new/changed records (the incremental night: blocks are expanded
  only around new records, never across the whole index).

Reports carry rule names, block sizes and a short hash of the block key — never
the key itself, which would be a name or a date of birth.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Sequence

import pandas as pd

if TYPE_CHECKING:  # imported where a connection is opened: the night's other steps never need DuckDB
    import duckdb

logger = logging.getLogger(__name__)

PAIRS_TABLE = "candidate_pairs"
FEATURES_TABLE = "match_features"
NEW_IDS_TABLE = "new_record_ids"


@dataclass(frozen=True)
class BlockingRule:
    """Records that agree on every key expression (all non-null) form a block.

    ``keys`` are SQL expressions over one record's feature columns; ``where`` is an
    optional extra SQL condition a record must meet to take part (e.g. excluding
    placeholder values).
    """

    name: str
    keys: tuple[str, ...]
    where: str | None = None

    def keyed_select_sql(self, table: str) -> str:
        key_cols = ", ".join(f"{expr} AS k{i}" for i, expr in enumerate(self.keys))
        conditions = [f"({expr}) IS NOT NULL" for expr in self.keys]
        if self.where:
            conditions.append(f"({self.where})")
        return (
            f"SELECT record_id, {key_cols} FROM {table} WHERE "
            + " AND ".join(conditions)
        )

    @property
    def key_names(self) -> list[str]:
        return [f"k{i}" for i in range(len(self.keys))]


_REAL_BIRTH_YEAR = "CASE WHEN dob_year > 1900 THEN dob_year END"
_POSTCODE_NOT_PLACEHOLDER = "postcode NOT LIKE 'ZZ99%'"

#: Default rules, strongest identifiers first (a pair is attributed to the first
#: rule that finds it).
DEFAULT_BLOCKING_RULES: tuple[BlockingRule, ...] = (
    BlockingRule("ni_key", ("ni_key",)),
    BlockingRule("nhs_number", ("nhs_number",)),
    BlockingRule("dob+given_initial", ("dob", "given_initial")),
    BlockingRule("surname+birth_year", ("family_name_std", _REAL_BIRTH_YEAR)),
    BlockingRule("phonetic_surname+dob", ("family_name_phonetic", "dob")),
    BlockingRule("uprn+given_initial", ("uprn", "given_initial")),
    BlockingRule(
        "postcode+given_initial",
        ("postcode", "given_initial"),
        where=_POSTCODE_NOT_PLACEHOLDER,
    ),
    BlockingRule("email", ("email_std",)),
    # Forename and surname swapped, or both mistyped: same home and birth date.
    BlockingRule("postcode+dob", ("postcode", "dob"), where=_POSTCODE_NOT_PLACEHOLDER),
    BlockingRule(
        "given_name+surname+district",
        ("given_name_std", "family_name_std", "postcode_outward"),
    ),
)

#: Default largest block scored, in records. A block of 300 makes ~45,000 pairs;
#: genuine same-person blocks under these compound keys are a handful of records.
DEFAULT_BLOCK_SIZE_CAP = 300


@dataclass(frozen=True)
class OversizedBlock:
    rule: str
    key_hash: str
    records: int
    comparisons: int


@dataclass
class RuleCount:
    rule: str
    blocks: int
    comparisons: int
    comparisons_skipped: int
    oversized_blocks: int


@dataclass
class BlockingReport:
    """What the blocking rules cost, counted before any pair is generated."""

    block_size_cap: int
    rules: list[RuleCount] = field(default_factory=list)
    oversized: list[OversizedBlock] = field(default_factory=list)
    distinct_pairs: int | None = None

    @property
    def comparisons_before_dedupe(self) -> int:
        return sum(r.comparisons for r in self.rules)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.__dict__ for r in self.rules])

    def summary(self) -> str:
        lines = [f"blocking (cap {self.block_size_cap} records per block):"]
        for r in self.rules:
            lines.append(
                f"  {r.rule:<30} blocks={r.blocks:>9,} comparisons={r.comparisons:>13,}"
                f" skipped={r.comparisons_skipped:>11,} oversized={r.oversized_blocks}"
            )
        if self.distinct_pairs is not None:
            lines.append(f"  distinct candidate pairs: {self.distinct_pairs:,}")
        return "\n".join(lines)


MEMORY_LIMIT_ENV = "JOINEDUP_DUCKDB_MEMORY_LIMIT"
MIN_AUTO_MEMORY_GB = 2
AUTO_MEMORY_SHARE = 4  # a quarter of the machine


def default_memory_limit() -> str:
    """The DuckDB memory cap for matching when the caller names none.

    ``JOINEDUP_DUCKDB_MEMORY_LIMIT`` (e.g. ``8GB``) when set; otherwise a quarter of the
    machine's memory, at least 2GB. A fixed 2GB was too little for the index of a large
    council: at 2.55 million source records the candidate-pair query alone needs more, and
    DuckDB refuses (OutOfMemoryException) rather than spill every operator to disk.
    """
    configured = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if configured:
        try:
            return _checked_size(configured)
        except ValueError as exc:
            raise ValueError(f"{MEMORY_LIMIT_ENV}: {exc}") from None
    try:
        total_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not every platform says
        return f"{MIN_AUTO_MEMORY_GB}GB"
    gigabytes = max(MIN_AUTO_MEMORY_GB, int(total_bytes / AUTO_MEMORY_SHARE / 2**30))
    return f"{gigabytes}GB"


def open_duckdb(
    *,
    memory_limit: str | None = None,
    temp_directory: str | os.PathLike[str] | None = None,
    threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a memory cap and a spill directory.

    DuckDB takes 80% of RAM by default; on a shared machine that starves everyone
    else, so every matching run sets its own limit (``memory_limit``, else
    :func:`default_memory_limit`) and spills to disk beyond it where DuckDB can.
    The spill files hold personal data, so the directory is private to this user (0700).
    Processes may share it: DuckDB names its spill files by process id and removes them.
    """
    import duckdb

    memory_limit = memory_limit or default_memory_limit()
    con = duckdb.connect(":memory:")
    temp_dir = str(temp_directory or os.path.join(tempfile.gettempdir(), f"joinedup-duckdb-{os.getuid()}"))
    os.makedirs(temp_dir, mode=0o700, exist_ok=True)
    if os.stat(temp_dir).st_uid == os.getuid():
        os.chmod(temp_dir, 0o700)
    con.execute(f"SET memory_limit = '{_checked_size(memory_limit)}'")
    con.execute("SET temp_directory = ?", [temp_dir])
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _checked_size(size: str) -> str:
    cleaned = size.strip().upper().replace(" ", "")
    if not cleaned[:1].isdigit() or not cleaned.rstrip("KMGTIB").replace(".", "").isdigit():
        raise ValueError(
            f"memory_limit {size!r} is not a size DuckDB understands; use e.g. '2GB'"
        )
    return cleaned


def _key_hash(values: Sequence[object]) -> str:
    text = "\x1f".join("" if v is None else str(v) for v in values)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _register_new_ids(con: duckdb.DuckDBPyConnection, new_ids: Iterable[int] | None) -> bool:
    con.execute(f"DROP TABLE IF EXISTS {NEW_IDS_TABLE}")
    if new_ids is None:
        return False
    ids = pd.DataFrame({"record_id": pd.Series(sorted(set(new_ids)), dtype="int64")})
    con.register("__new_ids_df", ids)
    con.execute(f"CREATE TABLE {NEW_IDS_TABLE} AS SELECT record_id FROM __new_ids_df")
    con.unregister("__new_ids_df")
    return True


def count_comparisons(
    con: duckdb.DuckDBPyConnection,
    rules: Sequence[BlockingRule] = DEFAULT_BLOCKING_RULES,
    *,
    table: str = FEATURES_TABLE,
    block_size_cap: int = DEFAULT_BLOCK_SIZE_CAP,
    new_ids: Iterable[int] | None = None,
    max_oversized_listed: int = 50,
) -> BlockingReport:
    """Count the comparisons each rule would generate, without generating them.

    With ``new_ids``, counts only comparisons touching a new record (as scored on an
    incremental night): per block, new x old plus new x new pairs.
    Comparisons are counted per rule before de-duplication across rules.
    """
    incremental = _register_new_ids(con, new_ids)
    report = BlockingReport(block_size_cap=block_size_cap)
    for rule in rules:
        keys = ", ".join(rule.key_names)
        new_flag = (
            f"CASE WHEN record_id IN (SELECT record_id FROM {NEW_IDS_TABLE}) "
            "THEN 1 ELSE 0 END"
            if incremental
            else "1"
        )
        sql = f"""
            WITH keyed AS ({rule.keyed_select_sql(table)}),
            blocks AS (
                SELECT {keys}, count(*)::BIGINT AS n, sum({new_flag})::BIGINT AS n_new
                FROM keyed GROUP BY {keys}
            )
            SELECT {keys}, n,
                   CASE WHEN {str(incremental).lower()}
                        THEN n_new * (n - n_new) + n_new * (n_new - 1) // 2
                        ELSE n * (n - 1) // 2 END AS comparisons
            FROM blocks WHERE n > 1
        """
        blocks = con.execute(
            f"SELECT count(*), coalesce(sum(comparisons), 0), "
            f"coalesce(sum(comparisons) FILTER (WHERE n > {int(block_size_cap)}), 0), "
            f"count(*) FILTER (WHERE n > {int(block_size_cap)}) FROM ({sql})"
        ).fetchall()[0]
        n_blocks, comparisons, skipped, n_oversized = (int(x) for x in blocks)
        report.rules.append(
            RuleCount(
                rule=rule.name,
                blocks=n_blocks,
                comparisons=comparisons - skipped,
                comparisons_skipped=skipped,
                oversized_blocks=n_oversized,
            )
        )
        if n_oversized:
            rows = con.execute(
                f"SELECT * FROM ({sql}) WHERE n > {int(block_size_cap)} "
                f"ORDER BY n DESC LIMIT {int(max_oversized_listed)}"
            ).fetchall()
            for row in rows:
                *key_values, n, comps = row
                report.oversized.append(
                    OversizedBlock(rule.name, _key_hash(key_values), int(n), int(comps))
                )
            logger.warning(
                "blocking rule %s: %d blocks over the cap of %d records skipped "
                "(%d comparisons); largest block has %d records",
                rule.name,
                n_oversized,
                block_size_cap,
                skipped,
                rows[0][-2],
            )
    return report


def generate_pairs(
    con: duckdb.DuckDBPyConnection,
    rules: Sequence[BlockingRule] = DEFAULT_BLOCKING_RULES,
    *,
    table: str = FEATURES_TABLE,
    block_size_cap: int = DEFAULT_BLOCK_SIZE_CAP,
    new_ids: Iterable[int] | None = None,
    max_comparisons: int | None = None,
    output_table: str = PAIRS_TABLE,
) -> BlockingReport:
    """Materialise the distinct candidate pairs as ``output_table``.

    Columns: ``match_key`` (index of the first rule that found the pair, as text),
    ``join_key_l``, ``join_key_r`` (record ids, left < right) — the layout Splink's
    ``register_blocked_pairs_for_predict`` expects.

    Raises ``BlockingTooLargeError`` before generating anything if the rules would
    produce more than ``max_comparisons`` comparisons.
    """
    new_ids = None if new_ids is None else list(new_ids)
    report = count_comparisons(
        con, rules, table=table, block_size_cap=block_size_cap, new_ids=new_ids
    )
    if max_comparisons is not None and report.comparisons_before_dedupe > max_comparisons:
        raise BlockingTooLargeError(report, max_comparisons)

    incremental = new_ids is not None
    selects = []
    for index, rule in enumerate(rules):
        keys = rule.key_names
        join_on = " AND ".join(f"a.{k} = b.{k}" for k in keys)
        key_list = ", ".join(keys)
        keyed = f"keyed_{index}"
        small = f"small_{index}"
        ctes = f"""
            {keyed} AS ({rule.keyed_select_sql(table)}),
            {small} AS (
                SELECT {key_list} FROM {keyed} GROUP BY {key_list}
                HAVING count(*) BETWEEN 2 AND {int(block_size_cap)}
            ),
            {keyed}_ok AS (SELECT {keyed}.* FROM {keyed} SEMI JOIN {small} USING ({key_list}))
        """
        if incremental:
            body = f"""
                SELECT {index} AS match_key,
                       least(a.record_id, b.record_id) AS join_key_l,
                       greatest(a.record_id, b.record_id) AS join_key_r
                FROM {keyed}_ok AS a
                JOIN {keyed}_ok AS b ON {join_on} AND a.record_id <> b.record_id
                WHERE a.record_id IN (SELECT record_id FROM {NEW_IDS_TABLE})
            """
        else:
            body = f"""
                SELECT {index} AS match_key, a.record_id AS join_key_l,
                       b.record_id AS join_key_r
                FROM {keyed}_ok AS a
                JOIN {keyed}_ok AS b ON {join_on} AND a.record_id < b.record_id
            """
        selects.append((ctes, body))

    con.execute(f"DROP TABLE IF EXISTS {output_table}")
    if not selects:
        con.execute(
            f"CREATE TABLE {output_table} (match_key VARCHAR, join_key_l BIGINT, "
            "join_key_r BIGINT)"
        )
        report.distinct_pairs = 0
        return report
    with_clause = "WITH " + ",".join(c for c, _ in selects)
    union = " UNION ALL ".join(b for _, b in selects)
    con.execute(
        f"""
        CREATE TABLE {output_table} AS
        {with_clause}
        SELECT CAST(min(match_key) AS VARCHAR) AS match_key, join_key_l, join_key_r
        FROM ({union}) AS all_pairs
        GROUP BY join_key_l, join_key_r
        """
    )
    report.distinct_pairs = int(
        con.execute(f"SELECT count(*) FROM {output_table}").fetchall()[0][0]
    )
    logger.info(
        "blocking produced %d distinct candidate pairs from %d rules%s",
        report.distinct_pairs,
        len(rules),
        " (incremental)" if incremental else "",
    )
    return report


class BlockingTooLargeError(RuntimeError):
    """The blocking rules would generate more comparisons than allowed."""

    def __init__(self, report: BlockingReport, max_comparisons: int):
        self.report = report
        worst = max(report.rules, key=lambda r: r.comparisons, default=None)
        super().__init__(
            f"blocking would generate {report.comparisons_before_dedupe:,} comparisons, "
            f"over the limit of {max_comparisons:,}; the largest rule is "
            f"{worst.rule if worst else '-'} ({worst.comparisons if worst else 0:,}). "
            "Lower block_size_cap, make that rule's key more specific, or raise the limit."
        )
