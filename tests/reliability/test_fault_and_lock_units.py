"""The fault switch and the lock's classification, without subprocesses."""
from __future__ import annotations

import pytest


def test_fault_points_are_inert_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from joinedup.faults import POINTS, fault_point

    monkeypatch.delenv("JOINEDUP_FAULT", raising=False)
    for name in POINTS:
        fault_point(name)  # returns: the test process is still alive
    monkeypatch.setenv("JOINEDUP_FAULT", "after-stage")
    fault_point("after-land")  # another point is named: still inert here


def test_an_undeclared_point_in_the_code_is_an_error() -> None:
    from joinedup.faults import fault_point

    with pytest.raises(ValueError, match="not a declared point"):
        fault_point("somewhere-new")


def test_a_refused_run_is_retried_by_airflow_not_failed_or_skipped(project, mci_db: str) -> None:  # noqa: ANN001
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from joinedup.airflow_support import no_retry_for_fatal
    from joinedup.locks import RunLocked, run_lock
    from joinedup.pipeline import land

    (project / "var" / "drops" / "council").mkdir(parents=True, exist_ok=True)
    with run_lock("source:hr", "scheduled__2026-01-05"):
        import threading

        raised: list[BaseException] = []

        def airflow_task() -> None:  # another worker (thread) of the same database
            try:
                no_retry_for_fatal(land, "hr", "manual__2026-01-05")
            except BaseException as exc:  # noqa: BLE001
                raised.append(exc)

        worker = threading.Thread(target=airflow_task)
        worker.start()
        worker.join()
    assert len(raised) == 1 and isinstance(raised[0], RunLocked)
    assert not isinstance(raised[0], (AirflowFailException, AirflowSkipException))
    assert "source hr is already being synced by run scheduled__2026-01-05 since 20" in str(raised[0])


def test_a_paused_point_waits_for_the_go_and_then_goes_on(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    import threading

    from joinedup.faults import fault_point

    monkeypatch.delenv("JOINEDUP_FAULT", raising=False)
    monkeypatch.setenv("JOINEDUP_FAULT_PAUSE", "merge-before-commit")
    fault_point("after-stage")  # another point: no pause, no file
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="JOINEDUP_FAULT_PAUSE_DIR"):
        fault_point("merge-before-commit")
    monkeypatch.setenv("JOINEDUP_FAULT_PAUSE_DIR", str(tmp_path))
    passed = threading.Event()

    def at_the_point() -> None:
        fault_point("merge-before-commit")
        passed.set()

    worker = threading.Thread(target=at_the_point)
    worker.start()
    paused = tmp_path / "merge-before-commit.paused"
    for _ in range(600):
        if paused.exists():
            break
        passed.wait(0.05)
    assert paused.exists() and not passed.is_set()  # standing at the point, waiting
    (tmp_path / "merge-before-commit.go").touch()
    worker.join(30)
    assert passed.is_set()
    monkeypatch.setenv("JOINEDUP_FAULT_PAUSE", "nowhere")
    with pytest.raises(ValueError, match="JOINEDUP_FAULT_PAUSE names unknown fault point"):
        fault_point("after-land")
