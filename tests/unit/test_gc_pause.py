"""Batch runs pause Python's cyclic garbage collector and put it back as they found it:
``joinedup link`` (tests/unit/test_link_command.py) and a night's merge (here)."""
from __future__ import annotations

import gc
from pathlib import Path

import pytest

from joinedup.mci.gc_pause import cyclic_gc_paused
from tests.conftest import stage_council_night


def test_paused_inside_on_after_and_an_error_still_puts_it_back() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("a failed run")
    assert gc.isenabled()


def test_a_caller_that_paused_it_keeps_it_paused() -> None:
    gc.disable()
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_nights_merge_runs_with_the_collector_paused(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from joinedup.mci import match
    from joinedup.mci.store import session_factory

    monkeypatch.setenv("JOINEDUP_DB_URL", f"sqlite:///{project / 'var' / 'mci.sqlite'}")
    (project / "var").mkdir(exist_ok=True)
    seen: list[tuple[bool, int]] = []
    monkeypatch.setattr(match, "_match_pending",
                        lambda session, run_id, pending, *args: seen.append((gc.isenabled(), len(pending))))
    with session_factory()() as session:
        staged = stage_council_night(session, 40, 3, 0)
        match.run_match(session, "night-0")
    assert seen == [(False, staged)] and staged > 0
    assert gc.isenabled()
