"""The synthetic council's residents: who they really are (the ground truth).

``generate_population(n, seed)`` streams ``n`` residents household by household, so a million
residents cost the memory of one household (plus a few small counters). Everything follows
from ``seed``: the same seed gives the same people, byte for byte.

What makes the population UK-realistic (and hard to match, on purpose):
- households of several people at one UPRN, couples sharing a surname, children, flats
  ("Flat 2, 14 High Street"), house-sharers with different surnames;
- twins (about 1.5% of births): same date of birth, same address, same surname, different
  given names — the classic false-merge trap; ``twin_of`` records it;
- married people with a previous (maiden) surname; double-barrelled surnames;
- given names by birth cohort and background (British, Welsh, Irish/Scottish, South Asian,
  Polish, West African, other European), surname frequencies skewed like reality;
- identifiers valid by the rules in UK-REFERENCE: NI numbers with issued prefixes and an A-D
  suffix (never Faker's invalid ``ZZ...``), NHS numbers with a modulus-11 check digit,
  postcodes matching the Royal Mail pattern, UPRNs up to 12 digits. NI and NHS numbers are
  unique: they are derived from the person's sequence number by a bijection.

``BASE_DATE`` is "today" for night 0 (ages are computed against it); see
``joinedup.simulators.council`` for how later nights move people, marry them and so on.
"""
from __future__ import annotations

import hashlib
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from joinedup.simulators import reference_data as ref

BASE_DATE = date(2026, 1, 5)
"""The day of night 0's extract; the population's ages are computed against it."""

TWIN_BIRTH_RATE = 0.015
"""Share of births that are twins (UK: about 1.5% of maternities)."""


# --- deterministic randomness -------------------------------------------------------------

def stable_unit(seed: int, *parts: object) -> float:
    """A number in [0, 1) that depends only on ``seed`` and ``parts``.

    Used for decisions that must not depend on the order things are generated in (whether
    a given household moves on night 3, whether a record carries a typo), so that night k's
    data are the same whether or not nights k+1... are also generated.
    """
    digest = hashlib.blake2b(repr((seed, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def stable_rng(seed: int, *parts: object) -> random.Random:
    """A private random generator for one decision context (see ``stable_unit``)."""
    digest = hashlib.blake2b(repr((seed, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _permute(i: int, modulus: int, multiplier: int, offset: int) -> int:
    """A bijection on range(modulus) that scatters sequence numbers (multiplier coprime)."""
    return (i * multiplier + offset) % modulus


# --- identifiers --------------------------------------------------------------------------

_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"          # not D F I Q U V
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"          # not D F I O Q U V
_NINO_NEVER = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
NINO_PREFIXES: tuple[str, ...] = tuple(
    a + b for a in _NINO_FIRST for b in _NINO_SECOND if a + b not in _NINO_NEVER
)
_NINO_SPACE = len(NINO_PREFIXES) * 1_000_000
_BIG_PRIME = 982_451_653  # coprime with every modulus used here (prime, larger than factors)


def ni_number_for(seq: int) -> str:
    """The (unique) NI number of person number ``seq``: issued prefix, 6 digits, suffix A-D."""
    x = _permute(seq, _NINO_SPACE, _BIG_PRIME, 7_654_321)
    prefix = NINO_PREFIXES[x // 1_000_000]
    return f"{prefix}{x % 1_000_000:06d}{'ABCD'[(x // 1_000) % 4]}"


def nhs_check_digit(nine: str) -> int | None:
    """Modulus-11 check digit of the first nine digits; None when the number is unusable."""
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1)))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def nhs_number_for(seq: int) -> str:
    """The (unique) NHS number of person number ``seq``: valid check digit, never one digit
    repeated. The first eight digits encode ``seq`` one-to-one; the ninth is chosen so that
    the check digit exists."""
    head = "467"[seq % 3] + f"{_permute(seq, 10_000_000, _BIG_PRIME, 1_234_567):07d}"
    for ninth in range(10):
        nine = f"{head}{(ninth + seq) % 10}"
        check = nhs_check_digit(nine)
        if check is not None and len(set(nine + str(check))) > 1:
            return nine + str(check)
    raise AssertionError("no valid NHS number for a sequence number")  # cannot happen


def uprn_for(seq: int, space: int = 0) -> int:
    """A UPRN for property number ``seq``. ``space`` separates the base gazetteer (0) from
    properties people move to (1) and former addresses (2), so they never collide."""
    base = (10_000_000_000, 200_000_000_000, 300_000_000_000)[space]
    return base + _permute(seq, 10_000_000_000, _BIG_PRIME, 13_579)


def ascii_fold(text: str) -> str:
    """'Siôn Ó Briain' -> 'Sion O Briain'; 'Łukasz' -> 'Lukasz' (for emails, legacy systems)."""
    text = text.replace("ł", "l").replace("Ł", "L").replace("ß", "ss")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


# --- the records of truth -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Address:
    """A postal address as the resident would write it (BS 7666 flattened to lines)."""

    line1: str
    line2: str | None
    town: str
    postcode: str


@dataclass(frozen=True, slots=True)
class Resident:
    """One real person of the synthetic council, as they truly are on a given night.

    ``previous_address``/``previous_uprn`` is where they lived before (systems that missed
    the move still hold it); ``twin_of`` names the twin's person_id.
    """

    person_id: str
    given_name: str
    middle_names: str
    family_name: str
    previous_family_names: tuple[str, ...]
    date_of_birth: date
    sex: str
    ni_number: str | None
    nhs_number: str
    uprn: int
    address: Address
    email: str | None
    phone: str | None
    deceased_date: date | None
    household_id: str
    twin_of: str | None
    title: str | None = None
    background: str = "british"
    previous_uprn: int | None = None
    previous_address: Address | None = None

    def age_on(self, day: date) -> int:
        dob = self.date_of_birth
        return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


@dataclass(frozen=True, slots=True)
class Household:
    """People living at one property. ``tenure`` is 'council', 'owner' or 'private_rent'."""

    household_id: str
    uprn: int
    address: Address
    tenure: str
    members: tuple[Resident, ...]


# --- addresses ----------------------------------------------------------------------------

def _postcode(rng: random.Random, district: str, sector: int | None = None) -> str:
    letters = ref.POSTCODE_UNIT_LETTERS
    sector = rng.randrange(10) if sector is None else sector
    return f"{district} {sector}{rng.choice(letters)}{rng.choice(letters)}"


def _street_name(rng: random.Random) -> str:
    if rng.random() < 0.07:
        return f"{rng.choice(ref.WELSH_STREET_FORMS)} {rng.choice(ref.WELSH_STREET_WORDS)}"
    return f"{rng.choice(ref.STREET_ROOTS)} {ref.street_suffixes().pick(rng)}"


def random_address(rng: random.Random) -> Address:
    """An address anywhere in the council's area, independent of the gazetteer's sequence
    (used for former addresses and for the new homes of people who move)."""
    town = ref.towns().pick(rng)
    districts, localities = ref.TOWNS[town]
    street = _street_name(rng)
    number = rng.randint(1, 180)
    line1 = f"{number} {street}"
    if rng.random() < 0.2:
        line1 = f"Flat {rng.randint(1, 12)}, {line1}"
    line2 = rng.choice(localities) if rng.random() < 0.6 else None
    return Address(line1, line2, town, _postcode(rng, rng.choice(districts)))


class Gazetteer:
    """Hands out the properties of the council street by street (a UPRN and an address each).

    Streets have 20-120 properties, a few postcodes (one per ~15 doors) and sometimes blocks
    of flats, numbered ("Flat 2, 14 High Street") or named ("Flat 3, Usk Court").
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seq = 0
        self._left = 0
        self._flats_left = 0

    def _new_street(self) -> None:
        rng = self._rng
        self._town = ref.towns().pick(rng)
        districts, localities = ref.TOWNS[self._town]
        self._district = rng.choice(districts)
        self._sector = rng.randrange(10)
        self._street = _street_name(rng)
        self._locality = rng.choice(localities) if rng.random() < 0.6 else None
        self._left = rng.randint(20, 120)
        self._number = 0
        self._flats_left = 0
        self._postcode_left = 0

    def next_property(self) -> tuple[int, Address]:
        rng = self._rng
        if self._left <= 0 and self._flats_left <= 0:
            self._new_street()
        if self._postcode_left <= 0:
            self._postcode = _postcode(rng, self._district, self._sector)
            self._postcode_left = rng.randint(8, 20)
        self._postcode_left -= 1
        if self._flats_left <= 0:
            self._number += 1
            self._left -= 1
            if rng.random() < 0.05:  # this number is a block of flats
                self._flats_left = rng.randint(4, 16)
                self._flat = 0
                self._block = rng.choice(ref.BLOCK_NAMES) if rng.random() < 0.3 else None
        self._seq += 1
        uprn = uprn_for(self._seq)
        if self._flats_left > 0:
            self._flats_left -= 1
            self._flat += 1
            if self._block:
                return uprn, Address(f"Flat {self._flat}, {self._block}",
                                     f"{self._number} {self._street}", self._town,
                                     self._postcode)
            return uprn, Address(f"Flat {self._flat}, {self._number} {self._street}",
                                 self._locality, self._town, self._postcode)
        return uprn, Address(f"{self._number} {self._street}", self._locality, self._town,
                             self._postcode)


# --- people -------------------------------------------------------------------------------

_ADULT_AGE_BANDS = ((18, 29, 0.16), (30, 44, 0.26), (45, 64, 0.33), (65, 79, 0.18),
                    (80, 99, 0.07))
_HOUSEHOLD_KINDS = (("single", 0.29), ("couple", 0.27), ("family", 0.22),
                    ("lone_parent", 0.10), ("sharers", 0.06), ("grown_up_children", 0.06))


def _age(dob: date) -> int:
    return BASE_DATE.year - dob.year - ((BASE_DATE.month, BASE_DATE.day) < (dob.month, dob.day))


def _dob_for_age(rng: random.Random, age: int) -> date:
    """A date of birth making someone ``age`` on BASE_DATE."""
    latest = BASE_DATE.replace(year=BASE_DATE.year - age)
    return latest - timedelta(days=rng.randrange(365))


def _adult_age(rng: random.Random, low: int = 18, high: int = 99) -> int:
    bands = [(a, b, w) for a, b, w in _ADULT_AGE_BANDS if b >= low and a <= high]
    a, b, _ = rng.choices(bands, weights=[w for *_, w in bands])[0]
    return rng.randint(max(a, low), min(b, high))


@dataclass
class _Person:
    """A resident under construction (mutable until frozen into a Resident)."""

    sex: str
    dob: date
    background: str
    given: str = ""
    middle: str = ""
    family: str = ""
    previous: tuple[str, ...] = ()
    married: bool = False
    twin_index: int | None = None
    extra: dict = field(default_factory=dict)


class PopulationFactory:
    """Makes households one at a time, numbering people, households and properties.

    One factory serves the base population and, afterwards, the arrivals of each later
    night (in night order), so sequence numbers never collide and are reproducible.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.person_seq = 0
        self.household_seq = 0
        self.gazetteer = Gazetteer(random.Random(f"{seed}:gazetteer"))

    # names ------------------------------------------------------------------------------
    def _surname(self, rng: random.Random, background: str) -> str:
        return ref.surnames(background).pick(rng)

    def _name_person(self, rng: random.Random, p: _Person, avoid: set[str]) -> None:
        pool = ref.given_names(p.background, p.sex, p.dob.year)
        given = rng.choice(pool)
        for _ in range(20):
            if given not in avoid:
                break
            given = rng.choice(pool)
        p.given = given
        roll = rng.random()
        count = 2 if roll < 0.12 else 1 if roll < 0.62 else 0
        middles: list[str] = []
        while len(middles) < count:
            m = rng.choice(pool)
            if m != given and m not in middles:
                middles.append(m)
        p.middle = " ".join(middles)

    def _background(self, rng: random.Random, like: str | None = None) -> str:
        if like is not None and rng.random() < 0.85:
            return like
        return ref.backgrounds().pick(rng)

    def _family_for(self, p: _Person, surname: str) -> str:
        return ref.feminine_surname(surname) if p.sex == "F" else surname

    # households --------------------------------------------------------------------------
    def _adult(self, rng: random.Random, background: str, low: int = 18, high: int = 99,
               sex: str | None = None) -> _Person:
        age = _adult_age(rng, low, high)
        return _Person(sex=sex or rng.choice("FM"), dob=_dob_for_age(rng, age),
                       background=background)

    def _partner(self, rng: random.Random, head: _Person) -> _Person:
        head_age = BASE_DATE.year - head.dob.year
        age = min(99, max(18, head_age + round(rng.gauss(0, 4))))
        sex = head.sex if rng.random() < 0.05 else ("M" if head.sex == "F" else "F")
        return _Person(sex=sex, dob=_dob_for_age(rng, age),
                       background=self._background(rng, head.background))

    def _children(self, rng: random.Random, mother_dob: date, background: str,
                  count: int, max_age: int = 17) -> list[_Person]:
        mother_age = BASE_DATE.year - mother_dob.year
        oldest = min(max_age, mother_age - 18)
        youngest = max(0, mother_age - 45)
        kids: list[_Person] = []
        births = 0
        while births < count and oldest >= youngest:
            age = rng.randint(youngest, oldest)
            dob = _dob_for_age(rng, age)
            if any(k.dob == dob for k in kids):
                continue
            bg = self._background(rng, background)
            if rng.random() < TWIN_BIRTH_RATE:
                sexes = [rng.choice("FM")] * 2 if rng.random() < 0.6 else ["F", "M"]
                for s in sexes:
                    kids.append(_Person(sex=s, dob=dob, background=bg, twin_index=births))
            else:
                kids.append(_Person(sex=rng.choice("FM"), dob=dob, background=bg))
            births += 1
        return kids

    def _compose(self, rng: random.Random) -> list[_Person]:
        """Choose a household's people and their surnames (names come later)."""
        kind = rng.choices([k for k, _ in _HOUSEHOLD_KINDS],
                           weights=[w for _, w in _HOUSEHOLD_KINDS])[0]
        bg = self._background(rng)
        if kind == "single":
            p = self._adult(rng, bg)
            p.family = self._family_for(p, self._surname(rng, bg))
            if p.sex == "F" and BASE_DATE.year - p.dob.year > 30 and rng.random() < 0.3:
                p.previous = (self._family_for(p, self._surname(rng, bg)),)  # widowed/divorced
                p.married = True
            return [p]
        if kind == "sharers":
            people = [self._adult(rng, self._background(rng), 19, 40)
                      for _ in range(rng.randint(2, 4))]
            for p in people:
                p.family = self._family_for(p, self._surname(rng, p.background))
            return people
        if kind == "lone_parent":
            parent = self._adult(rng, bg, 20, 55, sex="F" if rng.random() < 0.85 else "M")
            parent.family = self._family_for(parent, self._surname(rng, bg))
            kids = self._children(rng, parent.dob, bg, rng.choices([1, 2, 3], [5, 4, 1])[0])
            other = self._surname(rng, bg)
            for k in kids:
                k.family = self._family_for(k, parent.family if rng.random() < 0.7 else other)
            _same_surname_for_twins(kids)
            return [parent, *kids]
        # couples, with or without children
        low, high = {"couple": (18, 99), "family": (22, 55),
                     "grown_up_children": (42, 75)}[kind]
        head = self._adult(rng, bg, low, high)
        partner = self._partner(rng, head)
        head_name = self._surname(rng, head.background)
        partner_name = self._surname(rng, partner.background)
        for _ in range(5):  # a maiden name equal to the married one would be no name change
            if partner_name != head_name:
                break
            partner_name = self._surname(rng, partner.background)
        style = rng.random()
        if style < 0.62:        # married, one took the other's surname
            taker = partner if (partner.sex == "F" or rng.random() < 0.5) else head
            keeper = head if taker is partner else partner
            keep_name = head_name if keeper is head else partner_name
            take_name = partner_name if taker is partner else head_name
            keeper.family = self._family_for(keeper, keep_name)
            taker.family = self._family_for(taker, keep_name)
            taker.previous = (self._family_for(taker, take_name),)
            keeper.married = taker.married = True
            family_name = keep_name
        elif style < 0.64:      # both double-barrelled
            joined = f"{head_name}-{partner_name}"
            head.family, partner.family = joined, joined
            head.previous = (self._family_for(head, head_name),)
            partner.previous = (self._family_for(partner, partner_name),)
            head.married = partner.married = True
            family_name = joined
        else:                   # kept their own names
            head.family = self._family_for(head, head_name)
            partner.family = self._family_for(partner, partner_name)
            r = rng.random()
            family_name = (head_name if r < 0.75 else f"{head_name}-{partner_name}" if r < 0.85
                           else partner_name)
        people = [head, partner]
        mother = head if head.sex == "F" else partner
        if kind == "family":
            kids = self._children(rng, mother.dob, bg, rng.choices([1, 2, 3], [4, 5, 2])[0])
        elif kind == "grown_up_children":
            kids = [k for k in self._children(rng, mother.dob, bg, rng.randint(1, 2), 34)]
        else:
            kids = []
        for k in kids:
            k.family = self._family_for(k, family_name)
        return people + kids

    def _freeze(self, rng: random.Random, people: list[_Person], household_id: str,
                uprn: int, address: Address, previous: tuple[int, Address] | None
                ) -> tuple[Resident, ...]:
        ids: list[str] = []
        seqs: list[int] = []
        for _ in people:
            self.person_seq += 1
            seqs.append(self.person_seq)
            ids.append(f"P{self.person_seq:07d}")
        taken: set[str] = set()
        for p in people:
            self._name_person(rng, p, taken)
            taken.add(p.given)
        out: list[Resident] = []
        for i, p in enumerate(people):
            twin = None
            if p.twin_index is not None:
                twin = next((ids[j] for j, q in enumerate(people)
                             if j != i and q.twin_index == p.twin_index), None)
            age = _age(p.dob)
            adult = age >= 18
            out.append(Resident(
                person_id=ids[i],
                given_name=p.given,
                middle_names=p.middle,
                family_name=p.family,
                previous_family_names=p.previous,
                date_of_birth=p.dob,
                sex=p.sex,
                ni_number=ni_number_for(seqs[i]) if age >= 16 else None,
                nhs_number=nhs_number_for(seqs[i]),
                uprn=uprn,
                address=address,
                email=_email(rng, p) if adult and rng.random() < (0.8 if age < 75 else 0.3)
                else None,
                phone=_phone(rng, address.town, age) if adult and rng.random() < 0.9 else None,
                deceased_date=None,
                household_id=household_id,
                twin_of=twin,
                title=_title(rng, p, age),
                background=p.background,
                previous_uprn=previous[0] if previous else None,
                previous_address=previous[1] if previous else None,
            ))
        return tuple(out)

    def next_household(self, rng: random.Random) -> Household:
        """The next household, drawn from ``rng`` (the stream's own generator)."""
        people = self._compose(rng)
        uprn, address = self.gazetteer.next_property()
        self.household_seq += 1
        household_id = f"H{self.household_seq:07d}"
        previous = None
        if rng.random() < 0.18:  # moved here in recent years: the former home is known
            previous = (uprn_for(self.household_seq, space=2), random_address(rng))
        tenure = rng.choices(("council", "owner", "private_rent"), (0.24, 0.58, 0.18))[0]
        members = self._freeze(rng, people, household_id, uprn, address, previous)
        return Household(household_id, uprn, address, tenure, members)

    def households(self, n: int, rng: random.Random) -> Iterator[Household]:
        """Households until ``n`` residents have been made (the last one is trimmed)."""
        made = 0
        while made < n:
            h = self.next_household(rng)
            if made + len(h.members) > n:
                members = h.members[: n - made]
                keep = {m.person_id for m in members}
                members = tuple(m if m.twin_of in keep or m.twin_of is None
                                else _replace_twin(m) for m in members)
                h = Household(h.household_id, h.uprn, h.address, h.tenure, members)
            made += len(h.members)
            yield h


def _replace_twin(m: Resident) -> Resident:
    from dataclasses import replace

    return replace(m, twin_of=None)


def _same_surname_for_twins(kids: list[_Person]) -> None:
    """Twins share a surname even in households where siblings' surnames differ."""
    by_birth: dict[int, str] = {}
    for k in kids:
        if k.twin_index is not None:
            k.family = by_birth.setdefault(k.twin_index, k.family)


def _title(rng: random.Random, p: _Person, age: int) -> str | None:
    if age < 18:
        return None
    if rng.random() < 0.01:
        return "Dr"
    if p.sex == "M":
        return "Mr"
    if p.married or p.previous:
        return "Mrs" if rng.random() < 0.85 else "Ms"
    return ("Miss" if rng.random() < 0.6 else "Ms") if age < 35 else rng.choice(("Ms", "Miss"))


def _email(rng: random.Random, p: _Person) -> str:
    given = ascii_fold(p.given).lower().replace(" ", "")
    family = "".join(c for c in ascii_fold(p.family).lower() if c.isalnum())
    style = rng.random()
    if style < 0.35:
        local = f"{given}.{family}"
    elif style < 0.6:
        local = f"{given[0]}{family}{rng.randint(1, 99)}"
    elif style < 0.85:
        local = f"{given}{family}{p.dob.year % 100:02d}"
    else:
        local = f"{given}_{rng.randint(100, 9999)}"
    return f"{local}@{ref.email_domains().pick(rng)}"


def _phone(rng: random.Random, town: str, age: int) -> str:
    if age >= 70 and rng.random() < 0.5:
        return f"{ref.LANDLINE_CODES[town]} {rng.randint(200000, 899999)}"
    return f"07{rng.choice('45789')}{rng.randint(10, 99)} {rng.randint(100000, 999999)}"


def generate_households(n: int, seed: int) -> Iterator[Household]:
    """Households of the base population (night 0) until ``n`` residents, streamed."""
    if n < 0:
        raise ValueError(f"population size must be 0 or more, got {n}")
    factory = PopulationFactory(seed)
    yield from factory.households(n, random.Random(f"{seed}:base"))


def generate_population(n: int, seed: int) -> Iterator[Resident]:
    """``n`` residents as they are on night 0, household by household (bounded memory)."""
    for household in generate_households(n, seed):
        yield from household.members
