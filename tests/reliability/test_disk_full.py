"""Disk full while landing: the revenues landing folder is a 24 KiB tmpfs, so a page write
really fails with ENOSPC. Landing fails clearly, leaves no half-written file, counts nothing
as landed, does not move the cursor; with space freed the next run completes with the clean
run's index, row for row."""
from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.reliability.conftest import NIGHT
from tests.reliability.index_check import assert_nothing_lost, assert_same_index, index_snapshot


def _mount(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def small_landing_disk(faulty):  # noqa: ANN001, ANN201
    """var/landing/revenues on a tmpfs of 24 KiB (about one and a half pages of 40 records)."""
    folder: Path = faulty.var / "landing" / "revenues"
    folder.mkdir(parents=True, exist_ok=True)
    mounted = _mount(["-t", "tmpfs", "-o", "size=24k,mode=0755", "tmpfs", str(folder)])
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); this test needs root outside a "
                    "locked-down container")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_disk_full_while_landing_fails_clearly_and_the_next_run_completes(faulty, clean_index, small_landing_disk: Path) -> None:  # noqa: ANN001
    from joinedup.mci.store import LandingBatch, Run, SourceCursor, session_factory
    from joinedup.night import run_night
    from joinedup.pipeline import sync_source

    for name in ("housing", "hr"):  # the clean run's order: these come before revenues
        sync_source(name, NIGHT)
    with pytest.raises(OSError) as full:
        sync_source("revenues", NIGHT)
    assert full.value.errno == errno.ENOSPC
    message = str(full.value)
    assert "landing revenues for run night-1 could not write" in message and "cursor is unchanged" in message
    assert not list(small_landing_disk.rglob("*.tmp")), "a half-written file was left behind"
    assert not list(small_landing_disk.rglob("manifest.json")), "an unfinished extract looks landed"
    with session_factory()() as session:
        assert session.scalars(select(LandingBatch).where(LandingBatch.source_system == "revenues")).all() == []
        assert session.get(SourceCursor, "revenues") is None
        land = session.scalars(select(Run).where(Run.run_id == NIGHT, Run.stage == "land:revenues")).one()
        assert land.status == "failed" and "No space left on device" in land.figures["error"]

    # Space is freed (the tmpfs grows, keeping the pages that fitted) and the night runs again.
    grown = _mount(["-o", "remount,size=8m", str(small_landing_disk)])
    assert grown.returncode == 0, grown.stderr
    outcome = run_night(["housing", "hr", "revenues", "socialcare"], night=NIGHT, via_airflow=False)
    assert not outcome.failed_sources and not outcome.merge_failed, outcome.stages
    assert_same_index(index_snapshot(faulty.db_url), clean_index)
    assert_nothing_lost(faulty.db_url, faulty.var, faulty.records)
