"""Name lists, places and name variants the synthetic council draws its residents from.

Why a module of plain lists: generation must be fast (a million residents) and reproducible
across Faker releases, so Faker's en_GB *data* (given names, surname frequencies) is read once
and mixed with our own lists, never called per resident. The lists add what Faker lacks and
UK councils meet daily: Welsh given names and surnames (Dafydd, Siôn, Gwenllïan), South Asian,
Polish, Irish/Scottish and West African names, apostrophes (O'Brien), Mc/Mac, names whose
accents Windows-1252 systems mangle (Zoë, Chloé), and a long tail of rare surnames so that
surname blocks are as skewed as in real life (Smith is about 1% of residents).
"""
from __future__ import annotations

import csv
from functools import lru_cache
from itertools import accumulate

from faker.providers.person.en_GB import Provider as _FakerPerson

# --- the council's area -------------------------------------------------------------------
# Real towns and postcode districts (south-east Wales), so postcodes look right and Welsh
# names, streets and bilingual habits belong. Each town: (postcode districts, localities).
TOWNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Newport": (("NP10", "NP18", "NP19", "NP20"),
                ("Maindee", "Bettws", "Malpas", "Caerleon", "Rogerstone", "Duffryn", "Alway",
                 "Ringland", "Lliswerry", "St Julians")),
    "Cwmbran": (("NP44",), ("Croesyceiliog", "Llanyravon", "Fairwater", "Greenmeadow",
                            "Pontnewydd", "Coed Eva")),
    "Pontypool": (("NP4",), ("Griffithstown", "Sebastopol", "Abersychan", "Trevethin",
                             "Penygarn")),
    "Chepstow": (("NP16",), ("Bulwark", "Thornwell", "Larkfield")),
    "Abergavenny": (("NP7",), ("Mardy", "Llanfoist", "Cantref")),
    "Monmouth": (("NP25",), ("Wyesham", "Overmonnow", "Osbaston")),
}
# Share of households per town (bigger towns hold more people).
TOWN_WEIGHTS: dict[str, float] = {
    "Newport": 0.45, "Cwmbran": 0.18, "Pontypool": 0.14, "Chepstow": 0.09,
    "Abergavenny": 0.08, "Monmouth": 0.06,
}
# Letters allowed in the two letters of a postcode's inward part (UK-REFERENCE regex).
POSTCODE_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

STREET_ROOTS = (
    "High", "Church", "Station", "Park", "Victoria", "Albert", "Queen", "King", "Mill", "School",
    "Chapel", "Bridge", "Castle", "Market", "Commercial", "Clarence", "Stow", "Caerau",
    "Cardiff", "Chepstow", "Malpas", "Oakfield", "Beechwood", "Elm", "Ash", "Willow", "Hawthorn",
    "Rowan", "Meadow", "Orchard", "Brynglas", "Tredegar", "Morgan", "Llewellyn", "Glebe",
    "Grove", "Windsor", "York", "Greenfield", "Springfield", "Belle Vue", "Fairoak", "Ridgeway",
    "Somerton", "Corporation", "Dock", "Canal", "Forge", "Foundry", "Railway", "Vicarage",
    "Manor", "Priory", "Abbey", "Lansdowne", "Stanley", "Gordon", "Picton", "Nelson", "Raglan",
)
STREET_SUFFIXES = (
    ("Street", 0.22), ("Road", 0.24), ("Avenue", 0.07), ("Lane", 0.06), ("Close", 0.1),
    ("Drive", 0.06), ("Way", 0.04), ("Crescent", 0.04), ("Gardens", 0.03), ("Place", 0.03),
    ("Terrace", 0.06), ("Grove", 0.02), ("Court", 0.02), ("View", 0.01),
)
# Welsh street forms ("Heol" road, "Ffordd" way, "Lôn" lane) with Welsh place words.
WELSH_STREET_FORMS = ("Heol", "Ffordd", "Lôn", "Rhodfa")
WELSH_STREET_WORDS = (
    "Glas", "y Bryn", "Pen-y-Bont", "Cae Mawr", "y Felin", "Tŷ Coch", "Derwen", "Bedw",
    "y Nant", "Hafod", "Gwyrdd", "yr Ysgol", "y Parc", "Maesglas", "Llanwern",
)
BLOCK_NAMES = (
    "Kingsway House", "Usk Court", "Riverside House", "Clarence Court", "Afon Lwyd House",
    "Victoria Court", "Brunel House", "Nelson Court", "Tŷ Gwyn", "Park View House",
)
# How address-writing systems shorten a street type.
STREET_ABBREVIATIONS = {
    "Street": "St", "Road": "Rd", "Avenue": "Ave", "Lane": "Ln", "Close": "Cl", "Drive": "Dr",
    "Crescent": "Cres", "Gardens": "Gdns", "Place": "Pl", "Terrace": "Ter", "Court": "Ct",
}

EMAIL_DOMAINS = (
    ("gmail.com", 0.38), ("hotmail.co.uk", 0.16), ("outlook.com", 0.1), ("yahoo.co.uk", 0.1),
    ("btinternet.com", 0.08), ("icloud.com", 0.08), ("sky.com", 0.04), ("live.co.uk", 0.04),
    ("aol.com", 0.02),
)
# Landline area codes of the council's towns (four- and five-digit forms).
LANDLINE_CODES = {"Newport": "01633", "Cwmbran": "01633", "Pontypool": "01495",
                  "Chepstow": "01291", "Abergavenny": "01873", "Monmouth": "01600"}

# --- backgrounds: who lives here, and what they are called --------------------------------
BACKGROUND_WEIGHTS: dict[str, float] = {
    "british": 0.70, "welsh": 0.12, "irish_scottish": 0.05, "south_asian": 0.06,
    "polish": 0.03, "west_african": 0.03, "other_european": 0.01,
}

# Given names of British-born residents by birth cohort (first year of the cohort).
BRITISH_GIVEN_BY_COHORT: dict[int, dict[str, tuple[str, ...]]] = {
    1920: {"F": ("Margaret", "Joan", "Dorothy", "Doris", "Joyce", "Irene", "Betty", "Eileen",
                 "Elsie", "Vera", "Edna", "Kathleen", "Mary", "Winifred", "Gladys", "Ivy"),
           "M": ("John", "William", "George", "Albert", "Arthur", "Ernest", "Frederick",
                 "Harold", "Kenneth", "Leslie", "Ronald", "Stanley", "Thomas", "Walter")},
    1945: {"F": ("Margaret", "Patricia", "Susan", "Christine", "Linda", "Janet", "Sandra",
                 "Barbara", "Brenda", "Sheila", "Maureen", "Jean", "Valerie", "Pauline",
                 "Carol", "Elizabeth", "Ann", "Marion", "Gillian", "Renée"),
           "M": ("David", "John", "Michael", "Peter", "Robert", "William", "Brian", "Alan",
                 "Anthony", "Keith", "Barry", "Geoffrey", "Richard", "Graham", "Trevor",
                 "Malcolm", "Roger", "Terence", "Colin", "Raymond")},
    1965: {"F": ("Sarah", "Claire", "Emma", "Lisa", "Nicola", "Helen", "Karen", "Julie",
                 "Rachel", "Joanne", "Michelle", "Kelly", "Louise", "Tracey", "Amanda",
                 "Deborah", "Catherine", "Victoria", "Zoë", "Kathryn"),
           "M": ("Paul", "Mark", "Andrew", "Stephen", "Richard", "Christopher", "James",
                 "Daniel", "Matthew", "Darren", "Lee", "Simon", "Jonathan", "Craig", "Neil",
                 "Stuart", "Jason", "Wayne", "Robert", "Nicholas")},
    1990: {"F": ("Jessica", "Hannah", "Lauren", "Sophie", "Chloe", "Amy", "Rebecca",
                 "Charlotte", "Emily", "Megan", "Georgia", "Bethany", "Holly", "Abigail",
                 "Chloé", "Zoe", "Natasha", "Jade", "Danielle", "Katie"),
           "M": ("Thomas", "Jack", "Joshua", "Daniel", "James", "Samuel", "Luke", "Callum",
                 "Ryan", "Liam", "Benjamin", "Jordan", "Connor", "Adam", "Kieran", "Lewis",
                 "Bradley", "Jake", "Nathan", "Alexander")},
    2010: {"F": ("Olivia", "Amelia", "Isla", "Ava", "Lily", "Grace", "Ella", "Mia", "Poppy",
                 "Ruby", "Freya", "Evie", "Sophia", "Isabella", "Willow", "Florence", "Rosie",
                 "Harper", "Aria", "Maisie"),
           "M": ("Oliver", "Harry", "George", "Noah", "Charlie", "Jacob", "Oscar", "Leo",
                 "Alfie", "Arthur", "Freddie", "Theo", "Archie", "Henry", "Ethan", "Teddy",
                 "Finley", "Max", "Logan", "William")},
}

WELSH_GIVEN = {
    "F": ("Gwenllïan", "Cerys", "Seren", "Ffion", "Angharad", "Nia", "Carys", "Megan",
          "Sioned", "Eleri", "Bethan", "Catrin", "Lowri", "Mali", "Non", "Myfanwy", "Rhiannon",
          "Elin", "Heledd", "Manon", "Glesni", "Gwen", "Eirlys", "Awen", "Tegan"),
    "M": ("Dafydd", "Rhys", "Siôn", "Gareth", "Owain", "Iwan", "Gethin", "Huw", "Emyr",
          "Dylan", "Ioan", "Cai", "Osian", "Llŷr", "Aled", "Geraint", "Ieuan", "Tomos", "Elis",
          "Rhodri", "Gwilym", "Bryn", "Dewi", "Alun", "Hywel"),
}
WELSH_SURNAMES = (
    ("Jones", 9.0), ("Williams", 5.5), ("Davies", 5.0), ("Evans", 4.0), ("Thomas", 3.5),
    ("Roberts", 2.8), ("Hughes", 2.2), ("Lewis", 2.2), ("Morgan", 2.0), ("Griffiths", 1.8),
    ("Price", 1.6), ("Rees", 1.5), ("Jenkins", 1.4), ("Owen", 1.3), ("Powell", 1.1),
    ("Pritchard", 0.6), ("Parry", 0.8), ("Bowen", 0.6), ("Lloyd", 0.8), ("Vaughan", 0.4),
    ("Llewellyn", 0.4), ("Prosser", 0.3), ("Probert", 0.3), ("Bevan", 0.4), ("Gwynne", 0.2),
    ("Howells", 0.4), ("Watkins", 0.6), ("Pugh", 0.5), ("Meredith", 0.3), ("ap Gwilym", 0.05),
    ("Prydderch", 0.05), ("Gruffydd", 0.1), ("Vaughan-Thomas", 0.05), ("Jones-Parry", 0.05),
)
IRISH_SCOTTISH_GIVEN = {
    "F": ("Siobhán", "Niamh", "Aoife", "Ciara", "Saoirse", "Róisín", "Orla", "Fiona", "Kirsty",
          "Eilidh", "Mhairi", "Caitlin", "Bridget", "Sinéad", "Maeve"),
    "M": ("Seán", "Ciarán", "Declan", "Eoin", "Pádraig", "Aidan", "Conor", "Fergus", "Hamish",
          "Ewan", "Angus", "Callum", "Niall", "Cormac", "Brendan"),
}
IRISH_SCOTTISH_SURNAMES = (
    ("Murphy", 2.0), ("Kelly", 2.0), ("O'Brien", 1.5), ("O'Connor", 1.2), ("O'Neill", 1.2),
    ("O'Sullivan", 1.0), ("McCarthy", 1.0), ("McDonald", 1.0), ("MacDonald", 0.8),
    ("MacLeod", 0.5), ("McKenzie", 0.6), ("Ryan", 1.2), ("Doyle", 1.0), ("Fitzgerald", 0.6),
    ("Campbell", 1.2), ("Stewart", 1.0), ("McLaughlin", 0.5), ("Ó Briain", 0.05),
    ("D'Arcy", 0.1), ("MacGregor", 0.3), ("McIntyre", 0.3), ("Gallagher", 0.8),
)
SOUTH_ASIAN_GIVEN = {
    "F": ("Priya", "Aisha", "Fatima", "Zainab", "Ayesha", "Sana", "Anjali", "Deepa", "Nisha",
          "Amrit", "Simran", "Maryam", "Hafsa", "Zara", "Harpreet", "Gurpreet", "Nusrat",
          "Shabana", "Rukhsana", "Sunita"),
    "M": ("Mohammed", "Muhammad", "Ali", "Ahmed", "Hassan", "Imran", "Amir", "Raj", "Arjun",
          "Rohan", "Sanjay", "Vikram", "Harpreet", "Jaspreet", "Tariq", "Bilal", "Usman",
          "Abdul", "Kamal", "Rajesh"),
}
SOUTH_ASIAN_SURNAMES = (
    ("Khan", 3.0), ("Ahmed", 2.0), ("Ali", 2.0), ("Hussain", 2.0), ("Patel", 3.0),
    ("Singh", 2.0), ("Kaur", 1.0), ("Shah", 1.0), ("Begum", 1.0), ("Iqbal", 0.8),
    ("Akhtar", 0.8), ("Rahman", 0.8), ("Chaudhry", 0.6), ("Sharma", 0.8), ("Gill", 0.7),
    ("Sandhu", 0.5), ("Malik", 0.8), ("Mahmood", 0.7), ("Mistry", 0.4), ("Uddin", 0.6),
)
POLISH_GIVEN = {
    "F": ("Zuzanna", "Julia", "Agnieszka", "Katarzyna", "Małgorzata", "Magdalena", "Joanna",
          "Aleksandra", "Natalia", "Zofia", "Anna", "Ewa", "Dorota", "Monika"),
    "M": ("Jakub", "Kacper", "Mateusz", "Piotr", "Krzysztof", "Tomasz", "Paweł", "Łukasz",
          "Michał", "Wojciech", "Marek", "Grzegorz", "Andrzej", "Jan"),
}
# Masculine forms; women take the -ska/-cka form (see feminine_surname).
POLISH_SURNAMES = (
    ("Nowak", 2.0), ("Kowalski", 1.5), ("Wiśniewski", 1.0), ("Wójcik", 1.0),
    ("Kowalczyk", 0.9), ("Kamiński", 0.9), ("Lewandowski", 0.9), ("Zieliński", 0.8),
    ("Szymański", 0.8), ("Woźniak", 0.8), ("Dąbrowski", 0.7), ("Kozłowski", 0.6),
    ("Mazur", 0.6), ("Krawczyk", 0.6), ("Jankowski", 0.5), ("Wróbel", 0.4),
)
WEST_AFRICAN_GIVEN = {
    "F": ("Abena", "Amara", "Chiamaka", "Folake", "Ngozi", "Adaeze", "Yewande", "Efua",
          "Adwoa", "Funmilayo", "Blessing", "Precious"),
    "M": ("Kwame", "Kofi", "Chidi", "Oluwaseun", "Adebayo", "Emeka", "Tunde", "Kwabena",
          "Chukwuemeka", "Olumide", "Femi", "Yaw"),
}
WEST_AFRICAN_SURNAMES = (
    ("Okafor", 1.0), ("Adeyemi", 1.0), ("Mensah", 1.0), ("Osei", 1.0), ("Boateng", 1.0),
    ("Okonkwo", 0.8), ("Adebayo", 0.8), ("Owusu", 0.8), ("Asante", 0.6), ("Nwosu", 0.6),
    ("Oyelaran", 0.3), ("Adjei", 0.5),
)
OTHER_EUROPEAN_GIVEN = {
    "F": ("Amélie", "Inês", "Ana", "Sofía", "Chiara", "Léa", "Renée", "Noémie", "Elena"),
    "M": ("André", "José", "João", "Luca", "Mateo", "Noël", "François", "Jürgen", "Marco"),
}
OTHER_EUROPEAN_SURNAMES = (
    ("Da Silva", 1.0), ("Ferreira", 1.0), ("Rossi", 0.8), ("García", 0.8), ("Müller", 0.6),
    ("Dubois", 0.6), ("Lefèvre", 0.4), ("Santos", 1.0), ("Van der Berg", 0.3),
    ("De Souza", 0.6),
)

# Building blocks of the long tail of English toponymic surnames (Ashley, Thornton, ...).
SURNAME_TAIL_ROOTS = (
    "Ash", "Black", "Brad", "Brook", "Bur", "Cal", "Cold", "Cran", "Dun", "Eld", "Fair", "Hart",
    "Hay", "Holl", "Kings", "Lang", "Mar", "Mill", "Nor", "Pen", "Rad", "Red", "Ring", "Rock",
    "Shel", "Stan", "Stock", "Thorn", "Wake", "Water", "West", "Whit", "Wind", "Wool", "Bram",
    "Chad", "Dal", "Gar", "Hather", "Lox", "Mabb", "Oak", "Pid", "Rud", "Sax", "Tad", "Ux",
    "Wal", "Yard", "Ack",
)
SURNAME_TAIL_ENDINGS = (
    "ley", "ton", "ford", "wood", "field", "worth", "by", "ham", "well", "more", "den",
    "ridge", "stone", "wick", "hurst", "cliffe", "brook", "shaw", "thorpe", "combe", "low",
    "dale", "gate", "bury",
)
# Share of the British background's surnames that come from Faker's frequency table (Faker's
# weights are percentages of the UK population and sum to about 40); the rest is the tail.
BRITISH_TAIL_SHARE = 0.45

# Given names that Welsh speakers use for the English form (and back): David ~ Dafydd.
WELSH_NAME_FORMS: dict[str, tuple[str, ...]] = {
    "dafydd": ("david", "dai", "dave"), "siôn": ("john", "sion"), "ieuan": ("evan", "ifan"),
    "rhys": ("reece", "rees"), "gwilym": ("william", "bill"), "huw": ("hugh",),
    "tomos": ("thomas", "tom"), "dewi": ("david",), "iwan": ("evan",), "owain": ("owen",),
    "gwenllïan": ("gwen", "gwenllian"), "sioned": ("janet", "jane"), "catrin": ("catherine", "cath"),
    "elis": ("ellis",), "llŷr": ("llyr",), "hywel": ("howell", "howel"), "ioan": ("john",),
    "angharad": ("anga",), "siobhán": ("siobhan",), "seán": ("sean",), "pádraig": ("patrick",),
    "margaret": ("peggy", "maggie", "meg", "marged"), "william": ("bill", "billy", "will"),
    "robert": ("bob", "rob", "bobby"), "elizabeth": ("beth", "liz", "betty", "lisa"),
}


def feminine_surname(surname: str) -> str:
    """Polish surnames change with sex: Kowalski -> Kowalska."""
    if surname.endswith("ski"):
        return surname[:-1] + "a"
    if surname.endswith("cki"):
        return surname[:-1] + "a"
    return surname


def _title(name: str) -> str:
    return name[:1].upper() + name[1:]


@lru_cache(maxsize=1)
def nickname_map() -> dict[str, tuple[str, ...]]:
    """Formal given name (lower case) -> nicknames, from the ``nicknames`` package plus Welsh.

    The package's ``has_nickname`` rows give formal -> nickname; we keep only those, so that a
    record can say "Bill" for William (the reverse lookup the matcher must learn).
    """
    import nicknames

    out: dict[str, list[str]] = {}
    with nicknames.with_names_csv_path() as path, open(path, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["relationship"] == "has_nickname":
                out.setdefault(row["name1"], []).append(row["name2"])
    for formal, forms in WELSH_NAME_FORMS.items():
        known = out.setdefault(formal, [])
        known.extend(f for f in forms if f not in known)
    return {k: tuple(v) for k, v in out.items()}


def nicknames_for(given_name: str) -> tuple[str, ...]:
    """Nicknames of ``given_name`` with the capital letter restored ("William" -> "Bill", ...)."""
    return tuple(_title(n) for n in nickname_map().get(given_name.lower(), ()))


class Weighted:
    """A list of values with cumulative weights, for ``random.choices(..., cum_weights=...)``.

    Built once; choosing is then a bisect, fast enough for a million draws.
    """

    __slots__ = ("values", "cum_weights")

    def __init__(self, pairs: list[tuple[str, float]] | tuple[tuple[str, float], ...]) -> None:
        self.values = [v for v, _ in pairs]
        self.cum_weights = list(accumulate(w for _, w in pairs))

    def pick(self, rng) -> str:  # rng: random.Random
        return rng.choices(self.values, cum_weights=self.cum_weights)[0]


def _even(values: tuple[str, ...]) -> list[tuple[str, float]]:
    return [(v, 1.0) for v in values]


@lru_cache(maxsize=1)
def british_surnames() -> Weighted:
    """Faker's en_GB surname frequencies (Smith ~1.15%) plus a long tail of rare surnames."""
    head = list(_FakerPerson.last_names.items())
    head_mass = sum(w for _, w in head)
    tail_names = [r + (e[1:] if r[-1] == e[0] else e)  # Holl + ley -> Holley
                  for r in SURNAME_TAIL_ROOTS for e in SURNAME_TAIL_ENDINGS]
    known = {n for n, _ in head}
    tail_names = list(dict.fromkeys(n for n in tail_names if n not in known))
    tail_mass = head_mass * BRITISH_TAIL_SHARE / (1 - BRITISH_TAIL_SHARE)
    each = tail_mass / len(tail_names)
    return Weighted(head + [(n, each) for n in tail_names])


@lru_cache(maxsize=None)
def surnames(background: str) -> Weighted:
    table = {
        "british": None, "welsh": WELSH_SURNAMES, "irish_scottish": IRISH_SCOTTISH_SURNAMES,
        "south_asian": SOUTH_ASIAN_SURNAMES, "polish": POLISH_SURNAMES,
        "west_african": WEST_AFRICAN_SURNAMES, "other_european": OTHER_EUROPEAN_SURNAMES,
    }[background]
    return british_surnames() if table is None else Weighted(table)


@lru_cache(maxsize=None)
def given_names(background: str, sex: str, birth_year: int) -> tuple[str, ...]:
    """Given names a parent of ``background`` might choose for a child born in ``birth_year``."""
    if background == "british":
        cohort = max((c for c in BRITISH_GIVEN_BY_COHORT if c <= birth_year), default=1920)
        faker_names = (_FakerPerson.first_names_female if sex == "F"
                       else _FakerPerson.first_names_male)
        # The cohort list four times over, so era-typical names dominate Faker's mixed bag.
        return tuple(BRITISH_GIVEN_BY_COHORT[cohort][sex]) * 4 + tuple(faker_names)
    if background == "welsh":
        # Welsh families also use English names, more so for older cohorts.
        english = given_names("british", sex, birth_year)
        return WELSH_GIVEN[sex] * (6 if birth_year >= 1970 else 3) + english[:40]
    lists = {
        "irish_scottish": IRISH_SCOTTISH_GIVEN, "south_asian": SOUTH_ASIAN_GIVEN,
        "polish": POLISH_GIVEN, "west_african": WEST_AFRICAN_GIVEN,
        "other_european": OTHER_EUROPEAN_GIVEN,
    }[background]
    return lists[sex]


@lru_cache(maxsize=1)
def backgrounds() -> Weighted:
    return Weighted(tuple(BACKGROUND_WEIGHTS.items()))


@lru_cache(maxsize=1)
def towns() -> Weighted:
    return Weighted(tuple(TOWN_WEIGHTS.items()))


@lru_cache(maxsize=1)
def street_suffixes() -> Weighted:
    return Weighted(STREET_SUFFIXES)


@lru_cache(maxsize=1)
def email_domains() -> Weighted:
    return Weighted(EMAIL_DOMAINS)
