"""The right to erasure: remove one person (a master ID) or one source record everywhere the
hub holds it, and leave a tombstone (see :mod:`joinedup.privacy.tombstones`).

Where the data is, and what happens to it:

- MCI database: ``source_records`` (and their ``record_features``/``record_block_keys``),
  ``quarantine`` rows, ``review_pairs`` and ``steward_decisions`` that name the records,
  ``person_search_keys``; the ``persons`` row keeps its master ID (never reissued) with an
  empty golden record and status ``erased``, or, when only one source record goes and others
  remain, its golden record and search keys are recomputed. ``person_events`` keep their
  history (ids and field names only, no values). On SQLite the file is vacuumed so deleted
  rows do not linger in free pages; on PostgreSQL the touched tables are vacuumed.
- files under var/: landing pages and their work files, drop files, reports, the demo's truth
  (see :mod:`joinedup.privacy.file_redaction`).
- the audit log gets an ``erase`` entry (who, master ID, counts); the tombstone holds who,
  when, the request reference and keyed hashes of the (source, key) pairs.

Not here, by design: the source systems themselves (the council must erase there too; a
re-sync is refused at staging and shows in quarantine), Airflow's own logs (they never hold
values), and the Splink model file (it holds m/u probabilities and settings only; term
frequencies are counted from the index at scoring time and never saved).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from joinedup.adapters import load_sources
from joinedup.adapters.config import SourceConfig
from joinedup.mapping.spec import load_mapping
from joinedup.mci.store import (
    LandingBatch,
    Person,
    QuarantinedRow,
    ReviewPair,
    SourceRecord,
    StewardDecision,
    get_engine,
    session_factory,
)
from joinedup.paths import landing_dir, reports_dir, var_dir
from joinedup.privacy import file_redaction as fr
from joinedup.privacy.tombstones import add_tombstone, normalise_key

log = logging.getLogger(__name__)


class ErasureError(ValueError):
    """The erasure cannot be done as asked; the message says why and what to do."""


@dataclass
class ErasureOutcome:
    tombstone_id: int
    master_ids: list[str]
    person_erased: bool
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"tombstone": self.tombstone_id, "master_ids": self.master_ids, "person_erased": self.person_erased,
                "counts": self.counts, "notes": self.notes}


def _active_master(session: Session, master_id: str) -> Person:
    person = session.get(Person, master_id)
    seen = set()
    while person is not None and person.status == "merged" and person.merged_into and person.master_id not in seen:
        seen.add(person.master_id)
        person = session.get(Person, person.merged_into)
    if person is None:
        raise ErasureError(f"no person with master ID {master_id}; check it with `joinedup mci stats` or the workbench")
    return person


def _absorbed(session: Session, master_id: str) -> set[str]:
    """The master IDs merged into this one, at any depth (their rows may hold an old golden record)."""
    found, frontier = set(), {master_id}
    while frontier:
        rows = set(session.scalars(select(Person.master_id).where(Person.merged_into.in_(frontier))))
        frontier = rows - found
        found |= rows
    return found


def _targets(session: Session, master_id: str | None, source: str | None, key: str | None
             ) -> tuple[set[tuple[str, str]], set[str], bool]:
    """(source, normalised key) pairs to erase, master IDs touched, whether the person goes whole."""
    if master_id:
        person = _active_master(session, master_id)
        if person.status == "erased":
            raise ErasureError(f"master ID {master_id} was already erased (see `joinedup erase --list`)")
        mids = {person.master_id} | _absorbed(session, person.master_id)
        pairs = {(s, normalise_key(k)) for s, k in session.execute(
            select(SourceRecord.source_system, SourceRecord.source_key).where(SourceRecord.master_id.in_(mids)))}
        return pairs, mids, True
    if not (source and key):
        raise ErasureError("say whom to erase: --master-id M, or --source S --key K")
    pair = (source, normalise_key(key))
    mid = session.scalar(select(SourceRecord.master_id).where(
        SourceRecord.source_system == source, SourceRecord.source_key == key.strip()))
    if mid is None:
        mid = session.scalar(select(SourceRecord.master_id).where(
            SourceRecord.source_system == source, SourceRecord.source_key == pair[1]))
    if mid is None:
        return {pair}, set(), False
    others = session.scalar(select(SourceRecord.id).where(
        SourceRecord.master_id == mid, ~((SourceRecord.source_system == source)
                                         & (SourceRecord.source_key.in_([key.strip(), pair[1]])))).limit(1))
    whole = others is None
    return {pair}, ({mid} | _absorbed(session, mid)) if whole else {mid}, whole


def erase(*, master_id: str | None = None, source: str | None = None, key: str | None = None,
          erased_by: str, request: str) -> ErasureOutcome:
    """Erase a person (``master_id``) or one source record (``source`` + ``key``); see the module doc."""
    if not request or not request.strip():
        raise ErasureError("an erasure needs the request reference (--request, e.g. the SAR/erasure request number)")
    configs = {c.name: c for c in load_sources()}
    if source and source not in configs:
        raise ErasureError(f"unknown source {source}; known: {', '.join(sorted(configs))}")
    counts: dict[str, int] = {}
    with session_factory()() as session:
        pairs, mids, whole = _targets(session, master_id, source, key)
        if not pairs and not mids:
            raise ErasureError(f"master ID {master_id} has no source records to erase")
        counts.update(_erase_rows(session, pairs, mids, whole))
        tomb_master = sorted(mids)[0] if mids else ""
        if master_id:
            tomb_master = _active_master(session, master_id).master_id
        stone = add_tombstone(session, master_id=tomb_master, erased_by=erased_by, request=request.strip(),
                              keys=sorted(pairs), counts={})
        files, notes = _erase_files(session, pairs, configs, request.strip())
        counts.update(files)
        stone.evidence = {**stone.evidence, "counts": dict(counts)}
        _audit(session, erased_by, tomb_master, stone.id, counts)
        session.commit()
        stone_id = stone.id
    _compact_database()
    log.info("erasure %s: tombstone %d, %d source record(s), master IDs %s", request.strip(), stone_id,
             counts.get("source_records", 0), ",".join(sorted(mids)))
    return ErasureOutcome(stone_id, sorted(mids), whole, counts, notes)


def _erase_rows(session: Session, pairs: set[tuple[str, str]], mids: set[str], whole: bool) -> dict[str, int]:
    ids: list[int] = []
    for s, k in pairs:  # keys are normalised by the mappings; upper() catches any other spelling
        ids += list(session.scalars(select(SourceRecord.id).where(
            SourceRecord.source_system == s, func.upper(func.trim(SourceRecord.source_key)) == k)))
    counts = remove_records(session, sorted(set(ids)), persons_gone=mids if whole else set(),
                            persons_left=set() if whole else mids,
                            run_id=f"erasure__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}")
    quarantined = 0
    for s, k in pairs:
        for row in session.scalars(select(QuarantinedRow).where(QuarantinedRow.source_system == s)):
            if row.source_key is not None and normalise_key(row.source_key) == k:
                session.delete(row)
                quarantined += 1
    counts["quarantine"] = quarantined
    session.flush()
    return counts


def remove_records(session: Session, ids: list[int], *, persons_gone: set[str], persons_left: set[str],
                   run_id: str) -> dict[str, int]:
    """Delete these source records from the index: their rows, match features and blocking
    keys, the review pairs and steward decisions naming them (history events keep their ids
    and field names, no values, and lose the link to the record). ``persons_gone``: master
    IDs left with no record (their golden record emptied, status ``erased``, search keys
    deleted; the ID is never reissued); ``persons_left``: master IDs that keep other records
    (golden record and search keys worked out again). Used by erasure and by retention."""
    from joinedup.api.models import PersonSearchKey
    from joinedup.mci.features import RecordBlockKey, RecordFeatures
    from joinedup.mci.golden import refresh_golden
    from joinedup.mci.store import PersonEvent

    def _delete(stmt: Any) -> int:
        return int(session.execute(stmt).rowcount or 0)

    counts: dict[str, int] = {"source_records": len(ids)}
    if ids:
        counts["steward_decisions"] = _delete(delete(StewardDecision).where(
            or_(StewardDecision.record_id_l.in_(ids), StewardDecision.record_id_r.in_(ids))))
        counts["review_pairs"] = _delete(delete(ReviewPair).where(
            or_(ReviewPair.record_id_l.in_(ids), ReviewPair.record_id_r.in_(ids))))
        _delete(delete(RecordBlockKey).where(RecordBlockKey.record_id.in_(ids)))
        _delete(delete(RecordFeatures).where(RecordFeatures.record_id.in_(ids)))
        session.execute(update(PersonEvent).where(PersonEvent.source_record_id.in_(ids)).values(source_record_id=None))
        _delete(delete(SourceRecord).where(SourceRecord.id.in_(ids)))
    if persons_gone:
        for person in session.scalars(select(Person).where(Person.master_id.in_(persons_gone))):
            person.golden, person.golden_sources = {}, {}
            if person.status == "active":
                person.status = "erased"
        counts["search_keys"] = _delete(delete(PersonSearchKey).where(PersonSearchKey.master_id.in_(persons_gone)))
        counts["persons_erased"] = len(persons_gone)
    if persons_left:
        session.flush()
        refresh_golden(session, set(persons_left), run_id)
    return counts


def _key_column(config: SourceConfig) -> str | None:
    rule = load_mapping(config.mapping_path()).fields.get("source_key")
    src = getattr(rule, "source", None)
    return src if isinstance(src, str) else (src[0] if src else None)


def _erase_files(session: Session, pairs: set[tuple[str, str]], configs: dict[str, SourceConfig],
                 request: str) -> tuple[dict[str, int], list[str]]:
    counts = {"landing_rows": 0, "work_file_rows": 0, "drop_file_rows": 0, "files_deleted": 0, "reports_redacted": 0}
    notes: list[str] = []
    by_source: dict[str, set[str]] = {}
    for s, k in pairs:
        by_source.setdefault(s, set()).add(k)
    for source, keys in sorted(by_source.items()):
        config = configs.get(source)
        column = _key_column(config) if config else None
        if column is None:
            notes.append(f"source {source}: no mapping with a source_key column; its files were not searched")
            continue
        base = landing_dir() / source
        for folder in sorted(p for p in base.glob("*") if p.is_dir()) if base.exists() else []:
            rewrites = fr.redact_landing_run(folder, column, keys, request)
            counts["landing_rows"] += sum(r.removed for r in rewrites)
            counts["work_file_rows"] += fr.redact_checked(folder / "checked", keys, rewrites)
            _renumber_quarantine(session, source, rewrites)
            if rewrites:
                _update_batch(session, source, folder)
        d, deleted = _erase_drop_files(config, column, keys, request)
        counts["drop_file_rows"] += d
        counts["files_deleted"] += deleted
    report_files = [p for p in reports_dir().rglob("*") if p.is_file() and p.suffix in (".html", ".json", ".csv", ".txt")]
    counts["reports_redacted"] = fr.redact_text_files(report_files, {k for _, k in pairs})
    fr.redact_truth_csv(var_dir() / "council" / "truth.csv", pairs)
    return counts, notes


def _renumber_quarantine(session: Session, source: str, rewrites: list[fr.PageRewrite]) -> None:
    for rewrite in rewrites:
        for row in session.scalars(select(QuarantinedRow).where(
                QuarantinedRow.source_system == source, QuarantinedRow.landing_file == rewrite.landing_file)):
            row.landing_row = rewrite.row_map.get(row.landing_row, row.landing_row)


def _update_batch(session: Session, source: str, folder: Path) -> None:
    import json

    manifest = folder / "manifest.json"
    if not manifest.exists():
        return
    data = json.loads(manifest.read_text(encoding="utf-8"))
    batch = session.scalar(select(LandingBatch).where(LandingBatch.source_system == source,
                                                      LandingBatch.run_id == data["run_id"]))
    if batch is not None:
        batch.rows, batch.sha256 = data["rows"], data["sha256"]


def _erase_drop_files(config: SourceConfig, column: str, keys: set[str], request: str) -> tuple[int, int]:
    if config.kind not in ("csv", "fixed_width", "xml"):
        return 0, 0
    from joinedup.adapters import build_adapter

    adapter: Any = build_adapter(config)
    opts = adapter.options
    removed = deleted = 0
    for sub in ("processed", "rejected"):
        folder = adapter.folder / sub
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(opts.file_pattern)):
            if not path.is_file() or path.name.endswith((".reason.txt", ".erased.txt")) or not fr.file_mentions(path, keys):
                continue
            try:
                if config.kind == "csv":
                    removed += fr.redact_csv(path, column, keys, opts.encoding, opts.delimiter)
                elif config.kind == "fixed_width":
                    removed += fr.redact_fixed_width(path, adapter.layout, column, keys)
                else:
                    removed += fr.redact_xml(path, opts.record_element, column, keys, opts.count_attribute)
            except Exception:  # noqa: BLE001 - an unparseable file (often a rejected one) goes whole
                fr.delete_with_note(path, request)
                deleted += 1
                continue
            if fr.file_mentions(path, keys):  # the key was somewhere the parser did not look
                fr.delete_with_note(path, request)
                deleted += 1
    return removed, deleted


def _audit(session: Session, erased_by: str, master_id: str, tombstone_id: int, counts: dict[str, int]) -> None:
    from joinedup.steward.audit import record

    record(session, erased_by[:80], "erase", master_id=master_id or None,
           detail={"tombstone": tombstone_id, **{k: int(v) for k, v in counts.items()}})


def _compact_database() -> None:
    """Deleted rows must not linger in the database file's free pages or WAL."""
    engine = get_engine()
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    elif engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("source_records", "quarantine", "persons", "person_search_keys", "review_pairs",
                          "steward_decisions", "record_features", "record_block_keys"):
                conn.execute(text(f"VACUUM {table}"))
