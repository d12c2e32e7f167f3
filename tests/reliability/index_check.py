"""The two promises every fault test checks, in one place:

1. ``index_snapshot`` / ``assert_same_index``: after the fault and the run that follows it, the
   MCI equals the index of a clean run, row for row: source records (source, key, content
   hash, master ID, match status, rule), persons (status, merged into, golden record and where
   each golden value came from) and the review queue (by source keys). Row ids and timestamps
   are left out: they differ between any two runs.
2. ``assert_nothing_lost``: every record the source sent is in staging, in quarantine or in a
   rejected file, and so is every row of every landed page.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, aliased

KEY_FIELDS = {"housing": "TenantRef", "revenues": "customer_ref", "socialcare": "ClientId", "hr": "EMPNO"}


@dataclass
class IndexSnapshot:
    source_records: list[tuple]
    persons: list[tuple]
    review_pairs: list[tuple]

    def renamed(self) -> "IndexSnapshot":
        """The same index with master IDs replaced by a name derived from their members (the
        smallest (source, key) linked to them), for comparing runs whose order differed."""
        members: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for source, key, _hash, master, *_ in self.source_records:
            if master:
                members[master].append((source, key))
        name = {m: "M:" + "/".join(min(keys)) for m, keys in members.items()}

        def rn(master: str | None) -> str | None:
            return name.get(master, master) if master else master

        records = sorted((s, k, h, rn(m), *rest) for s, k, h, m, *rest in self.source_records)
        persons = sorted(((rn(m), st, rn(into), g, gs) for m, st, into, g, gs in self.persons), key=repr)
        return IndexSnapshot(records, persons, self.review_pairs)


def index_snapshot(db_url: str) -> IndexSnapshot:
    from joinedup.mci.store import Person, ReviewPair, SourceRecord

    engine = create_engine(db_url)
    try:
        with Session(engine) as session:
            records = sorted(tuple(r) for r in session.execute(select(
                SourceRecord.source_system, SourceRecord.source_key, SourceRecord.content_hash,
                SourceRecord.master_id, SourceRecord.match_status, SourceRecord.link_rule)))
            persons = sorted(((p.master_id, p.status, p.merged_into, json.dumps(p.golden, sort_keys=True),
                               json.dumps(p.golden_sources, sort_keys=True))
                              for p in session.scalars(select(Person))), key=repr)
            left, right = aliased(SourceRecord), aliased(SourceRecord)
            pairs = sorted(tuple(r) for r in session.execute(
                select(left.source_system, left.source_key, right.source_system, right.source_key,
                       ReviewPair.rule, ReviewPair.status)
                .join(left, left.id == ReviewPair.record_id_l).join(right, right.id == ReviewPair.record_id_r)))
    finally:
        engine.dispose()
    return IndexSnapshot(records, persons, pairs)


def assert_same_index(got: IndexSnapshot, clean: IndexSnapshot, *, up_to_renaming: bool = False) -> None:
    """Row for row; with ``up_to_renaming`` master IDs may differ by a consistent renaming."""
    if up_to_renaming:
        got, clean = got.renamed(), clean.renamed()
    assert got.source_records, "the index after the fault has no source records: the recovery run did nothing"
    for part in ("source_records", "persons", "review_pairs"):
        a, b = getattr(got, part), getattr(clean, part)
        if a != b:
            only_got = [row[:2] for row in a if row not in set(b)][:5]
            only_clean = [row[:2] for row in b if row not in set(a)][:5]
            raise AssertionError(f"{part} differ from the clean run: {len(a)} rows vs {len(b)}; first rows only "
                                 f"after the fault: {only_got}; only in the clean run: {only_clean}")


def assert_nothing_lost(db_url: str, var_dir: Path, served: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Every served record (by its key) and every landed row is in staging, quarantine or a
    rejected file. Returns where the served records were found, per place (for the docs)."""
    from joinedup.landing import Manifest, read_landed
    from joinedup.mci.store import QuarantinedRow, SourceRecord

    engine = create_engine(db_url)
    try:
        with Session(engine) as session:
            staged = set(session.execute(select(SourceRecord.source_system, SourceRecord.source_key)).all())
            quarantine = session.execute(select(QuarantinedRow.source_system, QuarantinedRow.source_key,
                                                QuarantinedRow.landing_file, QuarantinedRow.landing_row)).all()
    finally:
        engine.dispose()
    quarantined_keys = {(s, k) for s, k, _f, _r in quarantine}
    quarantined_rows = {(f, r) for _s, _k, f, r in quarantine}
    rejected_text = "".join(p.read_text(encoding="cp1252", errors="replace")
                            for p in var_dir.glob("drops/**/rejected/*") if p.is_file())
    found = {"staging": 0, "quarantine": 0, "rejected": 0}
    missing: list[tuple[str, str]] = []
    for source, records in served.items():
        for record in records:
            key = (record[KEY_FIELDS[source]] or "").strip().upper() if source != "revenues" else record["customer_ref"].strip()
            if (source, key) in staged:
                found["staging"] += 1
            elif (source, key) in quarantined_keys:
                found["quarantine"] += 1
            elif key and key in rejected_text:
                found["rejected"] += 1
            else:
                missing.append((source, key))
    assert not missing, f"{len(missing)} served records are in none of staging, quarantine, rejected files: {missing[:10]}"
    unaccounted = []
    for manifest_path in var_dir.glob("landing/*/*/manifest.json"):
        manifest = Manifest.from_json(json.loads(manifest_path.read_text(encoding="utf-8")))
        source = manifest.source_system
        for item in read_landed(manifest):
            raw_key = item.record.get(KEY_FIELDS[source]) or ""
            key = raw_key.strip() if source == "revenues" else raw_key.strip().upper()
            if (source, key) not in staged and (item.file, item.row) not in quarantined_rows:
                unaccounted.append((source, item.file, item.row))
    assert not unaccounted, f"{len(unaccounted)} landed rows are neither staged nor quarantined: {unaccounted[:10]}"
    return found
