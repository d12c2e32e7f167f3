"""The ways council systems get a resident's details wrong, with configurable rates.

Each source record draws its own *noise* once (``draw_noise``), from a generator seeded by
(seed, system, person, copy). The draw does not depend on the person's current details, so a
record keeps the same mistakes from night to night (a typo stays a typo) until a steward
corrects it; only a change of the person (a move, a marriage) changes the rendered record.

Rates are probabilities per record. A system's habits scale them (``SYSTEM_FACTORS``): the
revenues system holds NI numbers only for benefit claimants, HR almost always has one, and so
on. ``NoiseConfig.none()`` switches every kind of noise off: records then equal the truth
(apart from each system's fixed formats, such as HR's upper case).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, fields, replace
from datetime import date
from functools import lru_cache
from typing import Any

from joinedup.simulators import reference_data as ref
from joinedup.simulators.population import Address, stable_rng

PLACEHOLDER_DOB = date(1900, 1, 1)
"""What systems type when they do not know a date of birth."""



def check_rates(rates: Any, what: str) -> None:
    """Every field of the dataclass ``rates`` is a probability; the first that is not is
    named in the error (``what``: how the caller calls its rates)."""
    for f in fields(rates):
        rate = getattr(rates, f.name)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{what} {f.name} must be between 0 and 1, got {rate}")

@dataclass(frozen=True)
class NoiseConfig:
    """Probability, per source record, of each kind of mistake or habit.

    ``maiden_name`` and ``stale_address`` apply only to people who have a previous surname or
    a former address; ``dob_transposed`` only to dates whose day is 12 or less (and differs
    from the month); ``hyphen_variant`` only to double-barrelled surnames; ``nickname`` only to
    given names that have one; ``duplicate`` is the chance that a system holds a second record
    (with its own key) for the same person.
    """

    typo: float = 0.02
    nickname: float = 0.03
    initial_only: float = 0.01
    maiden_name: float = 0.15
    dob_transposed: float = 0.01
    dob_placeholder: float = 0.01
    missing_ni: float = 0.05
    stale_address: float = 0.05
    abbreviation: float = 0.15
    windows_1252: float = 0.05
    hyphen_variant: float = 0.2
    upper_case: float = 0.01
    duplicate: float = 0.02

    def __post_init__(self) -> None:
        check_rates(self, "noise rate")

    @classmethod
    def none(cls) -> NoiseConfig:
        """No noise at all: every record equals the truth in its system's format."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    def scaled(self, factor: float) -> NoiseConfig:
        """Every rate multiplied by ``factor`` (capped at 1): a dirtier or cleaner council."""
        return replace(self, **{f.name: min(1.0, getattr(self, f.name) * factor)
                                for f in fields(self)})


# A system's habits: multipliers of the configured rates (1.0 where not listed).
SYSTEM_FACTORS: dict[str, dict[str, float]] = {
    "housing": {"missing_ni": 2.0, "abbreviation": 0.5},
    "revenues": {"missing_ni": 8.0, "duplicate": 1.5, "abbreviation": 2.0, "nickname": 1.5,
                 "stale_address": 0.5},
    "socialcare": {"missing_ni": 8.0, "dob_placeholder": 0.5, "nickname": 0.5},
    "hr": {"missing_ni": 0.1, "duplicate": 0.25, "nickname": 0.5, "windows_1252": 0.0,
           "upper_case": 0.0, "stale_address": 2.0},
}

# The order flags are drawn in: fixed, so adding a system does not reshuffle others' noise.
NOISE_KINDS: tuple[str, ...] = (
    "typo", "nickname", "initial_only", "maiden_name", "dob_transposed", "dob_placeholder",
    "missing_ni", "stale_address", "abbreviation", "windows_1252", "hyphen_variant",
    "upper_case",
)


@dataclass(frozen=True, slots=True)
class RecordNoise:
    """The mistakes one source record carries; ``salt`` seeds the details (which letter)."""

    kinds: frozenset[str]
    salt: int

    @property
    def clean(self) -> bool:
        return not self.kinds


CLEAN = RecordNoise(frozenset(), 0)


def rate_for(config: NoiseConfig, system: str, kind: str) -> float:
    return min(1.0, getattr(config, kind) * SYSTEM_FACTORS.get(system, {}).get(kind, 1.0))


@lru_cache(maxsize=64)
def _rates(config: NoiseConfig, system: str) -> tuple[tuple[str, float], ...]:
    return tuple((k, rate_for(config, system, k)) for k in NOISE_KINDS)


def draw_noise(config: NoiseConfig, seed: int, system: str, person_id: str,
               copy: int) -> RecordNoise:
    """The noise of record number ``copy`` (0 = the first) of ``person_id`` in ``system``."""
    rng = stable_rng(seed, "noise", system, person_id, copy)
    kinds = frozenset(k for k, rate in _rates(config, system) if rng.random() < rate)
    return RecordNoise(kinds, rng.getrandbits(32))


def wants_duplicate(config: NoiseConfig, seed: int, system: str, person_id: str) -> bool:
    rng = stable_rng(seed, "duplicate", system, person_id)
    return rng.random() < rate_for(config, system, "duplicate")


# --- the mistakes themselves ---------------------------------------------------------------

_KEYBOARD_NEIGHBOURS = {
    "a": "sqz", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj",
    "i": "uo", "j": "hk", "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o",
    "q": "w", "r": "et", "s": "ad", "t": "ry", "u": "yi", "v": "cb", "w": "qe", "x": "zc",
    "y": "tu", "z": "x",
}


def typo(text: str, rng: random.Random) -> str:
    """One keying slip: a neighbouring key, a dropped, doubled or swapped letter.

    The first letter is left alone (people rarely get it wrong, and blocking relies on it).
    """
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)
    kind = rng.randrange(4)
    c = text[i]
    if kind == 0 and c.lower() in _KEYBOARD_NEIGHBOURS:
        sub = rng.choice(_KEYBOARD_NEIGHBOURS[c.lower()])
        return text[:i] + (sub.upper() if c.isupper() else sub) + text[i + 1:]
    if kind == 1:
        return text[:i] + text[i + 1:]
    if kind == 2:
        return text[:i] + c + text[i:]
    if text[i + 1] != c:
        return text[:i] + text[i + 1] + c + text[i + 2:]
    return text[:i] + text[i + 1:]


def nickname(given: str, rng: random.Random) -> str | None:
    """A nickname or Welsh/English form of ``given`` (Bill for William), or None if none."""
    options = ref.nicknames_for(given)
    return rng.choice(options) if options else None


def transpose_day_month(dob: date) -> date | None:
    """The date with day and month swapped, when that is still a date and differs."""
    if dob.day > 12 or dob.day == dob.month:
        return None
    return dob.replace(month=dob.day, day=dob.month)


_ACCENT_SWAPS = {
    "Zoe": "Zoë", "Zoë": "Zoe", "Chloe": "Chloé", "Chloé": "Chloe", "Renee": "Renée",
    "Renée": "Renee", "Andre": "André", "André": "Andre", "Jose": "José", "José": "Jose",
    "Noel": "Noël", "Noël": "Noel", "Amelie": "Amélie", "Amélie": "Amelie", "Lea": "Léa",
    "Léa": "Lea", "Sinead": "Sinéad", "Sinéad": "Sinead", "Sean": "Seán", "Seán": "Sean",
}


def windows_1252_form(name: str) -> str | None:
    """How a Word-pasted or legacy entry spells ``name``: a curly apostrophe (O’Brien) or an
    accent added/dropped (Zoe/Zoë). None when the name offers no such variant."""
    if "'" in name:
        return name.replace("'", "\u2019")
    for word in name.split():
        if word in _ACCENT_SWAPS:
            return name.replace(word, _ACCENT_SWAPS[word], 1)
    return None


def hyphen_variant(surname: str, rng: random.Random) -> str | None:
    """'Smith-Jones' as 'Smith Jones', 'Jones' or 'SmithJones'; None if not double-barrelled."""
    if "-" not in surname:
        return None
    first, _, last = surname.partition("-")
    return rng.choice((f"{first} {last}", last, f"{first}{last}", first))


_SUFFIX_RE = re.compile(r"\b(" + "|".join(ref.STREET_ABBREVIATIONS) + r")\b")
_FLAT_RE = re.compile(r"^Flat (\d+), (\d+\w*) (.+)$")


def abbreviate(line: str, rng: random.Random) -> str:
    """'Flat 2, 14 High Street' -> '2/14 High St' (or 'Flat 2 14 High St'); 'Road' -> 'Rd'."""
    line = _SUFFIX_RE.sub(lambda m: ref.STREET_ABBREVIATIONS[m.group(1)], line)
    m = _FLAT_RE.match(line)
    if m:
        flat, number, street = m.groups()
        form = rng.randrange(3)
        line = (f"{flat}/{number} {street}" if form == 0
                else f"Flat {flat} {number} {street}" if form == 1
                else f"{number}{'abcd'[int(flat) % 4]} {street}" if int(flat) <= 4
                else f"F{flat} {number} {street}")
    return line


# --- applying a record's noise to what the system knows -----------------------------------

@dataclass(frozen=True, slots=True)
class NoisyPerson:
    """A person's details as one source record states them (before the system's format)."""

    title: str | None
    given_name: str
    middle_names: str
    preferred_name: str | None
    family_name: str
    date_of_birth: date | None
    sex: str
    ni_number: str | None
    nhs_number: str | None
    uprn: int | None
    address: Address
    email: str | None
    phone: str | None


def apply_noise(person, noise: RecordNoise) -> NoisyPerson:  # person: Resident
    """``person`` (a Resident as the system knows them) with the record's mistakes applied."""
    rng = random.Random(noise.salt)
    kinds = noise.kinds
    given, family = person.given_name, person.family_name
    preferred = None
    dob: date | None = person.date_of_birth
    uprn, address = person.uprn, person.address
    if "maiden_name" in kinds and person.previous_family_names:
        family = person.previous_family_names[-1]
    if "hyphen_variant" in kinds:
        family = hyphen_variant(family, rng) or family
    if "nickname" in kinds:
        nick = nickname(given, rng)
        if nick:
            preferred = nick
            given = nick
    if "initial_only" in kinds:
        given = given[0]
    if "typo" in kinds:
        if rng.random() < 0.5:
            family = typo(family, rng)
        else:
            given = typo(given, rng)
    if "windows_1252" in kinds:
        family = windows_1252_form(family) or family
        given = windows_1252_form(given) or given
    if "dob_transposed" in kinds:
        dob = transpose_day_month(dob) or dob
    if "dob_placeholder" in kinds:
        dob = PLACEHOLDER_DOB
    if "stale_address" in kinds and person.previous_address is not None:
        uprn, address = person.previous_uprn, person.previous_address
    if "abbreviation" in kinds:
        address = replace(address, line1=abbreviate(address.line1, rng),
                          line2=abbreviate(address.line2, rng) if address.line2 else None)
    middle = person.middle_names
    if "upper_case" in kinds:
        given, family, middle = given.upper(), family.upper(), middle.upper()
        preferred = preferred.upper() if preferred else None
    return NoisyPerson(
        title=person.title,
        given_name=given,
        middle_names=middle,
        preferred_name=preferred,
        family_name=family,
        date_of_birth=dob,
        sex=person.sex,
        ni_number=None if "missing_ni" in kinds else person.ni_number,
        nhs_number=person.nhs_number,
        uprn=uprn,
        address=address,
        email=person.email,
        phone=person.phone,
    )
