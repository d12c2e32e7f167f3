"""A source record's life: when a system opens it, what it learns night by night, how it ends.

Real systems do not delete people when something happens to them; they change a status and
record a date. So, per system:

- revenues (council tax): an account belongs to one property. A move closes it
  (``account_closed``, reason ``moved out``) and opens a new account, with a new reference, at
  the new address; a death closes it with reason ``deceased`` and the ``date_of_death`` the
  Tell Us Once notification gave.
- housing: a tenancy belongs to one property. A move ends it (``TenancyEnd``, reason
  ``MOVED OUT``); moving into council housing starts a new tenancy (new TenantRef); a death ends
  it (``DECEASED``) and records ``DateOfDeath``.
- hr: staff start (``START_DATE``) and leave (``LEAVE_DATE``, ``LEAVE_REASON`` RES/RET/DEC);
  the payroll system keeps a leaver in its extract for ``HR_PURGE_AFTER_NIGHTS`` nights, marks
  the last appearance with ``RECORD_STATUS`` ``P`` (purged after this extract) and then really
  deletes it: the record is absent from later extracts (the truth still names its key).
- socialcare: new referrals open cases; cases close (``CaseStatus`` closed); a death closes
  the case and records ``DateOfDeath``.
- duplicates inside one system (the second record of a person) are updated on their own, less
  reliably than the main record, until a steward in the source system merges them: the
  duplicate is then closed with its system's "duplicate" reason and never changes again.

A system learns of a change (move, marriage, death) on a given night with its
``LEARN_RATE``; a change it missed is retried each later night, so deaths and moves reach
every system eventually, some of them late. Every decision is drawn from ``stable_unit`` on
(seed, what, who, night), so night k is the same whether or not later nights are generated.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from joinedup.simulators.population import Resident, stable_unit

BASE_NIGHT = datetime(2026, 1, 5, 2, 0, 0)
"""When night 0's extract is taken; night k is taken ``k`` days later."""

LEARN_RATE = {"housing": 0.95, "revenues": 0.9, "socialcare": 0.75, "hr": 0.6}
"""Chance that a system hears of a change (move, marriage, death) on a given night."""

DUPLICATE_LEARN_FACTOR = 0.3
"""A forgotten duplicate hears of changes this much less often than the main record."""

HR_PURGE_AFTER_NIGHTS = 3
"""Nights a leaver stays in the HR extract (the last one marked ``P``) before payroll deletes it."""

PER_PROPERTY = frozenset({"housing", "revenues"})
"""Systems whose record belongs to one property: a move ends it rather than updating it."""


def night_datetime(night: int) -> datetime:
    """When night ``night``'s extract is taken."""
    return BASE_NIGHT + timedelta(days=night)


def event_day(night: int) -> date:
    """The day on which things happen between night-1's and night's extracts."""
    return night_datetime(night - 1).date()


@dataclass(frozen=True)
class Ending:
    """How and when a record ended: ``reason`` is one of moved, death, left, closed, duplicate.

    ``night`` is the extract that first shows the end; ``on`` the date the system records."""

    night: int
    reason: str
    on: date
    death: date | None = None


@dataclass(frozen=True)
class Spell:
    """One source record of one person: opened on ``start`` night (0 = before night 0) by
    ``origin`` (base, duplicate, move, starter, referral); ``tag`` tells records apart in
    every seeded draw (0 and 1 are night 0's main record and duplicate)."""

    system: str
    tag: object
    start: int
    origin: str
    opened_on: date | None = None  # when a record opened after a move began (the move day)

    @property
    def duplicate(self) -> bool:
        return self.origin == "duplicate"


@dataclass(frozen=True)
class Step:
    """The record's state on one night: who the system believes the person is, whether the
    record was touched that night, and its ending if it has ended."""

    night: int
    known: Resident
    touched: bool
    ending: Ending | None
    corrected: bool
    purge_notice: bool = False


@dataclass(frozen=True)
class LifeRates:
    """Per-night rates of the joining and leaving that are not driven by the person's life."""

    leavers: float       # per employee: resigns or retires
    starters: float      # per working-age resident without a job at the council
    referrals: float     # per resident not known to social care (scaled by age)
    case_closures: float  # per open social-care case
    duplicate_merges: float  # per duplicate record: a steward merges it away


def _learned(seed: int, spell: Spell, pid: str, night: int) -> bool:
    rate = LEARN_RATE[spell.system] * (DUPLICATE_LEARN_FACTOR if spell.duplicate else 1.0)
    parts = ("learn", spell.system, pid, night) if spell.tag == 0 else \
        ("learn", spell.system, pid, spell.tag, night)
    return stable_unit(seed, *parts) < rate


def walk(seed: int, rates: LifeRates, spell: Spell, pid: str, history: list[Resident],
         first: int, opened_as: Resident, correctable: bool, correction_rate: float
         ) -> Iterator[Step]:
    """The record's steps from its ``spell.start`` night to the last night of ``history``.

    ``history[j - first]`` is the person's truth on night j; ``opened_as`` is what the system
    knew when it opened the record (a duplicate may hold a former address). Stops after the
    night a purged HR record last appears (later nights have no record)."""
    known = opened_as
    ending: Ending | None = None
    corrected = False
    last = first + len(history) - 1
    yield Step(spell.start, known, True, None, False)
    for night in range(spell.start + 1, last + 1):
        truth = history[night - first]
        if ending is not None:
            if spell.system == "hr":
                gone_at = ending.night + HR_PURGE_AFTER_NIGHTS
                if night == gone_at - 1:
                    yield Step(night, known, True, ending, corrected, purge_notice=True)
                    continue
                if night >= gone_at:
                    return
            yield Step(night, known, False, ending, corrected)
            continue
        day = event_day(night)
        learned = _learned(seed, spell, pid, night)
        u = stable_unit(seed, "life-event", spell.system, pid, spell.tag, night)
        if truth.deceased_date is not None and learned:
            ending = Ending(night, "death", truth.deceased_date, truth.deceased_date)
        elif spell.duplicate and u < rates.duplicate_merges:
            ending = Ending(night, "duplicate", day)
        elif spell.system in PER_PROPERTY and not spell.duplicate and \
                truth.uprn != known.uprn and learned:
            moved_on = day
            for j in range(night, first, -1):
                if history[j - first].uprn != history[j - 1 - first].uprn:
                    moved_on = event_day(j)
                    break
            ending = Ending(night, "moved", moved_on)
        elif spell.system == "hr" and u < rates.leavers:
            ending = Ending(night, "left", day)
        elif spell.system == "socialcare" and u < rates.case_closures:
            ending = Ending(night, "closed", day)
        if ending is not None:
            yield Step(night, known, True, ending, corrected)
            continue
        touched = False
        if learned and _differs(truth, known, spell):
            known = _adopt(truth, known, spell)
            touched = True
        if correctable and not corrected and \
                stable_unit(seed, "correct", spell.system, pid, spell.tag, night) < correction_rate:
            corrected = touched = True
        yield Step(night, known, touched, None, corrected)


def _keeps_address(spell: Spell) -> bool:
    """Per-property records and duplicates keep the address they were opened with."""
    return spell.system in PER_PROPERTY or spell.duplicate


def _adopt(truth: Resident, known: Resident, spell: Spell) -> Resident:
    from dataclasses import replace

    if _keeps_address(spell):
        return replace(truth, uprn=known.uprn, address=known.address,
                       previous_uprn=known.previous_uprn, previous_address=known.previous_address,
                       deceased_date=None)
    return replace(truth, deceased_date=None)


def _differs(truth: Resident, known: Resident, spell: Spell) -> bool:
    if truth.family_name != known.family_name or truth.title != known.title:
        return True
    return not _keeps_address(spell) and truth.uprn != known.uprn
