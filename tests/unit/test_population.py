"""The population generator: reproducible, streaming, UK-realistic, identifiers valid."""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date

import pytest
from stdnum.gb import nhs

from joinedup.simulators import BASE_DATE, generate_households, generate_population
from joinedup.simulators.population import ni_number_for, nhs_number_for

NINO_RE = re.compile(r"^(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]?$")
POSTCODE_RE = re.compile(
    r"^(GIR 0AA|(?:[A-PR-UWYZ][0-9][0-9]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?|[A-PR-UWYZ][0-9]"
    r"[A-HJKPSTUW]|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY]) [0-9][ABD-HJLNP-UW-Z]{2})$")
N = 1500


@pytest.fixture(scope="module")
def people():
    return list(generate_population(N, seed=11))


def test_same_seed_same_people_other_seed_other_people(people):
    assert list(generate_population(N, seed=11)) == people
    other = list(generate_population(N, seed=12))
    assert [p.given_name for p in other] != [p.given_name for p in people]


def test_exactly_n_residents_streamed():
    stream = generate_population(N, seed=11)
    assert iter(stream) is stream           # an iterator, not a list held in memory
    assert sum(1 for _ in stream) == N
    assert list(generate_population(0, seed=1)) == []


def test_person_ids_unique_and_formatted(people):
    ids = [p.person_id for p in people]
    assert len(set(ids)) == N
    assert all(re.fullmatch(r"P\d{7}", i) for i in ids)


def test_identifiers_valid_and_unique(people):
    ninos = [p.ni_number for p in people if p.ni_number]
    assert len(ninos) > N // 2
    assert all(NINO_RE.match(x) and len(x) == 9 for x in ninos)
    assert len({x[:8] for x in ninos}) == len(ninos)          # unique without the suffix
    assert {x[-1] for x in ninos} == set("ABCD")
    assert all(p.ni_number is None for p in people if p.age_on(BASE_DATE) < 16)
    nhs_numbers = [p.nhs_number for p in people]
    assert all(nhs.is_valid(x) and len(set(x)) > 1 for x in nhs_numbers)
    assert len(set(nhs_numbers)) == N
    assert all(POSTCODE_RE.match(p.address.postcode) for p in people)
    assert all(POSTCODE_RE.match(p.previous_address.postcode)
               for p in people if p.previous_address)
    assert all(isinstance(p.uprn, int) and 1 <= p.uprn <= 999_999_999_999 for p in people)


def test_identifier_functions_over_a_wide_range():
    seqs = list(range(1, 3000)) + list(range(999_000, 1_001_000))
    assert all(NINO_RE.match(ni_number_for(s)) for s in seqs)
    assert all(nhs.is_valid(nhs_number_for(s)) for s in seqs)
    assert len({ni_number_for(s)[:8] for s in seqs}) == len(seqs)
    assert len({nhs_number_for(s) for s in seqs}) == len(seqs)


def test_households_share_a_property(people):
    by_household = defaultdict(list)
    for p in people:
        by_household[p.household_id].append(p)
    sizes = Counter(len(v) for v in by_household.values())
    assert sizes[1] > 0 and sum(c for s, c in sizes.items() if s >= 3) > 0
    assert 1.9 < N / len(by_household) < 2.8             # UK average is about 2.4
    for members in by_household.values():
        assert len({m.uprn for m in members}) == 1
        assert len({m.address for m in members}) == 1
    # different households live at different properties
    assert len({v[0].uprn for v in by_household.values()}) == len(by_household)
    sharing = [v for v in by_household.values()
               if len(v) >= 2 and len({m.family_name for m in v}) == 1]
    assert len(sharing) > 50


def test_twins_same_birthday_address_surname_different_names(people):
    by_id = {p.person_id: p for p in people}
    twins = [p for p in people if p.twin_of]
    assert len(twins) >= 2
    for t in twins:
        other = by_id[t.twin_of]
        assert other.twin_of == t.person_id
        assert (other.date_of_birth, other.uprn, other.family_name) == \
            (t.date_of_birth, t.uprn, t.family_name)
        assert other.given_name != t.given_name


def test_names_look_like_a_uk_council(people):
    given = {p.given_name for p in people}
    family = [p.family_name for p in people]
    assert given & {"Dafydd", "Rhys", "Siôn", "Gwenllïan", "Cerys", "Ffion", "Owain", "Huw",
                    "Seren", "Angharad", "Gethin", "Osian"}
    assert given & {"Mohammed", "Muhammad", "Priya", "Aisha", "Fatima", "Arjun", "Imran"}
    assert any("-" in f for f in family)                       # double-barrelled
    assert any(p.previous_family_names for p in people)        # married, maiden name known
    assert any(f.startswith(("Mc", "Mac", "O'")) for f in family)
    assert any(p.address.line1.startswith("Flat ") for p in people)
    assert any(p.middle_names for p in people)
    assert any(p.address.town == "Newport" for p in people)


def test_ages_and_titles_plausible(people):
    for p in people:
        assert date(1925, 1, 1) <= p.date_of_birth <= BASE_DATE
        assert p.sex in ("F", "M")
        assert p.deceased_date is None
        if p.age_on(BASE_DATE) < 18:
            assert p.title is None and p.email is None
        else:
            assert p.title in ("Mr", "Mrs", "Miss", "Ms", "Dr")
    assert all(p.age_on(BASE_DATE) >= 18 for p in people if p.previous_family_names)


def test_surname_frequencies_are_skewed_like_the_uk():
    family = Counter(p.family_name for p in generate_population(20_000, seed=5))
    share = {name: count / 20_000 for name, count in family.items()}
    assert 0.005 < share.get("Smith", 0) < 0.02
    assert share["Jones"] > share["Smith"]                     # a Welsh council
    assert len(family) > 1000                                  # a long tail of rare names
    assert sum(1 for c in family.values() if c <= 3) > 300


def test_households_trimmed_to_n_keep_twins_consistent():
    for n in (1, 2, 3, 7, 50):
        members = [m for h in generate_households(n, seed=2) for m in h.members]
        ids = {m.person_id for m in members}
        assert len(members) == n
        assert all(m.twin_of is None or m.twin_of in ids for m in members)


def test_negative_size_is_refused():
    with pytest.raises(ValueError, match="0 or more"):
        list(generate_population(-1, seed=1))
