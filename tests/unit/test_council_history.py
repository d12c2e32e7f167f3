"""The council's record history (``RecordHistory``): closed records from before night 0 that
take the council from about 1.0 to about 2.5 source records per resident."""
from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime

import pytest

from joinedup.simulators import (
    BASE_NIGHT, KEY_FIELDS, SYSTEMS, TIMESTAMP_FIELDS, NightlyChanges, RecordHistory,
    build_council, night_datetime, write_council,
)
from joinedup.simulators.history import FORMER_PERSON_BASE

N = 1500
SEED = 21
FULL = RecordHistory.named("full")
KEY_RE = {"housing": r"HT\d{6}", "revenues": r"5\d{8}", "socialcare": r"SC\d{7}",
          "hr": r"E\d{7}"}
CLOSED = {"housing": "TenancyEnd", "revenues": "account_closed", "hr": "LEAVE_DATE"}


@pytest.fixture(scope="module")
def plain():
    return build_council(N, SEED)


@pytest.fixture(scope="module")
def full0():
    return build_council(N, SEED, history=FULL)


@pytest.fixture(scope="module")
def full1():
    return build_council(N, SEED, night=1, history=FULL)


def _by_key(council, system):
    return {r[KEY_FIELDS[system]]: r for r in council.records[system]}


def _owner(council):
    return {(s, k): p for s, k, p in council.truth}


def _parse_ts(system: str, text: str) -> datetime:
    if system == "hr":
        return datetime.strptime(text, "%Y%m%d%H%M%S")
    return datetime.fromisoformat(text.rstrip("Z"))


def _day(system: str, text: str) -> date:
    return datetime.strptime(text, "%Y%m%d").date() if system == "hr" else date.fromisoformat(text)


def test_the_default_council_has_no_history_and_is_unchanged(plain):
    same = build_council(N, SEED, history=RecordHistory())
    assert same.records == plain.records and same.truth == plain.truth
    assert same.former_residents == 0 and not RecordHistory().enabled
    assert RecordHistory.named("none") == RecordHistory()


def test_residents_current_records_are_the_same_with_history(plain, full0):
    """History adds records; it does not renumber or alter the residents' current ones."""
    for system in SYSTEMS:
        with_history = _by_key(full0, system)
        for key, record in _by_key(plain, system).items():
            assert with_history[key] == record
    assert set(plain.truth) <= set(full0.truth)
    assert plain.twins <= full0.twins
    assert full0.residents == plain.residents


def test_full_profile_holds_about_two_and_a_half_records_per_resident(plain, full0):
    per_resident = {s: len(full0.records[s]) / full0.residents for s in SYSTEMS}
    total = sum(per_resident.values())
    assert 2.2 <= total <= 2.8, per_resident
    assert 1.6 <= per_resident["revenues"] <= 2.2
    assert 0.25 <= per_resident["housing"] <= 0.5
    assert 0.07 <= per_resident["hr"] <= 0.2
    assert 0.04 <= per_resident["socialcare"] <= 0.12
    plain_total = sum(len(plain.records[s]) for s in SYSTEMS) / plain.residents
    assert plain_total < 1.2
    assert full0.former_residents == round(N * FULL.former_residents)


def test_every_history_record_is_in_its_layout_and_in_the_truth_once(plain, full0):
    owner = _owner(full0)
    assert len(owner) == len(full0.truth)          # one truth row per key
    for system in SYSTEMS:
        layout = list(plain.records[system][0])
        for r in full0.records[system]:
            assert list(r) == layout
            assert re.fullmatch(KEY_RE[system], r[KEY_FIELDS[system]])
            assert (system, r[KEY_FIELDS[system]]) in owner


def test_history_records_are_closed_and_dated_in_the_past(plain, full0):
    old = {(s, k) for s, k, _ in plain.truth}
    counts = Counter()
    for system in SYSTEMS:
        for r in full0.records[system]:
            if (system, r[KEY_FIELDS[system]]) in old:
                continue
            counts[system] += 1
            ts = _parse_ts(system, r[TIMESTAMP_FIELDS[system]])
            assert ts < BASE_NIGHT
            if system == "socialcare":
                assert r["CaseStatus"] == "closed"
                continue
            opened = {"housing": "TenancyStart", "revenues": "account_opened",
                      "hr": "START_DATE"}[system]
            closed = _day(system, r[CLOSED[system]])
            assert _day(system, r[opened]) < closed <= ts.date()
            if system == "hr":
                assert r["RECORD_STATUS"] == "L" and r["LEAVE_REASON"] in ("RES", "RET", "DEC")
            else:
                reason = r["closure_reason" if system == "revenues" else "TenancyEndReason"]
                assert reason in ("moved out", "deceased", "MOVED OUT", "DECEASED")
    assert all(counts[s] > 0 for s in SYSTEMS), counts


def test_earlier_homes_closed_before_the_current_account_opened(plain, full0):
    """A resident who moved within the borough has a closed account at each earlier home,
    each closed by the time the next (and finally the current) one opened."""
    owner = _owner(full0)
    current = defaultdict(list)   # a person's current account (and any duplicate of it)
    for r in plain.records["revenues"]:
        current[owner[("revenues", r["customer_ref"])]].append(r)
    keys_now = {r["customer_ref"] for rs in current.values() for r in rs}
    closed_by_person = defaultdict(list)
    for r in full0.records["revenues"]:
        pid = owner[("revenues", r["customer_ref"])]
        if pid in current and r["customer_ref"] not in keys_now:
            assert r["account_closed"] and r["closure_reason"] == "moved out"
            closed_by_person[pid].append(r)
    assert len(closed_by_person) > 0.3 * len(current)
    for pid, closed in closed_by_person.items():
        opened_now = max(date.fromisoformat(r["account_opened"]) for r in current[pid])
        for r in closed:
            assert date.fromisoformat(r["account_closed"]) <= opened_now
        spells = sorted((r["account_opened"], r["account_closed"]) for r in closed)
        for (_, end), (start, _) in zip(spells, spells[1:]):
            assert end <= start                    # one home after another


def test_joint_liability_and_maiden_names(full0):
    """Both adults of a couple have their own closed account at an earlier home; a woman who
    married since is on her old accounts under her earlier surname."""
    owner = _owner(full0)
    people_at = defaultdict(set)
    surnames = defaultdict(set)
    for r in full0.records["revenues"]:
        if r["account_closed"] and r["uprn"]:
            people_at[r["uprn"]].add(owner[("revenues", r["customer_ref"])])
        surnames[owner[("revenues", r["customer_ref"])]].add(r["last_name"])
    assert sum(1 for people in people_at.values() if len(people) >= 2) > 20
    assert sum(1 for names in surnames.values() if len(names) >= 2) > 20


def test_people_who_left_or_died_keep_their_closed_records(full0):
    owner = _owner(full0)
    former = {p for p in owner.values() if int(p[1:]) > FORMER_PERSON_BASE}
    assert len(former) > 0.5 * full0.former_residents   # their children have no records
    reasons = Counter()
    for system in SYSTEMS:
        for r in full0.records[system]:
            if owner[(system, r[KEY_FIELDS[system]])] in former:
                if system == "revenues":
                    reasons[r["closure_reason"]] += 1
                    assert r["account_closed"] is not None
                    if r["closure_reason"] == "deceased":
                        assert r["date_of_death"] is not None
                elif system == "housing":
                    assert r["TenancyEnd"] is not None
                elif system == "socialcare":
                    assert r["CaseStatus"] == "closed"
                else:
                    assert r["LEAVE_DATE"] is not None
    assert reasons["moved out"] > 0 and reasons["deceased"] > 0


def test_history_records_never_change_on_later_nights_and_keys_are_stable(full0, full1):
    changed = 0
    for system in SYSTEMS:
        before, after = _by_key(full0, system), _by_key(full1, system)
        assert set(before) <= set(after)
        for key, old in before.items():
            if old != after[key]:
                changed += 1
                ts = _parse_ts(system, after[key][TIMESTAMP_FIELDS[system]])
                assert night_datetime(0) < ts < night_datetime(1)
    assert 0 < changed < 0.03 * sum(len(full0.records[s]) for s in SYSTEMS)
    assert set(full0.truth) <= set(full1.truth)
    # the same night's history whether or not later nights are built
    night2 = build_council(N, SEED, night=2, history=FULL)
    old = _by_key(full1, "revenues")
    assert sum(1 for k, r in _by_key(night2, "revenues").items() if old.get(k) == r) > 0.97 * len(old)


def test_a_move_adds_a_closed_account_with_history_on():
    busy = NightlyChanges(moves=0.1)
    before = build_council(400, SEED, history=FULL, changes=busy)
    after = build_council(400, SEED, night=2, history=FULL, changes=busy)
    old = _by_key(before, "revenues")
    closed_now = [k for k, r in _by_key(after, "revenues").items()
                  if k in old and r["closure_reason"] == "moved out" and old[k]["account_closed"] is None]
    assert closed_now
    assert len(after.records["revenues"]) > len(before.records["revenues"])


def test_streaming_writer_equals_build_council_with_history(tmp_path, full1):
    manifest = write_council(tmp_path, N, SEED, night=1, history=FULL)
    for system in SYSTEMS:
        lines = (tmp_path / f"{system}.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == full1.records[system]
    with open(tmp_path / "truth.csv", encoding="utf-8", newline="") as fh:
        assert [tuple(r) for r in list(csv.reader(fh))[1:]] == full1.truth
    assert manifest["history"]["profile"] == "full"
    assert manifest["former_residents"] == full1.former_residents
    plain = write_council(tmp_path / "plain", 50, SEED)
    assert "history" not in plain and "former_residents" not in plain


def test_history_settings_are_checked():
    with pytest.raises(ValueError, match="moved_within"):
        RecordHistory(moved_within=1.5, profile="custom")
    with pytest.raises(ValueError, match="former_residents"):
        RecordHistory(former_residents="lots", profile="custom")
    with pytest.raises(ValueError, match="unknown record history profile"):
        RecordHistory.named("everything")
    with pytest.raises(ValueError, match="unknown record history profile"):
        RecordHistory(profile="everything")
    with pytest.raises(ValueError, match="profile='custom'"):
        RecordHistory(**{**FULL.__dict__, "moved_within": 0.1})
    custom = RecordHistory(former_residents=0.2, profile="custom")
    assert custom.enabled
    council = build_council(200, SEED, history=custom)
    assert council.former_residents == 40
    with pytest.raises(TypeError, match="RecordHistory"):
        build_council(10, SEED, history="full")


def test_the_demo_council_serves_the_history_it_is_asked_for(project):
    from joinedup.demo import council_dir, synthetic_council

    expected = build_council(150, SEED, history=FULL)
    with synthetic_council(150, SEED, 0, connections="env", history="full") as served:
        assert served["history"] == "full"
        assert served["former_residents"] == expected.former_residents > 0
        assert served["records"] == {s: len(expected.records[s]) for s in SYSTEMS}
        with open(council_dir() / "truth.csv", encoding="utf-8", newline="") as fh:
            assert len(list(csv.reader(fh))) == len(expected.truth) + 1
    with pytest.raises(ValueError, match="unknown record history profile"):
        with synthetic_council(150, SEED, 0, connections="env", history="everything"):
            pass


def test_simulate_generate_takes_the_history_profile(tmp_path):
    from typer.testing import CliRunner

    from joinedup.cli.simulate import simulate_app

    runner = CliRunner()
    done = runner.invoke(simulate_app, ["generate", "--out", str(tmp_path), "--residents", "120",
                                        "--seed", str(SEED), "--history", "full"])
    assert done.exit_code == 0, done.output
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["history"]["profile"] == "full" and manifest["former_residents"] > 0
    refused = runner.invoke(simulate_app, ["generate", "--out", str(tmp_path / "x"), "--residents", "10",
                                           "--history", "everything"])
    assert refused.exit_code != 0 and "everything" in refused.output


def test_joinedup_run_refuses_an_unknown_history_before_serving_anything(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from joinedup.cli import app

    monkeypatch.setenv("JOINEDUP_VAR", str(tmp_path / "var"))
    refused = CliRunner().invoke(app, ["run", "--direct", "--residents", "100", "--history", "everything"])
    assert refused.exit_code == 2 and "unknown record history profile 'everything'" in refused.output
    assert not (tmp_path / "var" / "council").exists()
