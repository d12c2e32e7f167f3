"""The quarantine: rows the quality gate refused, kept with the rule, the field, the source key
and where the row was landed (file and line), never the value.

An entry's ``status``:

- ``open``        waiting for a steward (the row is not in staging)
- ``released``    re-mapped and re-validated after a fix, and admitted to staging
- ``resolved``    the row was re-checked and this rule no longer fails (another still does)
- ``superseded``  its batch was checked again (a refused batch retried), or a later batch
                  delivered the same record again (a full extract sends every record every
                  night): the newer delivery's entries, or its staging if it passed, replace it
- ``replayed``    its batch was replayed from landing (``joinedup replay``)

A release re-reads the landed row (its page's checksum checked against the manifest), maps it
with today's mapping and validates it with today's suites: a row that now passes is staged;
one that still fails stays open with the new reason. Nothing here logs a value.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from joinedup.landing import MANIFEST, page_lines
from joinedup.mci.store import LandingBatch, QuarantinedRow
from joinedup.paths import landing_dir

log = logging.getLogger(__name__)

STATUSES = ("open", "released", "resolved", "superseded", "replayed")


class QuarantineError(ValueError):
    """A quarantine request cannot be carried out; the message says which entry and why."""


# -- writing ------------------------------------------------------------------------------
def record_failures(session: Session, source_system: str, batch_run_id: str, entries: Iterable[dict[str, Any]]) -> int:
    """Add one open entry per failure (dicts with source_key, rule, field, reason,
    landing_file, landing_row). The caller commits."""
    count = 0
    for entry in entries:
        session.add(QuarantinedRow(run_id=batch_run_id, source_system=source_system, **entry))
        count += 1
    return count


def supersede_open(session: Session, source_system: str, batch_run_id: str) -> int:
    """Close the open entries of a batch that is being checked again (its new failures will
    be written by this check): one open set per batch, never two."""
    result = session.execute(update(QuarantinedRow).where(
        QuarantinedRow.source_system == source_system, QuarantinedRow.run_id == batch_run_id,
        QuarantinedRow.status == "open").values(status="superseded"))
    return int(result.rowcount or 0)


def supersede_redelivered(session: Session, batch: LandingBatch, source_keys: set[str]) -> int:
    """Close the open entries that batches landed before ``batch`` left for the records it
    delivers again (``source_keys``: every key it staged or quarantined). A record's newest
    delivery is what a steward acts on: when it failed again, its new entries stand alone;
    when it passed, it was fixed at source and is staged. Without this a full-extract source
    (HR, social care) would add the same failing record to the open queue every night. A
    later batch's entries are never touched (replaying an old night does not close them).
    The caller commits; the open queue is small, so it is read whole and matched here."""
    if not source_keys:
        return 0
    earlier = select(LandingBatch.run_id).where(LandingBatch.source_system == batch.source_system,
                                                LandingBatch.id < batch.id)
    open_rows = session.execute(select(QuarantinedRow.id, QuarantinedRow.source_key).where(
        QuarantinedRow.source_system == batch.source_system, QuarantinedRow.status == "open",
        QuarantinedRow.run_id.in_(earlier), QuarantinedRow.source_key.is_not(None))).all()
    ids = [row_id for row_id, key in open_rows if key in source_keys]
    for start in range(0, len(ids), 500):
        session.execute(update(QuarantinedRow).where(QuarantinedRow.id.in_(ids[start:start + 500]))
                        .values(status="superseded"))
    return len(ids)


def supersede_outdated(session: Session, batch: LandingBatch) -> int:
    """Close ``batch``'s own open entries for records that a batch landed AFTER it delivered
    again (staged from it, or quarantined by it): what a replay of an old night must do, so a
    failure long since fixed at source does not reappear in the steward's queue. The later
    delivery is the one that stands. On a normal night no batch landed later: nothing is read
    beyond that. The caller flushes the batch's entries first and commits."""
    from joinedup.mci.staging import landed_after
    from joinedup.mci.store import SourceRecord  # the staged side of a later delivery

    later = landed_after(session, batch)
    if not later:
        return 0
    entries = session.execute(select(QuarantinedRow.id, QuarantinedRow.source_key).where(
        QuarantinedRow.source_system == batch.source_system, QuarantinedRow.run_id == batch.run_id,
        QuarantinedRow.status == "open", QuarantinedRow.source_key.is_not(None))).all()
    keys = sorted({key for _, key in entries})
    delivered_later: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        for table, run in ((SourceRecord, SourceRecord.last_run_id), (QuarantinedRow, QuarantinedRow.run_id)):
            delivered_later.update(session.scalars(select(table.source_key).where(
                table.source_system == batch.source_system, table.source_key.in_(chunk), run.in_(later))))
    ids = [row_id for row_id, key in entries if key in delivered_later]
    for start in range(0, len(ids), 500):
        session.execute(update(QuarantinedRow).where(QuarantinedRow.id.in_(ids[start:start + 500]))
                        .values(status="superseded"))
    return len(ids)


# -- reading ------------------------------------------------------------------------------
def list_entries(session: Session, *, source: str | None = None, rule: str | None = None,
                 status: str | None = "open", limit: int = 500) -> list[QuarantinedRow]:
    """Entries, newest first; ``status=None`` for every status."""
    query = select(QuarantinedRow).order_by(QuarantinedRow.id.desc()).limit(limit)
    if source:
        query = query.where(QuarantinedRow.source_system == source)
    if rule:
        query = query.where(QuarantinedRow.rule == rule)
    if status:
        query = query.where(QuarantinedRow.status == status)
    return list(session.scalars(query))


def batch_status(session: Session, entry: QuarantinedRow) -> str | None:
    """The status of the landed batch an entry came from (``failed`` = refused at the gate)."""
    return session.scalar(select(LandingBatch.status).where(
        LandingBatch.source_system == entry.source_system, LandingBatch.run_id == entry.run_id))


def landed_row(landing_file: str, row: int) -> dict[str, Any]:
    """The raw record at ``row`` (1-based) of a landing page, after checking the page against
    its manifest's checksum. For the steward's terminal or a release: never log it."""
    path = landing_dir() / landing_file
    manifest_path = path.parent / MANIFEST
    try:
        body = path.read_bytes()
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise QuarantineError(f"landing file {landing_file} or its manifest cannot be read ({type(exc).__name__}); "
                              "was var/landing moved or pruned?") from None
    page = next((p for p in manifest.get("pages", []) if p.get("file") == path.name), None)
    if page is None or hashlib.sha256(body).hexdigest() != page.get("sha256"):
        raise QuarantineError(f"landing file {landing_file} does not match its manifest: it was changed after landing")
    lines = page_lines(body)
    if not 1 <= row <= len(lines):
        raise QuarantineError(f"landing file {landing_file} has {len(lines)} rows, not row {row}")
    return json.loads(lines[row - 1])


def source_columns_for(field_name: str | None, mapping_path: Path) -> list[str]:
    """The source columns the mapping reads for a canonical field (what a steward looks at)."""
    from joinedup.mapping.spec import load_mapping

    if not field_name:
        return []
    rule = load_mapping(mapping_path).fields.get(field_name)
    return rule.source_columns() if rule is not None else []


# -- release ------------------------------------------------------------------------------
@dataclass
class ReleaseOutcome:
    released: list[int] = field(default_factory=list)  # entry ids whose row is now staged
    still_failing: list[int] = field(default_factory=list)  # entry ids still open (new reason)
    resolved: list[int] = field(default_factory=list)  # entries closed: the rule passes now
    new_entries: list[int] = field(default_factory=list)  # entries added: a rule fails now that did not
    staged: dict[str, int] = field(default_factory=dict)  # new / changed / unchanged

    def as_dict(self) -> dict[str, Any]:
        return {"released": self.released, "still_failing": self.still_failing, "resolved": self.resolved,
                "new_entries": self.new_entries, "staged": self.staged}


def release(session: Session, entry_ids: list[int], run_id: str) -> ReleaseOutcome:
    """Re-map and re-validate the landed rows behind ``entry_ids`` (every open entry of each
    such row is settled together); stage the rows that pass. Commits."""
    entries = {e.id: e for e in session.scalars(select(QuarantinedRow).where(QuarantinedRow.id.in_(entry_ids)))}
    unknown = [i for i in entry_ids if i not in entries]
    if unknown:
        raise QuarantineError(f"no quarantine entry {', '.join(map(str, unknown))}; see `joinedup quarantine list`")
    closed = [f"{i} ({entries[i].status})" for i in entry_ids if entries[i].status != "open"]
    if closed:
        raise QuarantineError(f"quarantine entry {', '.join(closed)} is not open; only open entries can be released")
    rows: dict[tuple[str, str, int], list[QuarantinedRow]] = {}
    for entry in entries.values():
        rows.setdefault((entry.source_system, entry.landing_file, entry.landing_row), [])
    for key in rows:
        rows[key] = list(session.scalars(select(QuarantinedRow).where(
            QuarantinedRow.source_system == key[0], QuarantinedRow.landing_file == key[1],
            QuarantinedRow.landing_row == key[2], QuarantinedRow.status == "open")))
    outcome = ReleaseOutcome(staged={"new": 0, "changed": 0, "unchanged": 0})
    for source in sorted({k[0] for k in rows}):
        _release_source(session, source, {k: v for k, v in rows.items() if k[0] == source}, run_id, outcome)
    session.commit()
    log.info("quarantine release %s: %d entries released, %d still failing", run_id,
             len(outcome.released), len(outcome.still_failing))
    return outcome


def _release_source(session: Session, source: str, rows: dict[tuple[str, str, int], list[QuarantinedRow]],
                    run_id: str, outcome: ReleaseOutcome) -> None:
    from joinedup.mapping.engine import map_records
    from joinedup.mapping.spec import load_mapping
    from joinedup.mci.staging import stage_records
    from joinedup.pipeline import source_config
    from joinedup.quality.gate import source_suite, validate_batch

    config = source_config(source)
    keys = list(rows)
    raw = [landed_row(file, row) for _, file, row in keys]
    canonical = map_records(raw, load_mapping(config.mapping_path()), source)
    gate = validate_batch(canonical, source, suite=source_suite(config), run_name=run_id)
    failing: dict[int, set[tuple[str, str | None]]] = {}
    reasons: dict[tuple[int, str, str | None], str] = {}
    for f in gate.failures:
        failing.setdefault(f.position, set()).add((f.rule, f.field))
        reasons[(f.position, f.rule, f.field)] = f.reason
    admitted = []
    for pos, key in enumerate(keys):
        old = rows[key]
        now = failing.get(pos, set())
        if not now:
            for entry in old:
                entry.status = "released"
                outcome.released.append(entry.id)
            admitted.append(pos)
            continue
        for entry in old:
            if (entry.rule, entry.field) in now:
                entry.reason = reasons[(pos, entry.rule, entry.field)]
                entry.source_key = canonical.at[canonical.index[pos], "source_key"]
                outcome.still_failing.append(entry.id)
            else:
                entry.status = "resolved"
                outcome.resolved.append(entry.id)
        known = {(e.rule, e.field) for e in old}
        template = old[0]
        for rule, fld in sorted(now - known, key=lambda rf: (rf[0], rf[1] or "")):
            added = QuarantinedRow(run_id=template.run_id, source_system=source,
                                   source_key=canonical.at[canonical.index[pos], "source_key"], rule=rule,
                                   field=fld, reason=reasons[(pos, rule, fld)], landing_file=key[1], landing_row=key[2])
            session.add(added)
            session.flush()
            outcome.new_entries.append(added.id)
    if admitted:
        passed = canonical.iloc[admitted].drop(columns=["mapping_issues"]).astype(object)
        passed = passed.where(passed.notna(), None)
        counts = stage_records(session, passed.to_dict("records"), run_id, special_category=config.special_category)
        outcome.staged["new"] += counts.new
        outcome.staged["changed"] += counts.changed
        outcome.staged["unchanged"] += counts.unchanged
