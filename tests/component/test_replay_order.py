"""Replaying an old night never rolls back what a later night delivered.

Three real nights of a CSV drop source through the pipeline, on both stores: night 2 and
night 3 change the same record. Replaying night 2 alone keeps night 3's values; replaying every
night gives what was there; a record nobody re-delivered IS re-staged from the replayed night
(the point of a replay after a mapping fix); and an old failure that a later night fixed at
source does not come back into the steward's queue."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import csv_drop_source, drop_file

CHANGING, ONLY_NIGHT_1, BAD_DATE, BAD_NI = "500000001", "500000003", "500000007", "500000008"
NIGHT_EMAIL = {"night-2": "night2@example.org", "night-3": "night3@example.org"}


@pytest.fixture(autouse=True)
def csv_source(project: Path) -> None:
    csv_drop_source(project, max_failure_rate=0.3, only=True)


def _later_night(project: Path, night: str, name: str, *, fix_ni: bool) -> None:
    """A delta file: the changing record with this night's email, and (night 2) the record
    with the bad NI number corrected at source."""
    path = drop_file(project, "revenues", "revenues_small.csv", name)
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    keep = []
    for row in rows:
        key = row.split(",", 1)[0]
        if key == CHANGING:
            keep.append(row.replace("bill@example.org", NIGHT_EMAIL[night]))
        elif key == BAD_NI and fix_ni:
            keep.append(row.replace("QQ123456C", "JG103761C"))
    path.write_text("\n".join([header, *keep]) + "\n", encoding="utf-8")


def _three_nights(project: Path) -> None:
    from joinedup.pipeline import sync_source

    drop_file(project, "revenues", "revenues_small.csv", "revenues_20260105.csv")
    sync_source("revenues", "night-1")
    _later_night(project, "night-2", "revenues_20260106.csv", fix_ni=True)
    sync_source("revenues", "night-2")
    _later_night(project, "night-3", "revenues_20260107.csv", fix_ni=False)
    sync_source("revenues", "night-3")


def _stored() -> dict[str, tuple]:
    from joinedup.mci.store import SourceRecord, session_factory

    with session_factory()() as session:
        return {r.source_key: (r.content_hash, r.last_run_id, r.match_status, r.record)
                for r in session.scalars(select(SourceRecord).where(SourceRecord.source_system == "revenues"))}


def _open_entries() -> list[tuple[str, str]]:
    from joinedup.mci.store import QuarantinedRow, session_factory

    with session_factory()() as session:
        return sorted((q.source_key, q.run_id) for q in session.scalars(
            select(QuarantinedRow).where(QuarantinedRow.status == "open")))


def test_replaying_a_middle_night_keeps_the_later_nights_values(project: Path, mci_db: str) -> None:
    from joinedup.pipeline import replay

    _three_nights(project)
    before = _stored()
    assert before[CHANGING][3]["email"] == NIGHT_EMAIL["night-3"] and before[CHANGING][1] == "night-3"

    out = replay("revenues", "replay-2", nights=["night-2"])

    assert out["kept_newer"] == 1 and out["changed"] == 0
    assert _stored() == before  # night 3's email stands; nothing rolled back or set pending


def test_replaying_every_night_in_order_changes_nothing(project: Path, mci_db: str) -> None:
    from joinedup.pipeline import replay

    _three_nights(project)
    before, open_before = _stored(), _open_entries()
    out = replay("revenues", "replay-all")
    assert out["batches_replayed"] == 3
    assert _stored() == before
    assert _open_entries() == [(key, "night-1") for key, _ in open_before]  # the same failures, reopened by the replay
    assert [key for key, _ in open_before] == [BAD_DATE]


def test_a_replay_after_a_mapping_fix_restages_what_nobody_redelivered(project: Path, mci_db: str) -> None:
    from joinedup.pipeline import replay

    _three_nights(project)
    mapping = project / "mappings" / "revenues.yaml"
    text = mapping.read_text(encoding="utf-8")
    assert "town:           {from: town, transform: trim}" in text
    mapping.write_text(text.replace("town:           {from: town, transform: trim}",
                                    "town:           {from: town, transform: [trim, upper]}"), encoding="utf-8")
    before = _stored()

    out = replay("revenues", "replay-fix", nights=["night-1"])

    after = _stored()
    assert after[ONLY_NIGHT_1][3]["town"] == "CARDIFF" and after[ONLY_NIGHT_1][2] == "pending"
    assert before[ONLY_NIGHT_1][3]["town"] == "Cardiff"
    assert after[CHANGING] == before[CHANGING]  # night 3 delivered it later: kept
    assert out["kept_newer"] == 1  # the changing record (night 1's bad NI number fails again: quarantined)


def test_an_old_failure_fixed_on_a_later_night_does_not_reopen(project: Path, mci_db: str) -> None:
    from joinedup.pipeline import replay

    _three_nights(project)
    assert _open_entries() == [(BAD_DATE, "night-1")]  # the NI failure closed when night 2 fixed it

    out = replay("revenues", "replay-1", nights=["night-1"])

    # The bad date was never delivered again: its failure is still open (re-made by the
    # replay). The bad NI number was fixed and staged by night 2: its old failure stays shut.
    assert _open_entries() == [(BAD_DATE, "night-1")]
    assert out["superseded"] == 1
    assert _stored()[BAD_NI][3]["ni_number"] == "JG103761C"
