"""The synthetic council's four systems: layouts, truth, noise, nights, streaming writer."""
from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime

import pytest

from joinedup.simulators import (
    BASE_NIGHT, KEY_FIELDS, SYSTEMS, TIMESTAMP_FIELDS, NightlyChanges, NoiseConfig,
    build_council, generate_population, night_datetime, write_council,
)
from joinedup.simulators.council import HR_WIDTHS
from joinedup.simulators.noise import PLACEHOLDER_DOB, abbreviate, typo, windows_1252_form

N = 1500
SEED = 21
LAYOUTS = {
    "housing": ["TenantRef", "Title", "Forename", "Surname", "DateOfBirth", "NINumber",
                "PropertyUPRN", "AddressLine1", "AddressLine2", "Town", "PostCode", "Phone",
                "Email", "TenancyStart", "LastModified", "TenancyEnd", "TenancyEndReason",
                "DateOfDeath"],
    "revenues": ["customer_ref", "title", "first_name", "last_name", "dob", "ni_no", "uprn",
                 "addr_line1", "addr_line2", "addr_line3", "town", "postcode", "email",
                 "phone_number", "account_opened", "modified_at", "account_closed",
                 "closure_reason", "date_of_death"],
    "socialcare": ["ClientId", "GivenName", "FamilyName", "PreferredName", "BirthDate",
                   "NHSNumber", "NINumber", "Gender", "Address1", "Address2", "Town",
                   "Postcode", "CaseStatus", "LastUpdated", "DateOfDeath"],
    "hr": ["EMPNO", "SURNAME", "FORENAMES", "DOB", "SEX", "NINO", "ADDR1", "ADDR2", "TOWN",
           "POSTCODE", "START_DATE", "LAST_CHANGED", "LEAVE_DATE", "LEAVE_REASON",
           "DATE_OF_DEATH", "RECORD_STATUS"],
}
KEY_RE = {"housing": r"HT\d{6}", "revenues": r"5\d{8}", "socialcare": r"SC\d{7}",
          "hr": r"E\d{7}"}


@pytest.fixture(scope="module")
def night0():
    return build_council(N, SEED)


@pytest.fixture(scope="module")
def night1():
    return build_council(N, SEED, night=1)


def _by_key(council, system):
    return {r[KEY_FIELDS[system]]: r for r in council.records[system]}


def _parse_ts(system: str, text: str) -> datetime:
    if system == "hr":
        return datetime.strptime(text, "%Y%m%d%H%M%S")
    return datetime.fromisoformat(text.rstrip("Z"))


def test_records_have_exactly_the_native_layouts(night0):
    for system, layout in LAYOUTS.items():
        assert night0.records[system], system
        for r in night0.records[system]:
            assert list(r) == layout
            assert all(v is None or isinstance(v, str) for v in r.values())
            assert re.fullmatch(KEY_RE[system], r[KEY_FIELDS[system]])


def test_system_formats(night0):
    for r in night0.records["housing"]:
        assert r["DateOfBirth"] is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["DateOfBirth"])
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", r["LastModified"])
    for r in night0.records["revenues"]:
        assert r["dob"] is None or re.fullmatch(r"\d{2}/\d{2}/\d{4}", r["dob"])
        assert r["modified_at"].endswith("Z")
    for r in night0.records["socialcare"]:
        assert r["Gender"] in ("1", "2", "9") and r["CaseStatus"] in ("open", "closed")
    for r in night0.records["hr"]:
        for name, width in HR_WIDTHS.items():
            assert r[name] is None or len(r[name]) <= width, name
        for name in ("SURNAME", "FORENAMES", "ADDR1", "TOWN"):
            assert r[name] == r[name].upper()
        "".join(v for v in r.values() if v).encode("cp1252")   # Windows-1252 safe
        assert re.fullmatch(r"\d{14}", r["LAST_CHANGED"])


def test_same_seed_same_council_other_seed_other_council(night0):
    again = build_council(N, SEED)
    assert again.records == night0.records and again.truth == night0.truth
    other = build_council(N, SEED + 1)
    assert other.records["revenues"] != night0.records["revenues"]


def test_truth_covers_every_record_exactly_once(night0):
    keys = [(s, r[KEY_FIELDS[s]]) for s in SYSTEMS for r in night0.records[s]]
    truth_keys = [(s, k) for s, k, _ in night0.truth]
    assert len(keys) == len(set(keys)) == len(truth_keys)
    assert set(keys) == set(truth_keys)
    people = {p.person_id for p in generate_population(N, SEED)}
    assert {p for _, _, p in night0.truth} <= people


def test_membership_shares(night0):
    persons = Counter(s for s, _, _ in {(s, "", p) for s, _, p in night0.truth})
    adults = sum(1 for p in generate_population(N, SEED) if p.age_on(BASE_NIGHT.date()) >= 18)
    assert 0.9 * adults < persons["revenues"] <= adults
    assert 0.08 * N < persons["housing"] < 0.3 * N
    assert 0.01 * N < persons["socialcare"] < 0.06 * N
    assert 0.02 * N < persons["hr"] < 0.09 * N


def test_duplicates_inside_a_system(night0):
    per_person = Counter((s, p) for s, _, p in night0.truth)
    dups = sum(1 for (s, _), c in per_person.items() if s == "revenues" and c > 1)
    assert dups > 0
    assert max(per_person.values()) == 2


def test_twins_are_known(night0):
    assert night0.twins
    ids = {p.person_id: p for p in generate_population(N, SEED)}
    for pair in night0.twins:
        a, b = (ids[x] for x in pair)
        assert a.twin_of == b.person_id and a.date_of_birth == b.date_of_birth


def test_without_noise_records_equal_the_truth():
    council = build_council(800, SEED, noise=NoiseConfig.none())
    people = {p.person_id: p for p in generate_population(800, SEED)}
    assert len(council.truth) == len({(s, p) for s, _, p in council.truth})  # no duplicates
    housing = _by_key(council, "housing")
    revenues = _by_key(council, "revenues")
    for system, key, pid in council.truth:
        p = people[pid]
        if system == "housing":
            r = housing[key]
            assert (r["Forename"], r["Surname"], r["DateOfBirth"], r["NINumber"],
                    r["PropertyUPRN"]) == (p.given_name, p.family_name,
                                           p.date_of_birth.isoformat(), p.ni_number,
                                           str(p.uprn))
        if system == "revenues":
            r = revenues[key]
            assert r["last_name"] == p.family_name and r["ni_no"] == p.ni_number
            assert r["first_name"].split()[0] == p.given_name.split()[0]
            assert r["dob"] in (None, p.date_of_birth.strftime("%d/%m/%Y"))
            assert r["postcode"] == p.address.postcode


def test_noise_rates_roughly_honoured():
    noise = replace(NoiseConfig.none(), dob_placeholder=0.2, missing_ni=0.1, duplicate=0.1)
    council = build_council(N, SEED, noise=noise)
    housing = council.records["housing"]
    placeholder = sum(r["DateOfBirth"] == PLACEHOLDER_DOB.isoformat() for r in housing)
    assert 0.13 < placeholder / len(housing) < 0.27
    missing = sum(r["NINumber"] is None for r in housing) / len(housing)
    assert 0.12 < missing < 0.28                      # housing's habit doubles the rate
    per_person = Counter((s, p) for s, _, p in council.truth if s == "revenues")
    dup_share = sum(c > 1 for c in per_person.values()) / len(per_person)
    assert 0.1 < dup_share < 0.2                      # revenues' habit: 1.5 x 0.1


def test_default_noise_shows_every_kind(night0):
    people = {p.person_id: p for p in generate_population(N, SEED)}
    revenues = _by_key(night0, "revenues")
    seen = Counter()
    for system, key, pid in night0.truth:
        if system != "revenues":
            continue
        r, p = revenues[key], people[pid]
        if r["last_name"] != p.family_name:
            seen["surname differs"] += 1
        if r["last_name"] in p.previous_family_names:
            seen["maiden"] += 1
        if r["dob"] == "01/01/1900":
            seen["placeholder"] += 1
        if r["ni_no"] is None:
            seen["no NI"] += 1
        if re.search(r"\b(St|Rd|Ave|Cl|Dr)\b", r["addr_line1"] or ""):
            seen["abbreviated"] += 1
    assert all(seen[k] > 0 for k in ("surname differs", "maiden", "placeholder", "no NI",
                                     "abbreviated")), seen
    assert seen["surname differs"] < 0.2 * len(revenues)


def test_noise_functions():
    import random

    rng = random.Random(1)
    assert typo("Margaret", rng) != "Margaret"
    assert windows_1252_form("O'Brien") == "O\u2019Brien"
    assert windows_1252_form("Zoe") == "Zoë"
    assert abbreviate("14 High Street", rng) == "14 High St"
    assert abbreviate("Flat 2, 14 Station Road", random.Random(3)).endswith("14 Station Rd")
    with pytest.raises(ValueError, match="typo"):
        NoiseConfig(typo=1.5)


def test_night_zero_timestamps_are_before_the_base_night(night0):
    for system in SYSTEMS:
        for r in night0.records[system]:
            assert _parse_ts(system, r[TIMESTAMP_FIELDS[system]]) < BASE_NIGHT


def test_next_night_changes_few_records_and_keeps_the_rest_byte_identical(night0, night1):
    changed = total = 0
    for system in SYSTEMS:
        before, after = _by_key(night0, system), _by_key(night1, system)
        assert set(before) <= set(after)                  # keys are stable, nothing lost
        for key, old in before.items():
            new = after[key]
            total += 1
            if json.dumps(new, ensure_ascii=False) == json.dumps(old, ensure_ascii=False):
                continue
            changed += 1
            ts = _parse_ts(system, new[TIMESTAMP_FIELDS[system]])
            assert night_datetime(0) < ts < night_datetime(1)
        for key in set(after) - set(before):          # new residents' records
            ts = _parse_ts(system, after[key][TIMESTAMP_FIELDS[system]])
            assert night_datetime(0) < ts < night_datetime(1)
    assert 0 < changed < 0.05 * total
    old_truth = set(night0.truth)
    assert old_truth <= set(night1.truth)                 # same key, same person
    assert night1.residents > night0.residents           # arrivals


def test_later_nights_keep_earlier_changes_stable(night1):
    night2 = build_council(N, SEED, night=2)
    for system in SYSTEMS:
        before, after = _by_key(night1, system), _by_key(night2, system)
        kept = [k for k in before if after[k] == before[k]]
        assert len(kept) > 0.9 * len(before)
        for key in set(after):
            if key not in before or after[key] != before[key]:
                ts = _parse_ts(system, after[key][TIMESTAMP_FIELDS[system]])
                assert night_datetime(1) < ts < night_datetime(2)


BUSY = NightlyChanges(arrivals=0.01, moves=0.05, marriages=0.03, deaths=0.02, corrections=0.05,
                      leavers=0.05, starters=0.01, referrals=0.005, case_closures=0.05,
                      duplicate_merges=0.3)


@pytest.fixture(scope="module")
def busy_nights():
    return {k: build_council(N, SEED, night=k, changes=BUSY) for k in (0, 2, 6)}


def test_moves_close_the_old_account_and_open_a_new_one(busy_nights):
    before, after = busy_nights[0], busy_nights[2]
    old, new = _by_key(before, "revenues"), _by_key(after, "revenues")
    person = {key: pid for system, key, pid in after.truth if system == "revenues"}
    moved_out = [k for k in old if new[k]["closure_reason"] == "moved out"]
    assert moved_out
    for k in moved_out:
        assert new[k]["postcode"] == old[k]["postcode"]        # the old account keeps its address
        assert new[k]["account_closed"] is not None and new[k]["date_of_death"] is None
        # the same person's next account was opened on the day they moved (and may itself
        # have been closed by a second move); the latest one is open
        others = [r for key, r in new.items() if person[key] == person[k] and key not in old]
        if others:
            assert any(r["account_opened"] == new[k]["account_closed"] for r in others)
            assert any(r["account_closed"] is None for r in others)
    opened_later = [k for k in new if k not in old and person[k] in {person[m] for m in moved_out}]
    assert opened_later
    renamed = sum(1 for k in old if old[k]["last_name"] != new[k]["last_name"])
    assert renamed > 0
    assert after.records == build_council(N, SEED, night=2, changes=BUSY).records


def test_deaths_reach_every_system_in_its_own_way(busy_nights):
    night = busy_nights[6]
    dead = {"housing": ("TenancyEndReason", "DECEASED", "DateOfDeath"),
            "revenues": ("closure_reason", "deceased", "date_of_death"),
            "socialcare": ("CaseStatus", "closed", "DateOfDeath"),
            "hr": ("LEAVE_REASON", "DEC", "DATE_OF_DEATH")}
    for system, (field, value, date_field) in dead.items():
        died = [r for r in night.records[system] if r[date_field]]
        assert died, system
        assert all(r[field] == value for r in died), system
    # the date the systems state is the same true date (revenues writes DD/MM/YYYY)
    person = {(s, k): p for s, k, p in night.truth}
    dates = defaultdict(set)
    for r in night.records["housing"]:
        if r["DateOfDeath"]:
            dates[person[("housing", r["TenantRef"])]].add(r["DateOfDeath"])
    for r in night.records["revenues"]:
        if r["date_of_death"]:
            d, m, y = r["date_of_death"].split("/")
            dates[person[("revenues", r["customer_ref"])]].add(f"{y}-{m}-{d}")
    assert dates and all(len(v) == 1 for v in dates.values())


def test_death_dates_map_to_the_canonical_deceased_date(busy_nights):
    from pathlib import Path

    from joinedup.mapping.engine import map_records
    from joinedup.mapping.spec import load_mapping

    night = busy_nights[6]
    mappings = Path(__file__).resolve().parents[2] / "mappings"
    for system in SYSTEMS:
        frame = map_records(night.records[system], load_mapping(mappings / f"{system}.yaml"), system)
        assert frame["deceased_date"].notna().sum() > 0, system
        assert frame["deceased_date"].dropna().str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
        assert (frame["mapping_issues"] == "").all(), system


def test_people_join_and_leave_systems_across_nights(busy_nights):
    before, after = busy_nights[0], busy_nights[6]
    person = {(s, k): p for s, k, p in after.truth}
    for system in ("housing", "socialcare", "hr"):  # revenues: see the moves test
        old_people = {person[(system, r[KEY_FIELDS[system]])] for r in before.records[system]}
        joined = [r for r in after.records[system]
                  if person[(system, r[KEY_FIELDS[system]])] in
                  {p for s, k, p in before.truth}  # people already there on night 0
                  and person[(system, r[KEY_FIELDS[system]])] not in old_people]
        assert joined, f"nobody already living here joined {system}"
    hr = after.records["hr"]
    leavers = [r for r in hr if r["LEAVE_DATE"]]
    assert leavers and {r["LEAVE_REASON"] for r in leavers} >= {"RES"}
    assert all(r["RECORD_STATUS"] in ("L", "P") for r in leavers)
    assert all(r["RECORD_STATUS"] == "A" for r in hr if not r["LEAVE_DATE"])
    assert any(r["TenancyEndReason"] == "MOVED OUT" for r in after.records["housing"])
    assert any(r["CaseStatus"] == "closed" and not r["DateOfDeath"]
               for r in after.records["socialcare"])


def test_hr_purges_leavers_after_a_notice_and_the_truth_keeps_their_keys(busy_nights):
    after = busy_nights[6]
    present = {r["EMPNO"] for r in after.records["hr"]}
    truth_keys = {k for s, k, _ in after.truth if s == "hr"}
    purged = truth_keys - present
    assert purged, "no HR leaver was purged in six busy nights"
    night5 = build_council(N, SEED, night=5, changes=BUSY)
    notices = {r["EMPNO"]: r for r in night5.records["hr"] if r["RECORD_STATUS"] == "P"}
    assert set(notices) == purged - {k for s, k, _ in night5.truth if s == "hr"} | \
        (purged & set(notices))
    assert purged & set(notices)              # each purge was announced the night before
    for r in notices.values():
        assert r["LEAVE_DATE"] and r["LEAVE_REASON"]
    # nothing else disappears: every other system keeps every key it ever issued
    for system in ("housing", "revenues", "socialcare"):
        assert {r[KEY_FIELDS[system]] for r in after.records[system]} == \
            {k for s, k, _ in after.truth if s == system}


def test_duplicates_change_on_their_own_and_are_merged_away(busy_nights):
    before, after = busy_nights[0], busy_nights[6]
    person = {(s, k): p for s, k, p in after.truth}
    merged = changed = 0
    for system in SYSTEMS:
        by_person = defaultdict(list)
        for r in before.records[system]:
            by_person[person[(system, r[KEY_FIELDS[system]])]].append(r[KEY_FIELDS[system]])
        old, new = _by_key(before, system), _by_key(after, system)
        for keys in by_person.values():
            if len(keys) < 2:
                continue
            dup = keys[1]                     # the second record made is the duplicate
            if dup not in new:
                continue
            if new[dup] != old[dup]:
                changed += 1
            merged += new[dup].get("closure_reason") == "duplicate account" or \
                new[dup].get("TenancyEndReason") == "DUPLICATE RECORD" or \
                new[dup].get("LEAVE_REASON") == "DUP"
    assert changed > 0 and merged > 0


def test_nightly_change_rates_are_checked():
    with pytest.raises(ValueError, match="leavers"):
        NightlyChanges(leavers=1.5)


def test_streaming_writer_equals_build_council(tmp_path, night1):
    manifest = write_council(tmp_path, N, SEED, night=1)
    for system in SYSTEMS:
        lines = (tmp_path / f"{system}.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == night1.records[system]
    with open(tmp_path / "truth.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["source_system", "source_key", "person_id"]
    assert [tuple(r) for r in rows[1:]] == night1.truth
    with open(tmp_path / "twins.csv", encoding="utf-8", newline="") as fh:
        twins = {frozenset(r) for r in list(csv.reader(fh))[1:]}
    assert twins == night1.twins
    assert manifest["records"] == {s: len(night1.records[s]) for s in SYSTEMS}
    assert manifest["as_of"] == "2026-01-06T02:00:00"
    assert json.loads((tmp_path / "manifest.json").read_text())["residents"] == night1.residents


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="night"):
        build_council(10, 1, night=-1)


def test_scaled_change_rates_leave_night_0_alone_and_change_less_on_night_1() -> None:
    from joinedup.simulators.council import NightlyChanges, build_council

    half = NightlyChanges().scaled(0.5)
    assert half.moves == NightlyChanges().moves * 0.5 and half.arrivals == NightlyChanges().arrivals * 0.5
    assert build_council(400, 5, night=0).records == build_council(400, 5, night=0, changes=half).records
    base0 = build_council(400, 5, night=0).records

    def changed(changes: NightlyChanges) -> int:
        night1 = build_council(400, 5, night=1, changes=changes).records
        before = {(s, json.dumps(r, sort_keys=True)) for s, rs in base0.items() for r in rs}
        return sum((s, json.dumps(r, sort_keys=True)) not in before for s, rs in night1.items() for r in rs)

    assert changed(NightlyChanges().scaled(0.0)) == 0
    assert 0 < changed(NightlyChanges().scaled(3.0))
    with pytest.raises(ValueError, match="change-rate scale"):
        NightlyChanges().scaled(-1)
