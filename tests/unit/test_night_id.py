"""Which night a DAG run belongs to: the id that ties one night's source runs and merge together.

The contexts here are built by hand because the case that matters most - a merge the real
scheduler starts on the sources' Asset events - needs a running scheduler; the source DAG's
side (writing the night into the event's extra) runs in every Airflow e2e night."""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from joinedup.airflow_support import NIGHT_EXTRA, night_id, nights_of_events


def _run(run_type: str, conf: dict | None = None, logical: datetime | None = None,
         after: datetime | None = None) -> SimpleNamespace:
    return SimpleNamespace(conf=conf or {}, run_type=run_type, logical_date=logical, run_after=after)


def _event(night: str | None) -> SimpleNamespace:
    return SimpleNamespace(extra={NIGHT_EXTRA: night} if night else {})


def test_an_asset_triggered_merge_takes_the_night_its_events_carry() -> None:
    events = {"joinedup://staging/housing": [_event("night-2026-11-22")],
              "joinedup://staging/hr": [_event("night-2026-11-21"), _event("night-2026-11-22"), _event(None)]}
    context = {"dag_run": _run("asset_triggered"), "run_id": "asset_triggered__2026-11-23T02:00:00",
               "triggering_asset_events": events}
    assert nights_of_events(events) == ["night-2026-11-21", "night-2026-11-22"]
    assert night_id(context) == "night-2026-11-22"  # the latest night that landed


def test_without_a_night_in_its_events_the_merge_keeps_its_run_id() -> None:
    context = {"dag_run": _run("asset_triggered"), "run_id": "asset_triggered__x",
               "triggering_asset_events": {"joinedup://staging/hr": [_event(None)]}}
    assert night_id(context) == "asset_triggered__x"


def test_conf_then_scheduled_date_then_run_id() -> None:
    day = datetime(2026, 1, 5, 2, tzinfo=timezone.utc)
    assert night_id({"dag_run": _run("manual", {"night": "night-7"}), "run_id": "m"}) == "night-7"
    assert night_id({"dag_run": _run("scheduled", logical=day), "run_id": "s"}) == "night-2026-01-05"
    now = datetime(2026, 11, 23, tzinfo=timezone.utc)
    assert night_id({"dag_run": _run("manual", logical=day, after=now), "run_id": "m"}) == "night-2026-01-05"
    assert night_id({"dag_run": _run("manual", logical=now, after=now), "run_id": "manual__now"}) == "manual__now"
