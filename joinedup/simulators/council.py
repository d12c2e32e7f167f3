"""The synthetic council: its four systems' native records and the ground truth behind them.

``build_council(n, seed, noise, night)`` returns every system's records (in exactly the
native layouts the adapters read) and the truth: which person each (system, key) is.
``write_council(out_dir, ...)`` writes the same thing as files, streaming, for a million
residents in bounded memory.

Who is where (decided once, when the person appears; stable afterwards):
- revenues (council tax): about 97% of adults, plus duplicate accounts;
- housing: the adults of council-rented households (about a fifth of households);
- socialcare: about 3% of residents, mostly the old and some children;
- hr: about 8% of working-age adults (about 5% of residents).

The nights. Night 0 is the extract taken at ``BASE_NIGHT`` (2026-01-05T02:00:00, UTC: the
council's clock; January has no summer time). Night k is taken k days later. Between night
k-1 and night k (timestamps 08:00-22:00 of the day after night k-1) the council changes:
new residents arrive (new households), households move, people marry and take a new surname,
die, and stewards correct some noisy records. Each system learns of a change with its own
probability (HR often misses a move). A record that did not change keeps its timestamp and
its bytes exactly, so incremental syncs see only the changes. A night compresses weeks of
real change, so that a test of a thousand residents sees a few events of every kind.

Everything is deterministic from ``seed``: night k's data do not depend on whether nights
after k were generated, and source keys are stable per (system, person) across nights.
"""
from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from joinedup.simulators import reference_data as ref
from joinedup.simulators.noise import CLEAN, NoiseConfig, NoisyPerson, RecordNoise, \
    apply_noise, check_rates, draw_noise, wants_duplicate
from joinedup.simulators.history import NO_HISTORY, PastRecord, RecordHistory, former_history, \
    former_households, resident_history
from joinedup.simulators.lifecycle import BASE_NIGHT, Ending, LifeRates, Spell, \
    event_day, night_datetime, walk
from joinedup.simulators.population import BASE_DATE, Household, PopulationFactory, Resident, \
    ascii_fold, random_address, stable_rng, stable_unit, uprn_for, _permute

SYSTEMS: tuple[str, ...] = ("housing", "revenues", "socialcare", "hr")
KEY_FIELDS = {"housing": "TenantRef", "revenues": "customer_ref", "socialcare": "ClientId",
              "hr": "EMPNO"}
TIMESTAMP_FIELDS = {"housing": "LastModified", "revenues": "modified_at",
                    "socialcare": "LastUpdated", "hr": "LAST_CHANGED"}
HR_WIDTHS = {"EMPNO": 8, "SURNAME": 30, "FORENAMES": 30, "DOB": 8, "SEX": 1, "NINO": 9,
             "ADDR1": 40, "ADDR2": 40, "TOWN": 30, "POSTCODE": 8, "START_DATE": 8,
             "LAST_CHANGED": 14, "LEAVE_DATE": 8, "LEAVE_REASON": 3, "DATE_OF_DEATH": 8,
             "RECORD_STATUS": 1}
"""Field widths of the HR fixed-width extract (records are already cut to fit)."""

@dataclass(frozen=True)
class NightlyChanges:
    """What happens between two nights, as rates per household (moves), per resident (the
    rest) or per noisy record (corrections); arrivals are new residents as a share of n.

    Joining and leaving a system (see ``joinedup.simulators.lifecycle``): ``leavers`` per
    employee, ``starters`` per working-age resident not on the payroll, ``referrals`` per
    resident unknown to social care (more for the old), ``case_closures`` per open case,
    ``duplicate_merges`` per duplicate record (a steward in the source system closes it)."""

    arrivals: float = 0.005
    moves: float = 0.005
    marriages: float = 0.001
    deaths: float = 0.0005
    corrections: float = 0.003
    leavers: float = 0.004
    starters: float = 0.0003
    referrals: float = 0.0002
    case_closures: float = 0.01
    duplicate_merges: float = 0.05

    def __post_init__(self) -> None:
        check_rates(self, "nightly change rate")

    def scaled(self, factor: float) -> "NightlyChanges":
        """Every rate times ``factor`` (0.5: half as much happens each night). Night 0 does not
        depend on the rates, so a benchmark can pick the share of records its next night
        changes without changing the first build."""
        if not factor >= 0:
            raise ValueError(f"a change-rate scale must be a number >= 0, not {factor!r}")
        return NightlyChanges(**{f.name: getattr(self, f.name) * factor for f in fields(self)})

    def life_rates(self) -> LifeRates:
        return LifeRates(self.leavers, self.starters, self.referrals, self.case_closures,
                         self.duplicate_merges)


@dataclass
class Council:
    """The systems' records on one night, and the truth about them.

    ``records``: system -> native records (dicts in the system's layout, values str/None).
    ``truth``: (source_system, source_key, person_id), one row per record, including records
    the system has since deleted (HR purges leavers; the hub keeps them, so the truth does).
    ``twins``: pairs of person_ids who are twins (never to be merged).
    """

    records: dict[str, list[dict]]
    truth: list[tuple[str, str, str]]
    twins: set[frozenset[str]]
    night: int
    as_of: datetime
    residents: int = 0
    former_residents: int = 0


# --- source keys ---------------------------------------------------------------------------

_KEY_FORMATS = {  # prefix, digits, multiplier, offset: a bijection scatters the numbers
    "housing": ("HT", 6, 7_919, 104_729), "revenues": ("5", 8, 73_687_871, 31_415_926),
    "socialcare": ("SC", 7, 3_141_593, 2_718_281), "hr": ("E", 7, 2_718_283, 1_414_213),
}


LATER_NIGHTS = 200
"""Nights for which records opened after their person appeared get keys (see KeyAllocator)."""


class KeyAllocator:
    """Issues each system's record keys, stable across nights.

    Records made when their person first appears take numbers in order of creation from the
    lower half of the key space: the same order every time the council is built. Records
    opened later for people already there (a new account after a move, a starter, a new
    referral) take numbers from a block per night in the upper half, in stream order: night
    j's block depends only on nights up to j, so building night j+1 does not renumber them.
    Closed records from before night 0 (``RecordHistory``) count down from the top of the
    lower half, so the residents' current records keep the keys they have without history."""

    def __init__(self) -> None:
        self._issued = dict.fromkeys(SYSTEMS, 0)
        self._history = dict.fromkeys(SYSTEMS, 0)
        self._later: dict[tuple[str, int], int] = {}

    @staticmethod
    def _key(system: str, number: int) -> str:
        prefix, digits, multiplier, offset = _KEY_FORMATS[system]
        return prefix + f"{_permute(number, 10**digits, multiplier, offset):0{digits}d}"

    def next_key(self, system: str) -> str:
        digits = _KEY_FORMATS[system][1]
        self._issued[system] += 1
        if self._issued[system] + self._history[system] >= 10**digits // 2:
            raise OverflowError(f"{system} has run out of {digits}-digit keys; use fewer residents"
                                " or less record history")
        return self._key(system, self._issued[system])

    def history_key(self, system: str) -> str:
        """A key for a record closed before night 0 (counting down from the lower half's top)."""
        digits = _KEY_FORMATS[system][1]
        self._history[system] += 1
        if self._issued[system] + self._history[system] >= 10**digits // 2:
            raise OverflowError(f"{system} has run out of {digits}-digit keys for its closed "
                                "records; use fewer residents or less record history")
        return self._key(system, 10**digits // 2 - self._history[system])

    def later_key(self, system: str, night: int) -> str:
        digits = _KEY_FORMATS[system][1]
        half = 10**digits // 2
        block = half // LATER_NIGHTS
        if not 1 <= night <= LATER_NIGHTS:
            raise OverflowError(f"records opened on night {night}: keys exist for nights 1-{LATER_NIGHTS}")
        count = self._later.get((system, night), 0)
        if count >= block:
            raise OverflowError(f"{system} opened more than {block} records on night {night}; "
                                "use fewer residents or lower NightlyChanges rates")
        self._later[(system, night)] = count + 1
        return self._key(system, half + (night - 1) * block + count)


# --- the systems' formats ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _RecordContext:
    """Facts about one record that are not about the person: when the account/tenancy began,
    whether the case is open, and a seed for the system's fixed habits for this record."""

    opened: date
    habit_seed: int
    case_open: bool
    ending: Ending | None = None
    purge_notice: bool = False


_FLAT_SPLIT = re.compile(r"^(Flat \d+), (.+)$")


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _death(ctx: _RecordContext) -> date | None:
    return ctx.ending.death if ctx.ending else None


_HOUSING_END = {"moved": "MOVED OUT", "death": "DECEASED", "duplicate": "DUPLICATE RECORD"}
_REVENUES_END = {"moved": "moved out", "death": "deceased", "duplicate": "duplicate account"}


def _housing(p: NoisyPerson, ctx: _RecordContext) -> dict:
    h = random.Random(ctx.habit_seed)
    no_space, has_email = h.random() < 0.05, h.random() < 0.7
    a = p.address
    m = _FLAT_SPLIT.match(a.line1)
    line1, line2 = (m.group(1), m.group(2)) if m else (a.line1, a.line2)
    return {
        "TenantRef": None, "Title": p.title, "Forename": p.given_name, "Surname": p.family_name,
        "DateOfBirth": _iso(p.date_of_birth), "NINumber": p.ni_number,
        "PropertyUPRN": str(p.uprn) if p.uprn else None, "AddressLine1": line1,
        "AddressLine2": line2, "Town": a.town,
        "PostCode": a.postcode.replace(" ", "") if no_space else a.postcode,
        "Phone": p.phone, "Email": p.email if has_email else None,
        "TenancyStart": ctx.opened.isoformat(), "LastModified": None,
        "TenancyEnd": _iso(ctx.ending.on) if ctx.ending else None,
        "TenancyEndReason": _HOUSING_END[ctx.ending.reason] if ctx.ending else None,
        "DateOfDeath": _iso(_death(ctx)),
    }


def _revenues(p: NoisyPerson, ctx: _RecordContext) -> dict:
    h = random.Random(ctx.habit_seed)
    with_middle, no_dob, no_uprn, intl_phone = (h.random() < 0.15, h.random() < 0.03,
                                                h.random() < 0.1, h.random() < 0.3)
    first = p.given_name
    if with_middle and p.middle_names:
        first = f"{first} {p.middle_names}"
    dob = None if no_dob or p.date_of_birth is None else p.date_of_birth.strftime("%d/%m/%Y")
    phone = p.phone
    if phone and intl_phone and phone.startswith("07"):
        phone = "+44 " + phone[1:]
    a = p.address
    return {
        "customer_ref": None, "title": p.title, "first_name": first, "last_name": p.family_name,
        "dob": dob, "ni_no": p.ni_number, "uprn": None if no_uprn or not p.uprn else str(p.uprn),
        "addr_line1": a.line1, "addr_line2": a.line2, "addr_line3": None, "town": a.town,
        "postcode": a.postcode, "email": p.email, "phone_number": phone,
        "account_opened": ctx.opened.isoformat(), "modified_at": None,
        "account_closed": _iso(ctx.ending.on) if ctx.ending else None,
        "closure_reason": _REVENUES_END[ctx.ending.reason] if ctx.ending else None,
        "date_of_death": _death(ctx).strftime("%d/%m/%Y") if _death(ctx) else None,
    }


def _socialcare(p: NoisyPerson, ctx: _RecordContext) -> dict:
    h = random.Random(ctx.habit_seed)
    not_stated, no_nhs = h.random() < 0.01, h.random() < 0.05
    a = p.address
    return {
        "ClientId": None, "GivenName": p.given_name, "FamilyName": p.family_name,
        "PreferredName": p.preferred_name, "BirthDate": _iso(p.date_of_birth),
        "NHSNumber": None if no_nhs else p.nhs_number, "NINumber": p.ni_number,
        "Gender": "9" if not_stated else {"M": "1", "F": "2"}.get(p.sex, "9"),
        "Address1": a.line1, "Address2": a.line2, "Town": a.town, "Postcode": a.postcode,
        "CaseStatus": "open" if ctx.case_open and ctx.ending is None else "closed",
        "LastUpdated": None, "DateOfDeath": _iso(_death(ctx)),
    }


def _cp1252(text: str | None, width: int) -> str | None:
    """Upper case, characters Windows-1252 lacks folded (Ł -> L, Ŵ -> W), cut to width."""
    if not text:
        return None
    out = []
    for c in text.upper():
        try:
            c.encode("cp1252")
            out.append(c)
        except UnicodeEncodeError:
            out.append(ascii_fold(c).upper() or "?")
    return "".join(out)[:width].rstrip() or None


def _hr(p: NoisyPerson, ctx: _RecordContext) -> dict:
    a = p.address
    forenames = f"{p.given_name} {p.middle_names}".strip()
    w = HR_WIDTHS
    return {
        "EMPNO": None, "SURNAME": _cp1252(p.family_name, w["SURNAME"]),
        "FORENAMES": _cp1252(forenames, w["FORENAMES"]),
        "DOB": p.date_of_birth.strftime("%Y%m%d") if p.date_of_birth else None,
        "SEX": p.sex if p.sex in ("M", "F") else None, "NINO": p.ni_number,
        "ADDR1": _cp1252(a.line1, w["ADDR1"]), "ADDR2": _cp1252(a.line2, w["ADDR2"]),
        "TOWN": _cp1252(a.town, w["TOWN"]), "POSTCODE": a.postcode,
        "START_DATE": ctx.opened.strftime("%Y%m%d"), "LAST_CHANGED": None,
        "LEAVE_DATE": ctx.ending.on.strftime("%Y%m%d") if ctx.ending else None,
        "LEAVE_REASON": _hr_reason(ctx.ending, p) if ctx.ending else None,
        "DATE_OF_DEATH": _death(ctx).strftime("%Y%m%d") if _death(ctx) else None,
        "RECORD_STATUS": "P" if ctx.purge_notice else "L" if ctx.ending else "A",
    }


def _hr_reason(ending: Ending, p: NoisyPerson) -> str:
    """Payroll leaver codes: DEC deceased, DUP duplicate record, RET retired, RES resigned."""
    if ending.reason in ("death", "duplicate"):
        return {"death": "DEC", "duplicate": "DUP"}[ending.reason]
    dob = p.date_of_birth
    age = ending.on.year - dob.year if dob and dob.year > 1900 else 0
    return "RET" if age >= 60 else "RES"


_RENDER = {"housing": _housing, "revenues": _revenues, "socialcare": _socialcare, "hr": _hr}


def _format_timestamp(system: str, ts: datetime) -> str:
    if system == "hr":
        return ts.strftime("%Y%m%d%H%M%S")
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    return text + "Z" if system == "revenues" else text


# --- membership ----------------------------------------------------------------------------

def _is_member(seed: int, system: str, person: Resident, household: Household,
               on: date) -> bool:
    """Whether ``person`` has a record in ``system`` when they first appear."""
    age = person.age_on(on)
    u = stable_unit(seed, "member", system, person.person_id)
    if system == "revenues":
        return age >= 18 and u < 0.97
    if system == "housing":
        return age >= 18 and household.tenure == "council"
    if system == "hr":
        return 18 <= age <= 66 and u < 0.08
    if system == "socialcare":
        return u < (0.15 if age >= 80 else 0.07 if age >= 65 else 0.02 if age < 18 else 0.008)
    raise ValueError(f"unknown system {system!r}; known: {', '.join(SYSTEMS)}")


# --- the nights ----------------------------------------------------------------------------

def _change_time(seed: int, night: int, *parts: object) -> datetime:
    """A moment between night-1's and night's extracts (08:00-22:00 of the day between)."""
    start = night_datetime(night - 1) + timedelta(hours=6)
    return start + timedelta(seconds=int(stable_unit(seed, "when", night, *parts) * 14 * 3600))


def _evolve(seed: int, changes: NightlyChanges, household_number: int, household_id: str,
            members: tuple[Resident, ...], night: int) -> tuple[Resident, ...]:
    """The household on ``night``, given how it was the night before."""
    day = night_datetime(night - 1).date()
    out = list(members)
    alive = [m for m in out if m.deceased_date is None]
    if alive and stable_unit(seed, "move", household_id, night) < changes.moves:
        address = random_address(stable_rng(seed, "move-to", household_id, night))
        uprn = uprn_for(household_number * 1000 + night, space=1)
        out = [m if m.deceased_date else
               replace(m, previous_uprn=m.uprn, previous_address=m.address, uprn=uprn,
                       address=address) for m in out]
    for i, m in enumerate(out):
        if m.deceased_date is not None:
            continue
        age = m.age_on(day)
        death = changes.deaths * (6.0 if age >= 75 else 2.0 if age >= 60 else 0.2)
        u = stable_unit(seed, "life", m.person_id, night)
        if u < death:
            out[i] = replace(m, deceased_date=day)
        elif 20 <= age <= 60 and u < death + changes.marriages:
            rng = stable_rng(seed, "marriage", m.person_id, night)
            new = ref.surnames(m.background).pick(rng)
            new = ref.feminine_surname(new) if m.sex == "F" else new
            if new != m.family_name:
                title = "Mrs" if m.sex == "F" and m.title in ("Miss", "Ms") else m.title
                out[i] = replace(m, family_name=new, title=title,
                                 previous_family_names=(*m.previous_family_names,
                                                        m.family_name))
    return tuple(out)


# --- the whole council, streamed ----------------------------------------------------------

@dataclass
class _Stream:
    """Counts made while streaming (for the manifest and tests)."""

    residents: int = 0
    records: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SYSTEMS, 0))
    former_residents: int = 0


def iter_council(n: int, seed: int, noise: NoiseConfig = NoiseConfig(), night: int = 0,
                 changes: NightlyChanges = NightlyChanges(), stats: _Stream | None = None,
                 history: RecordHistory = NO_HISTORY) -> Iterator[tuple[str, object, object]]:
    """Stream the council as events: ``("record", system, (record, person_id))``,
    ``("gone", system, (source_key, person_id))`` for a record the system has deleted (HR
    purges leavers; the truth keeps the key, the hub must too) and
    ``("twins", person_a, person_b)``. ``build_council``/``write_council`` consume it.
    ``history``: the closed records kept from before night 0 (none by default)."""
    if not isinstance(history, RecordHistory):
        raise TypeError(f"history must be a RecordHistory, got {type(history).__name__}")
    if night < 0:
        raise ValueError(f"night must be 0 or more, got {night}")
    if n < 0:
        raise ValueError(f"population size must be 0 or more, got {n}")
    stats = stats if stats is not None else _Stream()
    factory = PopulationFactory(seed)
    keys = KeyAllocator()
    streams = [(0, factory.households(n, random.Random(f"{seed}:base")))]
    for k in range(1, night + 1):
        arrivals = round(n * changes.arrivals)
        streams.append((k, factory.households(arrivals, stable_rng(seed, "arrivals", k))))
    for created, households in streams:
        for household in households:
            stats.residents += len(household.members)
            yield from _household_events(seed, noise, changes, night, created, household,
                                         keys, stats, past=history)
        if created == 0 and history.enabled:
            yield from _former_events(seed, noise, n, history, keys, stats)


def _render_past(seed: int, config: NoiseConfig, past: PastRecord, keys: KeyAllocator) -> dict:
    """A closed record from before night 0 in its system's layout, with key and timestamp."""
    system, pid = past.system, past.person_id
    noise = draw_noise(config, seed, system, pid, past.tag)
    habit_seed = int(stable_unit(seed, "habit", system, pid, past.tag) * 2**32)
    ctx = _RecordContext(past.opened, habit_seed, False, past.ending)
    record = _RENDER[system](apply_noise(past.known, noise), ctx)
    record[KEY_FIELDS[system]] = keys.history_key(system)
    record[TIMESTAMP_FIELDS[system]] = _format_timestamp(system, past.touched)
    return record


def _past_events(seed: int, config: NoiseConfig, pasts, keys: KeyAllocator, stats: _Stream  # noqa: ANN001
                 ) -> Iterator[tuple[str, object, object]]:
    for past in pasts:
        record = _render_past(seed, config, past, keys)
        stats.records[past.system] += 1
        yield ("record", past.system, (record, past.person_id))


def _former_events(seed: int, noise: NoiseConfig, n: int, history: RecordHistory,
                   keys: KeyAllocator, stats: _Stream) -> Iterator[tuple[str, object, object]]:
    """The people who left the borough or died before night 0, and the closed records the
    systems keep of them (their truth persons exist; they are not residents)."""
    on = night_datetime(0).date()
    for household in former_households(seed, history, n):
        stats.former_residents += len(household.members)
        for person in household.members:
            if person.twin_of and person.person_id < person.twin_of:
                yield ("twins", person.person_id, person.twin_of)

        def member(system: str, person: Resident, household: Household = household) -> bool:
            return _is_member(seed, system, person, household, on)

        yield from _past_events(seed, noise, former_history(seed, history, household, member),
                                keys, stats)


_NEW_COUNCIL_HOME = {"council": 0.3, "owner": 0.08, "private_rent": 0.15}
"""Chance that a household moving from this tenure gets a council tenancy at its new home."""


def _tenures(seed: int, household: Household, story: list[tuple[Resident, ...]],
             created: int) -> list[str]:
    """The household's tenure on each night of ``story`` (a move may change it)."""
    out = [household.tenure]
    for k in range(1, len(story)):
        moved = any(a.uprn != b.uprn for a, b in zip(story[k], story[k - 1]))
        tenure = out[-1]
        if moved:
            council = stable_unit(seed, "tenure", household.household_id, created + k) < \
                _NEW_COUNCIL_HOME[tenure]
            tenure = "council" if council else "owner" if tenure == "owner" else "private_rent"
        out.append(tenure)
    return out


def _household_events(seed: int, noise: NoiseConfig, changes: NightlyChanges, night: int,
                      created: int, household: Household, keys: KeyAllocator, stats: _Stream,
                      past: RecordHistory = NO_HISTORY) -> Iterator[tuple[str, object, object]]:
    household_number = int(household.household_id[1:])
    story = [household.members]
    for k in range(created + 1, night + 1):
        story.append(_evolve(seed, changes, household_number, household.household_id,
                             story[-1], k))
    tenures = _tenures(seed, household, story, created)
    on = night_datetime(created).date()
    for i, person in enumerate(household.members):
        if person.twin_of and person.person_id < person.twin_of:
            yield ("twins", person.person_id, person.twin_of)
        history = [members[i] for members in story]
        for system in SYSTEMS:
            member = _is_member(seed, system, person, household, on)
            spells = _spells(seed, changes, system, history, tenures, created, member,
                             wants_duplicate(noise, seed, system, person.person_id))
            for spell, record in spells:
                key = keys.next_key(system) if spell.start == created else \
                    keys.later_key(system, spell.start)
                if record is None:  # deleted by the source system: the key is still true
                    yield ("gone", system, (key, person.person_id))
                    continue
                record = _render_spell(seed, noise, changes, spell, history, created, record)
                record[KEY_FIELDS[system]] = key
                stats.records[system] += 1
                yield ("record", system, (record, person.person_id))
    if created == 0 and past.enabled:
        def current_opened(system: str, person: Resident) -> date:
            return _opened(seed, system, person, 0, 0)

        yield from _past_events(seed, noise, resident_history(seed, past, household, current_opened),
                                keys, stats)


def _spells(seed: int, changes: NightlyChanges, system: str, history: list[Resident],
            tenures: list[str], created: int, member: bool, duplicate: bool
            ) -> list[tuple[Spell, object]]:
    """Every record ``system`` holds for this person up to the last night of ``history``,
    with its steps (or None when the system deleted it), ordered so that keys are issued in
    the same order whichever night is built."""
    rates = changes.life_rates()
    pid = history[0].person_id
    last = created + len(history) - 1
    todo: list[tuple[Spell, Resident]] = []
    if member:
        todo.append((Spell(system, 0, created, "base"), history[0]))
        if duplicate:
            todo.append((Spell(system, 1, created, "duplicate"), history[0]))
    else:
        start = _first_start(seed, rates, system, history, tenures, created)
        if start is not None:
            origin = {"hr": "starter", "socialcare": "referral"}.get(system, "move")
            todo.append((Spell(system, ("start", start), start, origin), history[start - created]))
    out: list[tuple[Spell, object]] = []
    while todo:
        spell, opened_as = todo.pop(0)
        steps = list(walk(seed, rates, spell, pid, history, created, opened_as,
                          correctable=True, correction_rate=changes.corrections))
        out.append((spell, steps if steps[-1].night == last else None))
        ending = steps[-1].ending
        if ending is not None and ending.reason == "moved" and \
                _follows_on(seed, system, history[ending.night - created], tenures[ending.night - created],
                            ending.night):
            todo.append((Spell(system, ("move", ending.night), ending.night, "move", ending.on),
                         history[ending.night - created]))
    return out


def _follows_on(seed: int, system: str, person: Resident, tenure: str, night: int) -> bool:
    """Whether a record closed by a move is followed by a new one at the new home."""
    if person.deceased_date is not None or person.age_on(event_day(night)) < 18:
        return False
    return tenure == "council" if system == "housing" else True


def _first_start(seed: int, rates: LifeRates, system: str, history: list[Resident],
                 tenures: list[str], created: int) -> int | None:
    """The night a person without a record joins ``system``, if they do (at most once)."""
    pid = history[0].person_id
    for k in range(1, len(history)):
        night, person = created + k, history[k]
        if person.deceased_date is not None:
            return None
        age = person.age_on(event_day(night))
        u = stable_unit(seed, "join", system, pid, night)
        if system == "housing":
            moved = person.uprn != history[k - 1].uprn
            if moved and age >= 18 and tenures[k] == "council":
                return night
        elif system == "hr":
            if 18 <= age <= 66 and u < rates.starters:
                return night
        elif system == "socialcare":
            if u < rates.referrals * (8.0 if age >= 80 else 3.0 if age >= 65 else 1.0):
                return night
    return None


def _opened(seed: int, system: str, person: Resident, created: int, copy: object) -> date:
    """When the tenancy/account/employment began (before the person's first night)."""
    if created > 0:
        return night_datetime(created - 1).date()
    adult_from = person.date_of_birth.replace(year=person.date_of_birth.year + 18) \
        if not (person.date_of_birth.month == 2 and person.date_of_birth.day == 29) \
        else date(person.date_of_birth.year + 18, 3, 1)
    earliest = max(adult_from, BASE_DATE - timedelta(days=25 * 365), date(1995, 1, 1))
    span = (BASE_DATE - timedelta(days=2) - earliest).days
    if span <= 0:
        return BASE_DATE - timedelta(days=2)
    return earliest + timedelta(days=int(stable_unit(seed, "opened", system, person.person_id,
                                                     copy) * span))


def _render_spell(seed: int, config: NoiseConfig, changes: NightlyChanges, spell: Spell,
                  history: list[Resident], created: int, steps: list) -> dict:
    """The record as it stands after its last step, with its timestamp."""
    system, tag = spell.system, spell.tag
    first = history[0]
    pid = first.person_id
    noise: RecordNoise = draw_noise(config, seed, system, pid, tag)
    opened = _opened(seed, system, first, created, tag) if spell.start == created else \
        spell.opened_on or event_day(spell.start)
    habit_seed = int(stable_unit(seed, "habit", system, pid, tag) * 2**32)
    case_open = spell.start > created or stable_unit(seed, "case", pid, tag) < 0.7
    last_change, record = spell.start, None
    dup_address = (first.uprn, first.address)  # where a duplicate was opened (kept for ever)
    for step in steps:
        if not step.touched:
            continue
        known = step.known
        if step.night == spell.start and spell.duplicate and first.previous_address is not None \
                and stable_unit(seed, "dup-stale", system, pid) < 0.5:
            # A forgotten second record, often opened at the former address.
            known = replace(known, uprn=first.previous_uprn, address=first.previous_address)
        elif spell.duplicate and record is not None:
            known = replace(known, uprn=dup_address[0], address=dup_address[1])
        if step.night == spell.start:
            dup_address = (known.uprn, known.address)
        ctx = _RecordContext(opened, habit_seed, case_open, step.ending, step.purge_notice)
        new = _RENDER[system](apply_noise(known, CLEAN if step.corrected else noise), ctx)
        if new != record:
            record, last_change = new, step.night
    assert record is not None
    if last_change == 0:
        # Last touched on a working day between the account opening and night 0.
        days = max(0, (BASE_NIGHT.date() - timedelta(days=1) - opened).days)
        day = opened + timedelta(days=int(days * stable_unit(seed, "ts0", system, pid, tag)))
        ts = datetime.combine(day, datetime.min.time()) + timedelta(
            seconds=8 * 3600 + int(10 * 3600 * stable_unit(seed, "ts0-time", system, pid, tag)))
    else:
        ts = _change_time(seed, last_change, system, pid, tag)
    record[TIMESTAMP_FIELDS[system]] = _format_timestamp(system, ts)
    return record


# --- the two ways to get a council -------------------------------------------------------

def build_council(n: int, seed: int, noise: NoiseConfig = NoiseConfig(), night: int = 0,
                  changes: NightlyChanges = NightlyChanges(),
                  history: RecordHistory = NO_HISTORY) -> Council:
    """The council of ``n`` residents (plus arrivals) on ``night``, held in memory.

    ``history``: the closed records the systems keep from before night 0
    (``RecordHistory.named("full")``: about 2.5 records per resident; default none).
    Fine for tens of thousands of residents; use ``write_council`` for more.
    """
    records: dict[str, list[dict]] = {s: [] for s in SYSTEMS}
    truth: list[tuple[str, str, str]] = []
    twins: set[frozenset[str]] = set()
    stats = _Stream()
    for kind, a, b in iter_council(n, seed, noise, night, changes, stats, history):
        if kind == "twins":
            twins.add(frozenset((a, b)))
        elif kind == "gone":
            truth.append((a, *b))
        else:
            record, person_id = b
            records[a].append(record)
            truth.append((a, record[KEY_FIELDS[a]], person_id))
    return Council(records, truth, twins, night, night_datetime(night), stats.residents,
                   stats.former_residents)


TRUTH_FILE = "truth.csv"
TWINS_FILE = "twins.csv"
MANIFEST_FILE = "manifest.json"


def write_council(out_dir: str | Path, n: int, seed: int, noise: NoiseConfig = NoiseConfig(),
                  night: int = 0, changes: NightlyChanges = NightlyChanges(),
                  history: RecordHistory = NO_HISTORY) -> dict:
    """Write ``<system>.jsonl`` (one native record per line, UTF-8), ``truth.csv``
    (source_system,source_key,person_id), ``twins.csv`` (person_id_a,person_id_b) and
    ``manifest.json`` into ``out_dir``, streaming. Returns the manifest (with ``history`` and
    ``former_residents`` only when the council keeps record history)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stats = _Stream()
    twins_count = 0
    files = {s: open(out / f"{s}.jsonl", "w", encoding="utf-8", newline="\n") for s in SYSTEMS}
    try:
        with open(out / TRUTH_FILE, "w", encoding="utf-8", newline="") as truth_fh, \
                open(out / TWINS_FILE, "w", encoding="utf-8", newline="") as twins_fh:
            truth_csv, twins_csv = csv.writer(truth_fh), csv.writer(twins_fh)
            truth_csv.writerow(("source_system", "source_key", "person_id"))
            twins_csv.writerow(("person_id_a", "person_id_b"))
            for kind, a, b in iter_council(n, seed, noise, night, changes, stats, history):
                if kind == "twins":
                    twins_csv.writerow((a, b))
                    twins_count += 1
                elif kind == "gone":
                    truth_csv.writerow((a, *b))
                else:
                    record, person_id = b
                    files[a].write(json.dumps(record, ensure_ascii=False) + "\n")
                    truth_csv.writerow((a, record[KEY_FIELDS[a]], person_id))
    finally:
        for fh in files.values():
            fh.close()
    manifest = {
        "n": n, "seed": seed, "night": night, "as_of": night_datetime(night).isoformat(),
        "base_night": BASE_NIGHT.isoformat(), "residents": stats.residents,
        "records": stats.records, "twin_pairs": twins_count, "noise": asdict(noise),
        "changes": asdict(changes),
    }
    if history.enabled:
        manifest["history"] = asdict(history)
        manifest["former_residents"] = stats.former_residents
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
