"""Personal names: parse, normalise for matching, proper-case for display, name variants.

Councils' systems spell one resident's name many ways: upper case only, accents lost by a
Windows-1252 export (Siôn -> Sion), apostrophes dropped (O'Brien -> OBrien), hyphens lost
(Lloyd-Jones -> Lloyd Jones), nicknames (Bill for William, Dai for Dafydd). The functions
here turn every spelling into forms that compare well, without ever losing the original:
the canonical record keeps what the source sent.

Name variants come from the ``nicknames`` package (about 2,700 US/genealogy pairs) plus
``joinedup/data/name_variants_uk.csv`` (Welsh, Scottish, Irish and British forms). Both are
loaded once into dictionaries on first use, so each lookup is O(1).
"""
from __future__ import annotations

import csv
import re
import unicodedata
from functools import lru_cache
from importlib.resources import files
from typing import Any, NamedTuple

from joinedup.identifiers import is_missing

__all__ = [
    "ParsedName", "parse_full_name", "normalise_name", "fold_accents", "fix_mojibake",
    "split_family_name", "family_name_parts", "name_roots", "soundex", "title_case_name",
    "normalise_title", "TITLES",
]

# --- text clean-up -------------------------------------------------------------------------

_SPECIAL_LETTERS = str.maketrans({
    "ß": "ss", "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "Ø": "O", "ø": "o", "Ł": "L",
    "ł": "l", "Đ": "D", "đ": "d", "Þ": "TH", "þ": "th", "Ð": "D", "ð": "d", "ı": "i",
})
_APOSTROPHES = "'’‘`´ʼʻ′"
_MOJIBAKE_MARKERS = ("Ã", "Â", "â€", "Å")


def fix_mojibake(s: str) -> str:
    """Repair UTF-8 text that was decoded as Windows-1252 ('SiÃ´n' -> 'Siôn').

    Only applied when a tell-tale sequence is present and the repair round-trips cleanly,
    so correct text (including real 'Â' or 'Ã' in a name) is left alone.
    """
    if not any(m in s for m in _MOJIBAKE_MARKERS):
        return s
    try:
        repaired = s.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return s
    return repaired


def fold_accents(s: str) -> str:
    """Remove diacritics (Siôn -> Sion, Gwenllïan -> Gwenllian, Zoë -> Zoe, Łukasz -> Lukasz)."""
    if s.isascii():
        return s
    s = s.translate(_SPECIAL_LETTERS)
    decomposed = unicodedata.normalize("NFKD", s)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_NOT_LETTER_OR_SPACE = re.compile(r"[^A-Z ]+")
_SPACES = re.compile(r"\s+")
_APOSTROPHE_RE = re.compile("[" + _APOSTROPHES + "]")
_JOINERS = re.compile(r"[-‐‑‒–—_.,/]+")


def normalise_name(s: Any) -> str | None:
    """A name folded for comparison: upper case, accents removed, apostrophes dropped,
    hyphens and punctuation as single spaces, digits and symbols removed.

    "O'Brien" and "OBRIEN" give "OBRIEN"; "Lloyd-Jones" gives "LLOYD JONES"; "Siôn" gives
    "SION". Mc and Mac are left as written (MCDONALD and MACDONALD differ here and agree
    on their Soundex code). Blank or symbol-only input gives None.
    """
    if is_missing(s):
        return None
    text = fix_mojibake(str(s))
    text = _APOSTROPHE_RE.sub("", text)
    text = _JOINERS.sub(" ", text)
    text = fold_accents(text).upper()
    text = _NOT_LETTER_OR_SPACE.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    return text or None


# --- titles and parsing --------------------------------------------------------------------

TITLES: dict[str, str] = {
    "MR": "Mr", "MRS": "Mrs", "MISS": "Miss", "MS": "Ms", "MX": "Mx", "MASTER": "Master",
    "DR": "Dr", "DOCTOR": "Dr", "PROF": "Prof", "PROFESSOR": "Prof", "REV": "Rev",
    "REVD": "Rev", "REVEREND": "Rev", "FR": "Fr", "FATHER": "Fr", "SIR": "Sir",
    "DAME": "Dame", "LORD": "Lord", "LADY": "Lady", "CAPT": "Capt", "CAPTAIN": "Capt",
    "CLLR": "Cllr", "COUNCILLOR": "Cllr", "SR": "Sr", "SISTER": "Sister", "RABBI": "Rabbi",
    "IMAM": "Imam", "HON": "Hon", "MAJ": "Maj", "COL": "Col", "LT": "Lt",
}
_SUFFIXES = {"JR", "JNR", "JUNIOR", "SNR", "SENIOR", "II", "III", "IV", "OBE", "MBE", "CBE",
             "KBE", "DBE", "QC", "KC", "MP", "PHD", "BSC", "MSC", "MA", "BA", "ESQ"}
# Words that begin a multi-word family name ("de la Cruz", "van der Berg", "ap Gwilym").
PARTICLES = frozenset({"DE", "DA", "DI", "DU", "DEL", "DELLA", "DELA", "DER", "DEN", "DOS",
                       "DAS", "LA", "LE", "VAN", "VON", "AP", "AB", "ST", "SAINT", "BIN",
                       "BINT", "AL", "EL", "TER", "TEN"})


class ParsedName(NamedTuple):
    """The parts of a full name as written (trimmed), title in its usual short form."""

    title: str | None
    given: str | None
    middle: str | None
    family: str | None


def normalise_title(s: Any) -> str | None:
    """'MR.' / 'mr' -> 'Mr'; 'Revd' -> 'Rev'; unknown titles are returned trimmed."""
    if is_missing(s):
        return None
    text = " ".join(str(s).split())
    if not text:
        return None
    return TITLES.get(text.replace(".", "").upper(), text)


def _key(word: str) -> str:
    return fold_accents(word).replace(".", "").upper()


def parse_full_name(s: Any) -> ParsedName:
    """Split a full name into title, given name, middle names and family name.

    Handles "Mr John A. Smith", "SMITH, John", "Smith, Mr John Andrew",
    "Dr. Siân Lloyd-Jones" and family names with particles ("Juan de la Cruz",
    "Dafydd ap Gwilym"). Post-nominals (Jr, OBE ...) are dropped. A single word is taken as
    the family name. Parts keep their original spelling; use normalise_name to compare.
    """
    empty = ParsedName(None, None, None, None)
    if is_missing(s):
        return empty
    text = " ".join(fix_mojibake(str(s)).split())
    if not text:
        return empty
    family_first: list[str] | None = None
    if "," in text:
        head, _, tail = text.partition(",")
        family_first = head.split()
        words = tail.replace(",", " ").split()
    else:
        words = text.split()
    titles: list[str] = []
    while words and _key(words[0]) in TITLES:
        titles.append(TITLES[_key(words[0])])
        words = words[1:]
    if family_first is not None and family_first and _key(family_first[0]) in TITLES:
        titles.append(TITLES[_key(family_first[0])])
        family_first = family_first[1:]
    while words and _key(words[-1]) in _SUFFIXES:
        words = words[:-1]
    title = " ".join(titles) or None

    if family_first is not None:
        family_words = family_first
        rest = words
    else:
        if len(words) <= 1:
            return ParsedName(title, None, None, words[0] if words else None)
        # The family name starts at the first particle after the given name, else it is
        # the last word.
        start = len(words) - 1
        for i in range(1, len(words) - 1):
            if _key(words[i]) in PARTICLES:
                start = i
                break
        family_words = words[start:]
        rest = words[:start]
    given = rest[0] if rest else None
    middle = " ".join(rest[1:]) or None
    family = " ".join(family_words) or None
    return ParsedName(title, given, middle, family)


# --- family name parts ---------------------------------------------------------------------

def split_family_name(s: Any) -> list[str]:
    """The significant parts of a family name, normalised: hyphenated and double-barrelled
    names give each part ("Lloyd-Jones" -> ['LLOYD', 'JONES']); particles such as DE, LA,
    VAN, AP are dropped ("de la Cruz" -> ['CRUZ'])."""
    n = normalise_name(s)
    if n is None:
        return []
    return [w for w in n.split(" ") if w not in PARTICLES and len(w) > 1]


def family_name_parts(family: Any, previous: Any = None) -> list[str]:
    """Every form a family name may be matched on, sorted: the whole name without spaces,
    each significant part, and the same for each previous family name ('|'-separated).

    'Lloyd-Jones' with previous 'Evans' -> ['EVANS', 'JONES', 'LLOYD', 'LLOYDJONES'].
    """
    forms: set[str] = set()
    names = [family]
    if not is_missing(previous):
        names.extend(str(previous).split("|"))
    for name in names:
        n = normalise_name(name)
        if n is None:
            continue
        forms.add(n.replace(" ", ""))
        forms.update(split_family_name(n))
    return sorted(forms)


# --- name variants -------------------------------------------------------------------------

UK_VARIANTS_FILE = "name_variants_uk.csv"


@lru_cache(maxsize=1)
def _canonical_lookup() -> dict[str, frozenset[str]]:
    """variant -> its canonical forms, from `nicknames` and the UK file (built once)."""
    from nicknames import NickNamer

    table: dict[str, set[str]] = {}

    def add(canonical: str, variant: str) -> None:
        c, v = normalise_name(canonical), normalise_name(variant)
        if c and v and c != v:
            table.setdefault(v, set()).add(c)

    for canonical, variants in NickNamer.default_lookup().items():
        for variant in variants:
            add(canonical, variant)
    text = files("joinedup.data").joinpath(UK_VARIANTS_FILE).read_text(encoding="utf-8")
    rows = csv.reader(line for line in text.splitlines() if line and not line.startswith("#"))
    header = next(rows)
    if header != ["canonical", "variant"]:
        raise ValueError(f"{UK_VARIANTS_FILE}: header must be 'canonical,variant', got {header}")
    for row in rows:
        if len(row) != 2:
            raise ValueError(f"{UK_VARIANTS_FILE}: each line needs canonical,variant; got {row}")
        add(row[0], row[1])
    return {k: frozenset(v) for k, v in table.items()}


@lru_cache(maxsize=100_000)
def name_roots(given: Any) -> frozenset[str]:
    """The name itself (normalised) plus every canonical form it is a variant of.

    Two given names are variants of each other when their roots intersect:
    Dai -> {DAI, DAVID}, Dafydd -> {DAFYDD, DAVID}, Bill -> {BILL, WILLIAM, ...}.
    Only the first word of a multi-word given name is looked up. Empty for blank input.
    """
    n = normalise_name(given)
    if n is None:
        return frozenset()
    first = n.split(" ", 1)[0]
    return frozenset({first}) | _canonical_lookup().get(first, frozenset())


# --- phonetic code -------------------------------------------------------------------------

_SOUNDEX_CODES = {
    **dict.fromkeys("BFPV", "1"), **dict.fromkeys("CGJKQSXZ", "2"),
    **dict.fromkeys("DT", "3"), "L": "4", **dict.fromkeys("MN", "5"), "R": "6",
}


def soundex(s: Any) -> str | None:
    """American Soundex (4 characters, H and W do not separate equal codes).

    Robert and Rupert -> R163, Ashcraft -> A261, Tymczak -> T522. The name is normalised
    first and spaces removed, so MCDONALD and MACDONALD both give M235, O'Brien O165.
    """
    n = normalise_name(s)
    if n is None:
        return None
    letters = n.replace(" ", "")
    first = letters[0]
    out = [first]
    last = _SOUNDEX_CODES.get(first, "")
    for ch in letters[1:]:
        code = _SOUNDEX_CODES.get(ch, "")
        if code and code != last:
            out.append(code)
            if len(out) == 4:
                break
        if ch not in "HW":
            last = code
    return "".join(out).ljust(4, "0")


# --- display case --------------------------------------------------------------------------

_LOWER_PARTICLES = frozenset({"de", "da", "di", "du", "del", "della", "der", "den", "dos",
                              "das", "la", "van", "von", "ap", "ab", "bin", "bint"})
_MAC_EXCEPTIONS = frozenset({"MACE", "MACEY", "MACHIN", "MACHINE", "MACHADO", "MACIAS",
                             "MACK", "MACKIE", "MACKEY", "MACKLIN", "MACON", "MACKAY",
                             "MACKENZIE", "MACLIN", "MACARI", "MACAULEY", "MACE", "MACER",
                             "MACHEN", "MACHON"})


def _case_part(part: str) -> str:
    """Proper-case one hyphen-free word: O'Brien, McDonald, MacDonald, D'Arcy."""
    if not part:
        return part
    out = part[0].upper() + part[1:].lower()
    apostrophe = next((i for i, ch in enumerate(out) if ch in _APOSTROPHES), -1)
    if apostrophe == 1 and len(out) > 2:  # O'Brien, D'Arcy, L'Estrange
        out = out[:2] + out[2].upper() + out[3:]
    key = fold_accents(out).upper()
    if key.startswith("MC") and len(out) > 3 and out[2].isalpha():
        out = out[:2] + out[2].upper() + out[3:]
    elif key.startswith("MAC") and len(out) > 5 and key not in _MAC_EXCEPTIONS:
        out = out[:3] + out[3].upper() + out[4:]
    return out


def title_case_name(s: Any) -> str | None:
    """Proper case for a name typed all upper or all lower case.

    'MCDONALD' -> 'McDonald', "o'brien" -> "O'Brien", 'LLOYD-JONES' -> 'Lloyd-Jones',
    'DE LA CRUZ' -> 'de la Cruz', 'SIÔN' -> 'Siôn'. A name already in mixed case
    ('MacKenzie', 'Mackenzie', 'deBurgh') is the source's deliberate spelling and is
    kept, only its white space is tidied. Curly apostrophes become straight ones.
    """
    if is_missing(s):
        return None
    text = " ".join(fix_mojibake(str(s)).split())
    if not text:
        return None
    text = _APOSTROPHE_RE.sub("'", text)
    letters = [ch for ch in text if ch.isalpha()]
    if any(ch.isupper() for ch in letters) and any(ch.islower() for ch in letters):
        return text
    words = text.split(" ")
    out = []
    for i, word in enumerate(words):
        if word.lower() in _LOWER_PARTICLES and i < len(words) - 1:
            out.append(word.lower())
            continue
        out.append("-".join(_case_part(p) for p in word.split("-")))
    return " ".join(out)
