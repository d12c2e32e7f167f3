"""Address lines: normalise for matching and reduce to a comparable key.

Four systems write one flat four ways: "Flat 2, 14 High St", "2/14 High Street",
"FLAT 2 14 HIGH STREET", "Apartment 2, 14 High Street". ``address_key`` reduces each to
the same key: postcode (no space) | flat (SAON) | house number (PAON) | street words.
It is a matching feature, not an address: the canonical record keeps the lines as sent.

Abbreviations are expanded (Rd -> ROAD, Ave -> AVENUE ...). "St" is the one trap: it is
SAINT at the start of a street name ("St Mary's Road", "14 St Mary's Road") and STREET at
the end ("14 High St").
"""
from __future__ import annotations

import re
from typing import Any, NamedTuple

from joinedup.identifiers import is_missing, is_valid_postcode, normalise_postcode
from joinedup.names import fix_mojibake, fold_accents

__all__ = ["normalise_address_line", "AddressParts", "address_parts", "address_key",
           "line_segments", "parts_of_segments", "ABBREVIATIONS"]

ABBREVIATIONS: dict[str, str] = {
    "RD": "ROAD", "AVE": "AVENUE", "AV": "AVENUE", "AVN": "AVENUE", "DR": "DRIVE",
    "DRV": "DRIVE", "LN": "LANE", "CL": "CLOSE", "CLS": "CLOSE", "CRES": "CRESCENT",
    "CRESC": "CRESCENT", "CRS": "CRESCENT", "CT": "COURT", "CRT": "COURT", "PL": "PLACE",
    "SQ": "SQUARE", "TER": "TERRACE", "TERR": "TERRACE", "TCE": "TERRACE", "GDNS": "GARDENS",
    "GDN": "GARDEN", "GRN": "GREEN", "GR": "GROVE", "GRV": "GROVE", "GRO": "GROVE",
    "PK": "PARK", "PDE": "PARADE", "HSE": "HOUSE", "HO": "HOUSE", "BLDGS": "BUILDINGS",
    "BLDG": "BUILDING", "CTGS": "COTTAGES", "CTTGS": "COTTAGES", "COTTS": "COTTAGES",
    "EST": "ESTATE", "HTS": "HEIGHTS", "MT": "MOUNT", "UPR": "UPPER", "LWR": "LOWER",
    "WY": "WAY", "WLK": "WALK", "MWS": "MEWS", "BVD": "BOULEVARD", "BLVD": "BOULEVARD",
    "HWY": "HIGHWAY", "RDG": "RIDGE", "CNR": "CORNER", "VW": "VIEW", "CRN": "CORNER",
    "GT": "GREAT", "LT": "LITTLE", "NTH": "NORTH", "STH": "SOUTH", "CTR": "CENTRE",
    "CEN": "CENTRE", "RDWY": "ROADWAY", "APPR": "APPROACH",
}
# Words that end a street name: a "St" followed later by one of these is SAINT.
_STREET_TYPES = frozenset({"STREET", "ROAD", "AVENUE", "DRIVE", "LANE", "CLOSE", "CRESCENT",
                           "COURT", "PLACE", "SQUARE", "TERRACE", "GARDENS", "GREEN",
                           "GROVE", "PARK", "PARADE", "WAY", "WALK", "MEWS", "HILL", "ROW",
                           "VIEW", "RISE", "GATE", "YARD", "WHARF", "CHURCHYARD", "CLOSE",
                           "ESTATE", "HEIGHTS", "BOULEVARD", "APPROACH", "HOUSE", "COTTAGES"})
# Words that introduce a flat or unit number (the SAON), all written as FLAT.
_FLAT_WORDS = frozenset({"FLAT", "FLT", "APARTMENT", "APT", "APPT", "APARTMENTS", "UNIT",
                         "ROOM", "RM", "SUITE", "MAISONETTE", "STUDIO", "FFLAT"})
_NUMBER = re.compile(r"^\d+[A-Z]?$")
_RANGE = re.compile(r"^\d+[A-Z]?-\d+[A-Z]?$")
_SLASHED = re.compile(r"^(\d+[A-Z]?)/(\d+[A-Z]?)$")
_FLAT_ID = re.compile(r"^(\d+[A-Z]?|[A-Z]\d*)$")
_APOSTROPHES = re.compile("['’‘`´ʼ]")
_PUNCTUATION = re.compile(r"[^A-Z0-9/\- ]+")
_SPACED_JOINERS = re.compile(r"\s*([/-])\s*")
_SEGMENT_BREAKS = re.compile(r"[,;\n]+")
_PLAIN = re.compile(r"[A-Za-z0-9 ,]*")
# One lookup per word: the abbreviation expanded, then a flat word written FLAT (the same as
# ABBREVIATIONS.get(word, word) followed by the _FLAT_WORDS test, done once here).
_WORD_SPELLING: dict[str, str] = {
    **{w: ("FLAT" if e in _FLAT_WORDS else e) for w, e in ABBREVIATIONS.items()},
    **{w: "FLAT" for w in _FLAT_WORDS if w not in ABBREVIATIONS},
}


def _segment_tokens(line: Any) -> list[list[str]]:
    """The line split at commas into segments of normalised, expanded tokens."""
    if is_missing(line):
        return []
    text = str(line)
    segments = []
    if _PLAIN.fullmatch(text):  # the common case: letters, digits, spaces and commas
        for raw in text.upper().split(","):
            tokens = _expand(raw.split())
            if tokens:
                segments.append(tokens)
        return segments
    text = fold_accents(fix_mojibake(text)).upper()
    text = _APOSTROPHES.sub("", text).replace("&", " AND ")
    for raw in _SEGMENT_BREAKS.split(text):
        raw = _PUNCTUATION.sub(" ", raw)
        raw = _SPACED_JOINERS.sub(r"\1", raw)  # "2 / 14" -> "2/14", "14 - 16" -> "14-16"
        words = [w.strip("-/") for w in raw.split()]
        words = [w for w in words if w]
        tokens = _expand(words)
        if tokens:
            segments.append(tokens)
    return segments


def _expand(words: list[str]) -> list[str]:
    out: list[str] = []
    for i, word in enumerate(words):
        # "14 A High St" -> "14A"
        if len(word) == 1 and word.isalpha() and out and out[-1].isdigit() and i < len(words) - 1:
            out[-1] += word
            continue
        if word == "ST":
            out.append(_saint_or_street(out, words[i + 1:]))
            continue
        out.append(_WORD_SPELLING.get(word, word))
    return out


def _saint_or_street(before: list[str], after: list[str]) -> str:
    """SAINT at the start of a name ("St Mary's Road", "14 St Mary's Road", "Upper St Giles
    Street"), STREET at the end ("14 High St", "High St North")."""
    if not after:
        return "STREET"
    at_start = not before or not before[-1].isalpha() or before[-1] in _FLAT_WORDS
    if at_start:
        return "SAINT"
    rest = {"STREET" if w == "ST" else ABBREVIATIONS.get(w, w) for w in after}
    return "SAINT" if rest & _STREET_TYPES else "STREET"


def normalise_address_line(s: Any) -> str | None:
    """An address line in one comparable spelling: upper case, accents folded, punctuation
    gone (except '/' and '-' inside numbers), abbreviations expanded, flat words as FLAT.

    "Flat 2, 14 High St." -> "FLAT 2 14 HIGH STREET"; "St Mary's Rd" -> "SAINT MARYS ROAD".
    """
    tokens = [t for seg in _segment_tokens(s) for t in seg]
    return " ".join(tokens) or None


class AddressParts(NamedTuple):
    """The parts of an address that identify a dwelling (normalised)."""

    flat: str | None
    house: str | None
    street: str | None


def address_parts(*lines: Any) -> AddressParts:
    """Flat (SAON), house number (PAON) and street from free address lines.

    "Flat 2, 14 High St" and "2/14 High Street" both give ('2', '14', 'HIGH STREET').
    A building name before a numbered street is dropped ("Rose Cottage, 3 Mill Lane" ->
    (None, '3', 'MILL LANE')), because systems disagree on keeping it. When two numbers
    appear ("2 Riverside Court, 14 Mill Lane") the first is taken as the flat. Without a
    house number the first named segment (a house name) stands as the street.
    """
    return parts_of_segments([seg for line in lines for seg in _segment_tokens(line)])


def line_segments(line: Any) -> list[list[str]]:
    """One address line's segments of normalised tokens, for ``parts_of_segments``.

    Why public: a batch standardises many records that share an address line (the second
    line is often a locality), so it tokenises each distinct line once and concatenates
    the segments of a record's lines: ``parts_of_segments(line_segments(a) +
    line_segments(b))`` is ``address_parts(a, b)``. The lists returned must not be changed.
    """
    return _segment_tokens(line)


def parts_of_segments(segments: list[list[str]]) -> AddressParts:
    """``address_parts`` on lines already cut into segments (see ``line_segments``)."""
    flat: str | None = None
    house: str | None = None
    street: str | None = None
    first_words: str | None = None
    need_street = False
    for tokens in segments:
        words: list[str] = []
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if tok == "FLAT":
                if nxt is not None and _FLAT_ID.match(nxt):
                    flat = nxt
                    i += 2
                    continue
                if words and nxt is None:  # "Ground Floor Flat"
                    flat = " ".join(w for w in words if w != "FLOOR")
                    words = []
                i += 1
                continue
            # Every number pattern starts with an ASCII digit: the cheap test spares the regexes.
            slashed = _SLASHED.match(tok) if "0" <= tok[0] <= "9" else None
            if slashed or ("0" <= tok[0] <= "9" and (_NUMBER.match(tok) or _RANGE.match(tok))):
                if slashed:
                    flat, number = slashed.group(1), slashed.group(2)
                else:
                    number = tok
                    if house is not None and flat is None:
                        flat = house
                house = number
                rest = " ".join(_drop_article(tokens[i + 1:])) or None
                street = rest
                need_street = rest is None
                words = []
                break
            words.append(tok)
            i += 1
        else:
            text = " ".join(_drop_article(words)) or None
            if need_street and text:
                street, need_street = text, False
            elif first_words is None and text:
                first_words = text
    if house is None:
        street = first_words
    return AddressParts(flat, house, street)


def _drop_article(tokens: list[str]) -> list[str]:
    return tokens[1:] if tokens and tokens[0] == "THE" else tokens


def address_key(line1: Any, line2: Any = None, postcode: Any = None) -> str | None:
    """'POSTCODE|flat|house|street' (postcode without its space, parts may be empty).

    Same dwelling, differently written, gives the same key; None when neither the lines
    nor a postcode give anything to compare. Only a geographic postcode counts: ZZ99
    pseudo-postcodes and BFPO numbers are shared by many people and locate no home.
    """
    parts = address_parts(line1, line2)
    normalised = normalise_postcode(postcode)
    pc = (normalised.replace(" ", "")
          if normalised and is_valid_postcode(normalised, allow_special=False) else None)
    if pc is None and parts.house is None and parts.street is None:
        return None
    return "|".join([pc or "", parts.flat or "", parts.house or "", parts.street or ""])
