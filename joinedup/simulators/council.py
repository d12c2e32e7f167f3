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
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from joinedup.simulators import reference_data as ref
from joinedup.simulators.noise import CLEAN, NoiseConfig, NoisyPerson, RecordNoise, \
    apply_noise, draw_noise, wants_duplicate
from joinedup.simulators.population import BASE_DATE, Household, PopulationFactory, Resident, \
    ascii_fold, random_address, stable_rng, stable_unit, uprn_for, _permute

SYSTEMS: tuple[str, ...] = ("housing", "revenues", "socialcare", "hr")
KEY_FIELDS = {"housing": "TenantRef", "revenues": "customer_ref", "socialcare": "ClientId",
              "hr": "EMPNO"}
TIMESTAMP_FIELDS = {"housing": "LastModified", "revenues": "modified_at",
                    "socialcare": "LastUpdated", "hr": "LAST_CHANGED"}
BASE_NIGHT = datetime(2026, 1, 5, 2, 0, 0)
"""When night 0's extract is taken; night k is taken ``k`` days later."""

HR_WIDTHS = {"EMPNO": 8, "SURNAME": 30, "FORENAMES": 30, "DOB": 8, "SEX": 1, "NINO": 9,
             "ADDR1": 40, "ADDR2": 40, "TOWN": 30, "POSTCODE": 8, "START_DATE": 8,
             "LAST_CHANGED": 14}
"""Field widths of the HR fixed-width extract (records are already cut to fit)."""

# Chance that a system hears of a change (move, marriage, death) on the night it happens.
LEARN_RATE = {"housing": 0.95, "revenues": 0.9, "socialcare": 0.75, "hr": 0.6}


def night_datetime(night: int) -> datetime:
    """When night ``night``'s extract is taken."""
    return BASE_NIGHT + timedelta(days=night)


@dataclass(frozen=True)
class NightlyChanges:
    """What happens between two nights, as rates per household (moves), per resident (the
    rest) or per noisy record (corrections); arrivals are new residents as a share of n."""

    arrivals: float = 0.005
    moves: float = 0.005
    marriages: float = 0.001
    deaths: float = 0.0005
    corrections: float = 0.003


@dataclass
class Council:
    """The systems' records on one night, and the truth about them.

    ``records``: system -> native records (dicts in the system's layout, values str/None).
    ``truth``: (source_system, source_key, person_id), one row per record.
    ``twins``: pairs of person_ids who are twins (never to be merged).
    """

    records: dict[str, list[dict]]
    truth: list[tuple[str, str, str]]
    twins: set[frozenset[str]]
    night: int
    as_of: datetime
    residents: int = 0


# --- source keys ---------------------------------------------------------------------------

_KEY_FORMATS = {  # prefix, digits, multiplier, offset: a bijection scatters the numbers
    "housing": ("HT", 6, 7_919, 104_729), "revenues": ("5", 8, 73_687_871, 31_415_926),
    "socialcare": ("SC", 7, 3_141_593, 2_718_281), "hr": ("E", 7, 2_718_283, 1_414_213),
}


class KeyAllocator:
    """Issues each system's record keys in order of creation: stable across nights because
    records are created in the same order every time the council is built."""

    def __init__(self) -> None:
        self._issued = dict.fromkeys(SYSTEMS, 0)

    def next_key(self, system: str) -> str:
        prefix, digits, multiplier, offset = _KEY_FORMATS[system]
        self._issued[system] += 1
        capacity = 10**digits
        if self._issued[system] >= capacity:
            raise OverflowError(f"{system} has run out of {digits}-digit keys")
        return prefix + f"{_permute(self._issued[system], capacity, multiplier, offset):0{digits}d}"


# --- the systems' formats ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _RecordContext:
    """Facts about one record that are not about the person: when the account/tenancy began,
    whether the case is open, and a seed for the system's fixed habits for this record."""

    opened: date
    habit_seed: int
    case_open: bool
    deceased: bool


_FLAT_SPLIT = re.compile(r"^(Flat \d+), (.+)$")


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


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
        "CaseStatus": "open" if ctx.case_open and not ctx.deceased else "closed",
        "LastUpdated": None,
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
    }


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


def iter_council(n: int, seed: int, noise: NoiseConfig = NoiseConfig(), night: int = 0,
                 changes: NightlyChanges = NightlyChanges(), stats: _Stream | None = None
                 ) -> Iterator[tuple[str, object, object]]:
    """Stream the council as events: ``("record", system, (record, person_id))`` and
    ``("twins", person_a, person_b)``. ``build_council``/``write_council`` consume it."""
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
                                         keys, stats)


def _household_events(seed: int, noise: NoiseConfig, changes: NightlyChanges, night: int,
                      created: int, household: Household, keys: KeyAllocator, stats: _Stream) -> Iterator[tuple[str, object, object]]:
    household_number = int(household.household_id[1:])
    story = [household.members]
    for k in range(created + 1, night + 1):
        story.append(_evolve(seed, changes, household_number, household.household_id,
                             story[-1], k))
    on = night_datetime(created).date()
    for i, person in enumerate(household.members):
        if person.twin_of and person.person_id < person.twin_of:
            yield ("twins", person.person_id, person.twin_of)
        for system in SYSTEMS:
            if not _is_member(seed, system, person, household, on):
                continue
            copies = 2 if wants_duplicate(noise, seed, system, person.person_id) else 1
            for copy in range(copies):
                record = _record(seed, noise, changes, system, story, i, created, copy)
                record[KEY_FIELDS[system]] = keys.next_key(system)
                stats.records[system] += 1
                yield ("record", system, (record, person.person_id))


def _opened(seed: int, system: str, person: Resident, created: int, copy: int) -> date:
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


def _record(seed: int, config: NoiseConfig, changes: NightlyChanges, system: str,
            story: list[tuple[Resident, ...]], i: int, created: int, copy: int) -> dict:
    """One source record as it stands on the last night of ``story``, with its timestamp."""
    first = story[0][i]
    pid = first.person_id
    noise: RecordNoise = draw_noise(config, seed, system, pid, copy)
    opened = _opened(seed, system, first, created, copy)
    habit_seed = int(stable_unit(seed, "habit", system, pid, copy) * 2**32)
    case_open = stable_unit(seed, "case", pid, copy) < 0.7
    known = first
    if copy > 0 and first.previous_address is not None and \
            stable_unit(seed, "dup-stale", system, pid) < 0.5:
        # A forgotten second record, often opened at the former address.
        known = replace(first, uprn=first.previous_uprn, address=first.previous_address)

    def render(person: Resident, record_noise: RecordNoise) -> dict:
        ctx = _RecordContext(opened, habit_seed, case_open, person.deceased_date is not None)
        return _RENDER[system](apply_noise(person, record_noise), ctx)

    record = render(known, noise)
    last_change = created
    if copy == 0:  # duplicates are forgotten: nobody updates them
        for k in range(1, len(story)):
            night = created + k
            changed = story[k][i] is not story[k - 1][i] and \
                stable_unit(seed, "learn", system, pid, night) < LEARN_RATE[system]
            corrected = not noise.clean and \
                stable_unit(seed, "correct", system, pid, night) < changes.corrections
            if not changed and not corrected:
                continue
            if changed:
                known = story[k][i]
            if corrected:
                noise = CLEAN
            new = render(known, noise)
            if new != record:
                record, last_change = new, night
    if last_change == 0:
        # Last touched on a working day between the account opening and night 0.
        days = max(0, (BASE_NIGHT.date() - timedelta(days=1) - opened).days)
        day = opened + timedelta(days=int(days * stable_unit(seed, "ts0", system, pid, copy)))
        ts = datetime.combine(day, datetime.min.time()) + timedelta(
            seconds=8 * 3600 + int(10 * 3600 * stable_unit(seed, "ts0-time", system, pid, copy)))
    else:
        ts = _change_time(seed, last_change, system, pid, copy)
    record[TIMESTAMP_FIELDS[system]] = _format_timestamp(system, ts)
    return record


# --- the two ways to get a council -------------------------------------------------------

def build_council(n: int, seed: int, noise: NoiseConfig = NoiseConfig(), night: int = 0,
                  changes: NightlyChanges = NightlyChanges()) -> Council:
    """The council of ``n`` residents (plus arrivals) on ``night``, held in memory.

    Fine for tens of thousands of residents; use ``write_council`` for more.
    """
    records: dict[str, list[dict]] = {s: [] for s in SYSTEMS}
    truth: list[tuple[str, str, str]] = []
    twins: set[frozenset[str]] = set()
    stats = _Stream()
    for kind, a, b in iter_council(n, seed, noise, night, changes, stats):
        if kind == "twins":
            twins.add(frozenset((a, b)))
        else:
            record, person_id = b
            records[a].append(record)
            truth.append((a, record[KEY_FIELDS[a]], person_id))
    return Council(records, truth, twins, night, night_datetime(night), stats.residents)


TRUTH_FILE = "truth.csv"
TWINS_FILE = "twins.csv"
MANIFEST_FILE = "manifest.json"


def write_council(out_dir: str | Path, n: int, seed: int, noise: NoiseConfig = NoiseConfig(),
                  night: int = 0, changes: NightlyChanges = NightlyChanges()) -> dict:
    """Write ``<system>.jsonl`` (one native record per line, UTF-8), ``truth.csv``
    (source_system,source_key,person_id), ``twins.csv`` (person_id_a,person_id_b) and
    ``manifest.json`` into ``out_dir``, streaming. Returns the manifest."""
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
            for kind, a, b in iter_council(n, seed, noise, night, changes, stats):
                if kind == "twins":
                    twins_csv.writerow((a, b))
                    twins_count += 1
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
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
