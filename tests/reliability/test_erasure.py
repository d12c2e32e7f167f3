"""Right to erasure, end to end: a small synthetic council synced by the real pipeline (direct
mode), one person erased, then every file under var/ and every table scanned for their name,
date of birth, NI/NHS number and source keys. Then the source re-sends the record: it must be
refused at staging (quarantined with the erasure's reason), not silently re-imported."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import inspect, select, text
from typer.testing import CliRunner

RESIDENTS, SEED = 200, 31
SOURCES = ["housing", "revenues", "socialcare", "hr"]
REQUEST = "ERASE-2026-0007"


def _people(records: dict[str, list[dict]], truth: list[tuple[str, str, str]]) -> dict[str, list[tuple[str, dict]]]:
    keyed = {}
    key_field = {"housing": "TenantRef", "revenues": "customer_ref", "socialcare": "ClientId", "hr": "EMPNO"}
    for system, recs in records.items():
        for rec in recs:
            keyed[(system, rec[key_field[system]].strip())] = rec
    people: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for system, key, pid in truth:
        people[pid].append((system, keyed[(system, key.strip())]))
    return people


NAME_FIELDS = {"housing": ("Forename", "Surname"), "revenues": ("first_name", "last_name"),
               "socialcare": ("GivenName", "FamilyName"), "hr": ("FORENAMES", "SURNAME")}
DOB_FIELDS = {"housing": "DateOfBirth", "revenues": "dob", "socialcare": "BirthDate", "hr": "DOB"}
NI_FIELDS = {"housing": "NINumber", "revenues": "ni_no", "socialcare": "NINumber", "hr": "NINO"}
KEY_FIELDS = {"housing": "TenantRef", "revenues": "customer_ref", "socialcare": "ClientId", "hr": "EMPNO"}


def _surname(system: str, rec: dict) -> str:
    return (rec[NAME_FIELDS[system][1]] or "").strip().lower()


def _needles(person: list[tuple[str, dict]]) -> dict[str, str]:
    """Lower-case strings that only this person's data contains (chosen so below)."""
    out: dict[str, str] = {}
    for system, rec in person:
        out[f"{system} key"] = rec[KEY_FIELDS[system]].strip().lower()
        out[f"{system} surname"] = _surname(system, rec)
        ni = (rec.get(NI_FIELDS[system]) or "").replace(" ", "").lower()
        if len(ni) >= 8:
            out[f"{system} ni"] = ni[:8]
        dob = (rec.get(DOB_FIELDS[system]) or "").strip()
        if dob:
            out[f"{system} dob"] = dob.lower()
        if rec.get("NHSNumber"):
            out["nhs"] = rec["NHSNumber"].strip()
    return {k: v for k, v in out.items() if len(v) >= 5}


def _choose(people: dict[str, list[tuple[str, dict]]]) -> str:
    """A person in the most systems (social care and HR preferred: XML and fixed-width files)
    whose surname and dates of birth nobody else's records share, so any hit is theirs."""
    surnames: dict[str, set[str]] = defaultdict(set)
    dobs: dict[str, set[str]] = defaultdict(set)
    for pid, recs in people.items():
        for system, rec in recs:
            surnames[_surname(system, rec)].add(pid)
            for part in re.split(r"[\s-]+", _surname(system, rec)):
                surnames[part].add(pid)
            dobs[(rec.get(DOB_FIELDS[system]) or "").strip()].add(pid)

    def unique(pid: str) -> bool:
        return all(surnames[_surname(s, r)] == {pid} and dobs[(r.get(DOB_FIELDS[s]) or "").strip()] == {pid}
                   and len(_surname(s, r)) >= 5 for s, r in people[pid])

    def score(pid: str) -> tuple:
        systems = {s for s, _ in people[pid]}
        return ("socialcare" in systems, "hr" in systems, len(systems), pid)

    return max((pid for pid in people if unique(pid)), key=score)


def _scan_files(var: Path, needles: dict[str, str]) -> list[str]:
    hits = []
    for path in var.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            data = pd.read_parquet(path).to_csv().lower().encode()
        else:
            data = path.read_bytes().lower()
        for what, needle in needles.items():
            if needle.encode("utf-8") in data or needle.encode("cp1252", errors="ignore") in data:
                hits.append(f"{what} in {path.relative_to(var)}")
    return hits


def _scan_tables(engine, needles: dict[str, str]) -> list[str]:  # noqa: ANN001
    hits = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                body = repr(tuple(row)).lower()
                hits += [f"{what} in table {table}" for what, needle in needles.items() if needle in body]
    return hits


@pytest.fixture
def council_index(project: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """The synthetic council synced once through the real pipeline (direct mode)."""
    from joinedup.demo import synthetic_council
    from joinedup.night import run_night
    from joinedup.simulators.council import build_council

    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")
    council = build_council(RESIDENTS, SEED, night=0)
    with synthetic_council(RESIDENTS, SEED, 0, connections="env") as served:
        outcome = run_night(SOURCES, night="night-1", via_airflow=False)
        assert not outcome.failed_sources and not outcome.merge_failed
        yield council, served
    from joinedup.mci.store import _engine_for

    _engine_for.cache_clear()


def test_erased_person_is_gone_everywhere_and_a_resync_is_refused(project: Path, council_index) -> None:  # noqa: ANN001
    from joinedup.cli import app
    from joinedup.mci.store import Person, QuarantinedRow, SourceCursor, SourceRecord, get_engine, session_factory
    from joinedup.night import run_night
    from joinedup.privacy.tombstones import key_hash

    council, _served = council_index
    people = _people(council.records, council.truth)
    pid = _choose(people)
    person = people[pid]
    keys = [(s, r[KEY_FIELDS[s]].strip()) for s, r in person]
    needles = _needles(person)
    var = project / "var"
    with session_factory()() as session:
        masters = {session.scalar(select(SourceRecord.master_id).where(
            SourceRecord.source_system == s, SourceRecord.source_key == k)) for s, k in keys}
    masters.discard(None)
    assert len(masters) == 1, f"the chosen person should be one master ID in the index, got {len(masters)}"
    master_id = masters.pop()
    assert _scan_files(var, needles), "the scan must find the person before the erasure (else it proves nothing)"
    assert _scan_tables(get_engine(), needles)

    result = CliRunner().invoke(app, ["erase", "--master-id", master_id, "--request", REQUEST, "--by", "dpo.test"])
    assert result.exit_code == 0, result.output
    for value in needles.values():
        assert value not in result.output.lower()

    assert _scan_files(var, needles) == []
    assert _scan_tables(get_engine(), needles) == []
    with session_factory()() as session:
        erased = session.get(Person, master_id)
        assert erased.status == "erased" and erased.golden == {}
    # the tombstone: who, when, why, which master ID; the keys only as keyed hashes
    listed = CliRunner().invoke(app, ["erase", "--list"])
    assert listed.exit_code == 0
    assert REQUEST in listed.output and master_id in listed.output and "dpo.test" in listed.output
    from joinedup.privacy.tombstones import list_tombstones

    with session_factory()() as session:
        (stone,) = list_tombstones(session)
    assert set(stone.key_hashes) == {key_hash(s, k) for s, k in keys}
    assert stone.counts["source_records"] == len(keys)
    assert stone.counts["landing_rows"] >= len(keys)  # every record was landed once at least
    in_files = [s for s, _ in keys if s in ("hr", "socialcare")]
    assert in_files, "the chosen person should have a drop-file record (XML or fixed width)"
    assert stone.counts["drop_file_rows"] == len(in_files) and stone.counts["files_deleted"] == 0

    # The next night, a full re-sync of every source (cursors reset): the same source records
    # arrive again and must be refused at staging, with the erasure's reason, not re-imported.
    with session_factory()() as session:
        for cursor in session.scalars(select(SourceCursor)):
            session.delete(cursor)
        session.commit()
    run_night(SOURCES, night="night-2", via_airflow=False)
    with session_factory()() as session:
        staged = [(s, k) for s, k in keys if session.scalar(select(SourceRecord.id).where(
            SourceRecord.source_system == s, SourceRecord.source_key == k))]
        refused = list(session.scalars(select(QuarantinedRow).where(QuarantinedRow.rule == "erased")))
    assert staged == []
    resent = [s for s, _ in keys if s in ("housing", "revenues")]
    assert len(refused) >= len(resent) >= 1
    assert all(REQUEST in q.reason and q.source_key is None for q in refused)
