"""The council's systems' memory: the closed records a real council keeps from before night 0.

Why: a real council holds about 2.5 source records per resident, not 1.0, and the extra
records are not copies; they are history and breadth. Council tax keeps every closed account
(debt recovery goes back six years and more): a resident who moved within the borough has a
closed account at each earlier home, a couple's joint liability gives both adults their own
account there, and people who since left the borough or died keep their closed accounts.
Housing keeps ended tenancies (with their joint tenants), payroll keeps leavers for years (tax
and pension rules) and social care keeps closed cases. These records are the MCI's hardest
ordinary work: linking a resident's old-address, maiden-name records to the new ones.

``RecordHistory`` says how much history the systems hold (a named profile, or your own
rates); the default holds none, so the default council is exactly as without this module.
This module decides the facts (which earlier homes, which dates, what the system knew then)
as ``PastRecord`` values; ``joinedup.simulators.council`` renders them in the systems' own
layouts (their existing closure fields: ``account_closed``/``closure_reason``,
``TenancyEnd``/``TenancyEndReason``, ``LEAVE_DATE``/``LEAVE_REASON``, ``CaseStatus``) with
keys and past timestamps. Past records are closed: later nights never change them.

Everything is drawn with ``stable_unit``/``stable_rng`` from (seed, what, who), per household,
so the history streams (bounded memory at a million residents) and does not depend on the
night built.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta

from joinedup.simulators.lifecycle import Ending
from joinedup.simulators.population import BASE_DATE, Household, PopulationFactory, Resident, \
    random_address, stable_rng, stable_unit, uprn_for

EARLIEST_RECORD = date(1995, 1, 1)
"""The systems' oldest records (the council-tax system went live in the mid-1990s)."""

RETENTION_YEARS = 6
"""How far back the closed records of people no longer here, and payroll leavers, go."""

MAX_EARLIER_HOMES = 4
"""At most this many earlier homes in the borough per household."""

FORMER_PERSON_BASE = 8_000_000
"""Sequence numbers of former residents start here (person ids P8000001...), far above any
resident's or arrival's, so their ids, NI and NHS numbers never collide with a resident's."""

FORMER_PROPERTY_BASE = 1_000_000_000
"""Gazetteer numbers of former residents' last homes (UPRNs apart from residents' homes)."""


@dataclass(frozen=True)
class RecordHistory:
    """How much history the systems keep (rates are probabilities; see the module docstring).

    - ``moved_within``: share of households that lived elsewhere in the borough before their
      current home; ``moved_again``: chance of each further earlier home (up to
      ``MAX_EARLIER_HOMES``); each adult then has a closed council-tax account at each earlier
      home (joint liability: both adults of a couple);
    - ``former_tenancy``: chance that an earlier home was a council tenancy (doubled for
      households renting from the council now): an ended tenancy for each adult there;
    - ``former_residents``: people who left the borough or died in the last
      ``RETENTION_YEARS``, per resident; the systems keep their closed records;
    - ``hr_leavers``: chance that a working-age resident not on the payroll is a kept leaver;
    - ``closed_cases``: chance that a resident unknown to social care has a closed case
      (more for the old).

    ``profile`` names the rates: ``RecordHistory.named("full")``; ``"custom"`` for your own."""

    moved_within: float = 0.0
    moved_again: float = 0.0
    former_tenancy: float = 0.0
    former_residents: float = 0.0
    hr_leavers: float = 0.0
    closed_cases: float = 0.0
    profile: str = "none"

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "profile":
                continue
            rate = getattr(self, f.name)
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
                raise ValueError(f"record history rate {f.name} must be between 0 and 1, got {rate!r}")
        if self.profile != "custom":
            if self.profile not in HISTORY_PROFILES:
                raise ValueError(f"unknown record history profile {self.profile!r}; known: "
                                 f"{', '.join(HISTORY_PROFILES)} (or 'custom' with your own rates)")
            if self._rates() != HISTORY_PROFILES[self.profile]:
                raise ValueError(f"profile {self.profile!r} names fixed rates; to change a rate set "
                                 "profile='custom'")

    def _rates(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "profile"}

    @classmethod
    def named(cls, profile: str) -> RecordHistory:
        """The rates of a named profile: ``none`` (no history, the default council) or
        ``full`` (about 2.5 source records per resident, like a real council's systems)."""
        if profile not in HISTORY_PROFILES:
            raise ValueError(f"unknown record history profile {profile!r}; known: "
                             f"{', '.join(HISTORY_PROFILES)}")
        return cls(**HISTORY_PROFILES[profile], profile=profile)

    @property
    def enabled(self) -> bool:
        return any(self._rates().values())


HISTORY_PROFILES: dict[str, dict[str, float]] = {
    "none": {"moved_within": 0.0, "moved_again": 0.0, "former_tenancy": 0.0,
             "former_residents": 0.0, "hr_leavers": 0.0, "closed_cases": 0.0},
    "full": {"moved_within": 0.75, "moved_again": 0.6, "former_tenancy": 0.12,
             "former_residents": 0.45, "hr_leavers": 0.08, "closed_cases": 0.04},
}
"""Named profiles. ``full`` aims at about 2.5 records per resident: council tax about 1.8,
housing about 0.35, HR about 0.1, social care about 0.07 (see the tests for the measured)."""

NO_HISTORY = RecordHistory()


@dataclass(frozen=True, slots=True)
class PastRecord:
    """One closed record a system keeps: ``known`` is the person as the system recorded them
    then (name, address); ``tag`` tells it apart in seeded draws (noise, habits, timestamp)."""

    system: str
    person_id: str
    tag: tuple
    known: Resident
    opened: date
    ending: Ending
    touched: datetime


def _adult_from(person: Resident) -> date:
    dob = person.date_of_birth
    try:
        return dob.replace(year=dob.year + 18)
    except ValueError:  # 29 February
        return date(dob.year + 18, 3, 1)


def _day_between(seed: int, start: date, end: date, *parts: object) -> date:
    span = max(0, (end - start).days)
    return start + timedelta(days=int(stable_unit(seed, "hist-day", *parts) * span))


def _touched(seed: int, day: date, *parts: object) -> datetime:
    """When the system last wrote the record: a working-day time on its closing day."""
    return datetime.combine(min(day, BASE_DATE - timedelta(days=1)), datetime.min.time()) + \
        timedelta(seconds=8 * 3600 + int(10 * 3600 * stable_unit(seed, "hist-ts", *parts)))


def _as_then(person: Resident, uprn: int, address, married_by: date | None, until: date) -> Resident:  # noqa: ANN001
    """The person as a system knew them at an earlier home: the surname before a marriage
    that came later (``married_by``), no email in records closed before 2008."""
    known = replace(person, uprn=uprn, address=address, previous_uprn=None,
                    previous_address=None, deceased_date=None)
    if married_by is not None and until <= married_by and person.previous_family_names:
        known = replace(known, family_name=person.previous_family_names[-1],
                        previous_family_names=person.previous_family_names[:-1],
                        title="Miss" if person.title == "Mrs" else person.title)
    if until.year < 2008:
        known = replace(known, email=None)
    return known


# --- residents' earlier homes ---------------------------------------------------------------

def _earlier_homes(seed: int, history: RecordHistory, household: Household, moved_in: date
                   ) -> list[tuple[int, object, date, date, bool]]:
    """The household's earlier homes in the borough, oldest first: (uprn, address, from, to,
    council tenancy). The most recent is the former home the systems already know (a stale
    address), when the household has one."""
    hid = household.household_id
    if stable_unit(seed, "hist-moved", hid) >= history.moved_within:
        return []
    count = 1
    while count < MAX_EARLIER_HOMES and stable_unit(seed, "hist-again", hid, count) < history.moved_again:
        count += 1
    head = household.members[0]
    start = max(EARLIEST_RECORD, _adult_from(head))
    years = (moved_in - start).days // 365
    count = min(count, years)
    if count <= 0:
        return []
    cuts = sorted(_day_between(seed, start, moved_in - timedelta(days=180), "cut", hid, j)
                  for j in range(count))
    bounds = cuts + [moved_in]
    number = int(hid[1:])
    tenancy_rate = min(1.0, history.former_tenancy * (2.0 if household.tenure == "council" else 1.0))
    homes = []
    for j in range(count):
        recent = j == count - 1
        if recent and head.previous_address is not None:
            uprn, address = head.previous_uprn, head.previous_address
        else:
            uprn = uprn_for(number + (j + 1) * 100_000_000, space=2)
            address = random_address(stable_rng(seed, "hist-home", hid, j))
        council = stable_unit(seed, "hist-tenancy", hid, j) < tenancy_rate
        homes.append((uprn, address, bounds[j], bounds[j + 1], council))
    return homes


def resident_history(seed: int, history: RecordHistory, household: Household,
                     current_opened) -> Iterator[PastRecord]:  # noqa: ANN001
    """The closed records of a night-0 household's residents. ``current_opened(system,
    person)`` is when their current record there was opened (earlier ones closed by then)."""
    if not history.enabled:
        return
    adults = [m for m in household.members if _adult_from(m) < BASE_DATE]
    if not adults:
        return
    moved_in = current_opened("revenues", adults[0])
    homes = _earlier_homes(seed, history, household, moved_in)
    for person in adults:
        pid = person.person_id
        own_opened = current_opened("revenues", person)
        married_by = None
        if person.previous_family_names:
            married_by = _day_between(seed, max(EARLIEST_RECORD, _adult_from(person)), own_opened,
                                      "married", pid)
        together = person is adults[0] or stable_unit(seed, "hist-together", pid) < 0.8
        for j, (uprn, address, start, end, council) in enumerate(homes):
            opened = max(start, _adult_from(person))
            closed = min(end, own_opened)
            if not together or (closed - opened).days < 60:
                continue
            known = _as_then(person, uprn, address, married_by, closed)
            ending = Ending(0, "moved", closed)
            if stable_unit(seed, "hist-member", "revenues", pid, j) < 0.97:
                yield PastRecord("revenues", pid, ("home", j), known, opened, ending,
                                 _touched(seed, closed, "revenues", pid, j))
            if council:
                yield PastRecord("housing", pid, ("home", j), known, opened, ending,
                                 _touched(seed, closed, "housing", pid, j))
        yield from _breadth(seed, history, person, homes, married_by, household)


def _address_on(person: Resident, homes: list, day: date) -> tuple[int, object]:
    for uprn, address, start, end, _ in homes:
        if start <= day < end:
            return uprn, address
    return person.uprn, person.address


def _breadth(seed: int, history: RecordHistory, person: Resident, homes: list,
             married_by: date | None, household: Household) -> Iterator[PastRecord]:
    """A resident's kept payroll leaver record and closed social-care case, if any (only for
    people without a record there now: ``_is_member``'s draw is not repeated here, so a few
    have both, as in life: a leaver who came back)."""
    pid = person.person_id
    age = person.age_on(BASE_DATE)
    window = BASE_DATE - timedelta(days=365 * RETENTION_YEARS)
    if 24 <= age <= 72 and stable_unit(seed, "hist-leaver", pid) < history.hr_leavers:
        left = _day_between(seed, window, BASE_DATE - timedelta(days=30), "left", pid)
        started = _day_between(seed, max(_adult_from(person), left - timedelta(days=365 * 12)),
                               left - timedelta(days=90), "started", pid)
        uprn, address = _address_on(person, homes, left)
        known = _as_then(person, uprn, address, married_by, left)
        yield PastRecord("hr", pid, ("leaver",), known, started, Ending(0, "left", left),
                         _touched(seed, left, "hr", pid))
    factor = 4.0 if age >= 80 else 2.5 if age >= 65 else 1.0
    if stable_unit(seed, "hist-case", pid) < history.closed_cases * factor:
        closed = _day_between(seed, window, BASE_DATE - timedelta(days=30), "case-closed", pid)
        opened = _day_between(seed, max(closed - timedelta(days=900), EARLIEST_RECORD),
                              closed - timedelta(days=20), "case-opened", pid)
        uprn, address = _address_on(person, homes, closed)
        known = _as_then(person, uprn, address, married_by, closed)
        yield PastRecord("socialcare", pid, ("case",), known, opened, Ending(0, "closed", closed),
                         _touched(seed, closed, "socialcare", pid))


# --- people who left the borough or died ----------------------------------------------------

def former_households(seed: int, history: RecordHistory, residents: int) -> Iterator[Household]:
    """Households of people who lived here in the last ``RETENTION_YEARS`` and have gone
    (moved away or died): about ``former_residents * residents`` people. Their own factory,
    numbered from ``FORMER_PERSON_BASE``, so residents are numbered as without history."""
    wanted = round(residents * history.former_residents)
    if wanted <= 0:
        return
    factory = PopulationFactory(seed + 7_919)
    factory.person_seq = FORMER_PERSON_BASE
    factory.household_seq = FORMER_PERSON_BASE
    factory.gazetteer._seq = FORMER_PROPERTY_BASE  # noqa: SLF001 - a separate run of UPRNs
    yield from factory.households(wanted, random.Random(f"{seed}:former"))


def former_history(seed: int, history: RecordHistory, household: Household,
                   member) -> Iterator[PastRecord]:  # noqa: ANN001
    """The closed records of a household that has gone. ``member(system, person)`` is
    whether the person had a record in that system (the residents' membership rule)."""
    hid = household.household_id
    window = BASE_DATE - timedelta(days=365 * RETENTION_YEARS)
    gone = _day_between(seed, window, BASE_DATE - timedelta(days=14), "gone", hid)
    homes = []
    head = household.members[0]
    moved_in = _day_between(seed, max(EARLIEST_RECORD, _adult_from(head)),
                            gone - timedelta(days=365), "moved-in", hid)
    if stable_unit(seed, "hist-moved", hid) < history.moved_within * 0.5:
        # lived at another home in the borough before the last one
        before = _day_between(seed, max(EARLIEST_RECORD, _adult_from(head)),
                              moved_in - timedelta(days=180), "before", hid)
        if (moved_in - before).days > 180:
            homes.append((uprn_for(int(hid[1:]) + 100_000_000, space=2),
                          random_address(stable_rng(seed, "hist-home", hid, 0)), before, moved_in))
    homes.append((household.uprn, household.address, moved_in, gone))
    for person in household.members:
        pid = person.person_id
        if _adult_from(person) >= gone:
            continue  # a child when the family left: no records of their own
        age = person.age_on(gone)
        died = stable_unit(seed, "hist-died", pid) < (0.6 if age >= 80 else 0.3 if age >= 65 else 0.03)
        end_day = _day_between(seed, gone - timedelta(days=700), gone, "died-on", pid) if died else gone
        if died:
            person = replace(person, deceased_date=end_day)
        married_by = None
        if person.previous_family_names:
            married_by = _day_between(seed, max(EARLIEST_RECORD, _adult_from(person)), gone,
                                      "married", pid)
        for j, (uprn, address, start, end) in enumerate(homes):
            last = j == len(homes) - 1
            opened = max(start, _adult_from(person))
            closed = min(end_day if last else end, end_day)
            if (closed - opened).days < 60:
                continue
            known = _as_then(person, uprn, address, married_by, closed)
            reason = "death" if died and last else "moved"
            ending = Ending(0, reason, closed, end_day if reason == "death" else None)
            for system in ("revenues", "housing"):
                if system == "housing" and not (last and household.tenure == "council"):
                    continue
                if system == "revenues" and not member("revenues", person):
                    continue
                yield PastRecord(system, pid, ("home", j), known, opened, ending,
                                 _touched(seed, closed, system, pid, j))
        last_home = homes[-1]
        known = _as_then(person, last_home[0], last_home[1], married_by, end_day)
        death = end_day if died else None
        if member("hr", person) and person.age_on(end_day) <= 70:
            started = _day_between(seed, max(_adult_from(person), end_day - timedelta(days=365 * 15)),
                                   end_day - timedelta(days=60), "started", pid)
            yield PastRecord("hr", pid, ("leaver",), known, started,
                             Ending(0, "death" if died else "left", end_day, death),
                             _touched(seed, end_day, "hr", pid))
        if member("socialcare", person) or (died and stable_unit(seed, "hist-case", pid) < 0.3):
            opened = _day_between(seed, max(end_day - timedelta(days=1500), EARLIEST_RECORD),
                                  end_day - timedelta(days=20), "case-opened", pid)
            yield PastRecord("socialcare", pid, ("case",), known, opened,
                             Ending(0, "death" if died else "closed", end_day, death),
                             _touched(seed, end_day, "socialcare", pid))
