"""UK person and property identifiers: normalise the text, then say whether it is valid.

Each identifier has a ``normalise_x(s) -> str | None`` that only tidies the text (case,
spaces, zero padding) and returns None for blank input, and an ``is_valid_x(s) -> bool``
that applies the published rule. They are kept apart on purpose: the mapping stores the
tidied value even when it is invalid, so the quality gate can quarantine the row *with the
reason*, and the matcher only ever uses valid values as strong evidence.

Rules and test values are in /work/shared/UK-REFERENCE.md (NI number, NHS number mod 11,
UPN check letter, UPRN range, postcode pattern with GIR 0AA, ZZ99 and BFPO).
"""
from __future__ import annotations

import re
from typing import Any

__all__ = [
    "normalise_nino", "is_valid_nino", "nino_key",
    "normalise_nhs_number", "is_valid_nhs_number", "is_test_nhs_number",
    "normalise_upn", "is_valid_upn", "upn_check_letter",
    "normalise_uprn", "is_valid_uprn",
    "normalise_postcode", "is_valid_postcode", "is_special_postcode", "is_pseudo_postcode",
    "postcode_outward", "postcode_compact",
    "normalise_phone", "normalise_email", "is_plausible_email", "is_missing",
]

_SEPARATORS = re.compile(r"[\s\-./_]+")


def is_missing(s: Any) -> bool:
    """True for None, NaN, pandas NA and NaT: the ways a frame says "no value"."""
    if s is None:
        return True
    if isinstance(s, (str, int)):
        return False
    try:
        return bool(s != s)  # NaN and NaT are not equal to themselves
    except TypeError:  # pandas.NA refuses to be a bool
        return True


def _text(s: Any) -> str | None:
    """The value as stripped text, or None when missing/blank (None, NaN, NA, '')."""
    if is_missing(s):
        return None
    if isinstance(s, float):
        if s.is_integer():
            s = int(s)
    text = str(s).strip()
    return text or None


def _compact(s: Any) -> str | None:
    text = _text(s)
    if text is None:
        return None
    out = _SEPARATORS.sub("", text).upper()
    return out or None


# --- National Insurance number -------------------------------------------------------------

NINO_PATTERN = re.compile(
    r"^(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]?$"
)


def normalise_nino(s: Any) -> str | None:
    """Upper case without spaces or separators ('ab 12 34 56 c' -> 'AB123456C').

    Invalid values are returned tidied, not dropped: validity is a separate question.
    """
    return _compact(s)


def is_valid_nino(s: Any) -> bool:
    """True for an issued-format NINO (suffix A-D optional).

    Never-issued prefixes (BG GB KN NK NT TN ZZ), the letters D F I Q U V in the wrong place
    (so the GOV.UK example QQ123456C fails) and legacy temporary TN numbers are invalid.
    """
    n = normalise_nino(s)
    return n is not None and NINO_PATTERN.match(n) is not None


def nino_key(s: Any) -> str | None:
    """The first 8 characters of a valid NINO, the part that identifies the person.

    The suffix letter is not part of the identity (and is often missing), so two records
    compare on this key. Invalid numbers give None: they are no evidence at all.
    """
    if isinstance(s, str) and NINO_PATTERN.match(s):  # already canonical: the usual case
        return s[:8]
    n = normalise_nino(s)
    if n is None or NINO_PATTERN.match(n) is None:
        return None
    return n[:8]


# --- NHS number ----------------------------------------------------------------------------

_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def normalise_nhs_number(s: Any) -> str | None:
    """Digits only when the value is digits and separators ('943 476 5919' -> '9434765919').

    Anything with letters is returned upper-cased and compacted, so it fails validation
    visibly rather than turning into a different, plausible number.
    """
    return _compact(s)


def is_valid_nhs_number(s: Any) -> bool:
    """Modulus 11 check on 10 digits; repeated-digit numbers (0000000000 ...) are rejected.

    Every repeated-digit number passes the arithmetic, and they are what systems type when
    the number is unknown, so they are refused explicitly.
    """
    n = normalise_nhs_number(s)
    if n is None or len(n) != 10 or not n.isascii() or not n.isdigit():
        return False
    if len(set(n)) == 1:
        return False
    total = sum(int(d) * w for d, w in zip(n[:9], _NHS_WEIGHTS))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10:
        return False
    return check == int(n[9])


def is_test_nhs_number(s: Any) -> bool:
    """True for the 999 000 0000 - 999 999 9999 range reserved for test data."""
    n = normalise_nhs_number(s)
    return n is not None and len(n) == 10 and n.isdigit() and n.startswith("999")


# --- Unique Pupil Number -------------------------------------------------------------------

_UPN_ALPHABET = "ABCDEFGHJKLMNPQRTUVWXYZ"  # A=0 ... Z=22 (no I, O, S)
_UPN_PATTERN = re.compile(r"^[ABCDEFGHJKLMNPQRTUVWXYZ]\d{11}[0-9ABCDEFGHJKLMNPQRTUVWXYZ]$")


def normalise_upn(s: Any) -> str | None:
    """Upper case without spaces."""
    return _compact(s)


def upn_check_letter(body: str) -> str:
    """Check letter for the 12 characters after it (positions 2-13).

    Digits count at face value, a temporary UPN's final letter at its alphabet index.
    """
    if len(body) != 12:
        raise ValueError(f"a UPN body has 12 characters, got {len(body)}")
    total = 0
    for position, ch in enumerate(body, start=2):
        value = int(ch) if ch.isdigit() else _UPN_ALPHABET.index(ch)
        total += position * value
    return _UPN_ALPHABET[total % 23]


def is_valid_upn(s: Any) -> bool:
    """13 characters: check letter, 11 digits (LA, school, year, serial), digit or letter."""
    n = normalise_upn(s)
    if n is None or _UPN_PATTERN.match(n) is None:
        return False
    return upn_check_letter(n[1:]) == n[0]


# --- UPRN ----------------------------------------------------------------------------------

UPRN_MAX = 999_999_999_999


def normalise_uprn(s: Any) -> str | None:
    """The integer as text without zero padding ('000100023336956' -> '100023336956').

    A float-looking '100023336956.0' (a spreadsheet's doing) is accepted. Non-numeric text
    is returned upper-cased and compacted so that it fails validation visibly.
    """
    text = _text(s)
    if text is None:
        return None
    compact = re.sub(r"\s+", "", text)
    m = re.fullmatch(r"(\d+)(?:\.0+)?", compact)
    if m:
        digits = m.group(1).lstrip("0")
        return digits or "0"
    return compact.upper() or None


def is_valid_uprn(s: Any) -> bool:
    """An integer 1 ... 999,999,999,999 (no check digit exists)."""
    n = normalise_uprn(s)
    if n is None or not n.isascii() or not n.isdigit():
        return False
    return 1 <= int(n) <= UPRN_MAX


# --- Postcode ------------------------------------------------------------------------------

POSTCODE_PATTERN = re.compile(
    r"^(GIR 0AA|(?:[A-PR-UWYZ][0-9][0-9]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?"
    r"|[A-PR-UWYZ][0-9][A-HJKPSTUW]|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY]) "
    r"[0-9][ABD-HJLNP-UW-Z]{2})$"
)
_PSEUDO_PATTERN = re.compile(r"^ZZ99 [0-9][A-Z]{2}$")
_BFPO_PATTERN = re.compile(r"^BFPO (\d{1,4})$")


def normalise_postcode(s: Any) -> str | None:
    """Upper case, all white space removed, one space before the last three characters.

    'sw1a1aa' -> 'SW1A 1AA'; 'bfpo  105' -> 'BFPO 105'. Text too short to hold an inward
    code is returned compacted and upper-cased (it will fail validation).
    """
    text = _text(s)
    if text is None:
        return None
    compact = re.sub(r"\s+", "", text).upper()
    if not compact:
        return None
    m = re.fullmatch(r"BFPO(\d{1,4})", compact)
    if m:
        return f"BFPO {m.group(1)}"
    if len(compact) < 5:
        return compact
    return f"{compact[:-3]} {compact[-3:]}"


def is_special_postcode(s: Any) -> bool:
    """True for the valid postcodes that do not locate a home: ZZ99 pseudo-postcodes (NHS:
    no fixed abode, not known) and BFPO numbers (forces). GIR 0AA is a real address."""
    n = normalise_postcode(s)
    return n is not None and bool(_PSEUDO_PATTERN.match(n) or _BFPO_PATTERN.match(n))


def is_pseudo_postcode(s: Any) -> bool:
    """True for an NHS ZZ99 pseudo-postcode (e.g. ZZ99 3VZ no fixed abode)."""
    n = normalise_postcode(s)
    return n is not None and _PSEUDO_PATTERN.match(n) is not None


def is_valid_postcode(s: Any, *, allow_special: bool = True) -> bool:
    """True when the normalised value matches the UK pattern (GIR 0AA included).

    With ``allow_special`` (the default) ZZ99 pseudo-postcodes and 'BFPO nnnn' are valid
    too; pass ``allow_special=False`` where only a geographic postcode will do (matching).
    """
    n = normalise_postcode(s)
    if n is None:
        return False
    if POSTCODE_PATTERN.match(n):
        return True
    return allow_special and is_special_postcode(n)


def postcode_outward(s: Any) -> str | None:
    """Outward code of a valid postcode ('SW1A 1AA' -> 'SW1A', 'BFPO 105' -> 'BFPO');
    None when the postcode is not valid."""
    n = normalise_postcode(s)
    if n is None or not is_valid_postcode(n):
        return None
    return n.split(" ", 1)[0]


def postcode_compact(s: Any) -> str | None:
    """A valid postcode without its space ('SW1A1AA'), for keys; None when invalid."""
    n = normalise_postcode(s)
    if n is None or not is_valid_postcode(n):
        return None
    return n.replace(" ", "")


# --- Contact details -----------------------------------------------------------------------

_EXTENSION = re.compile(r"\s*(?:ext\.?|extn\.?|x)\s*\d+\s*$", re.IGNORECASE)


def normalise_phone(s: Any) -> str | None:
    """A UK phone number in national form, 0 followed by 9 or 10 digits.

    '+44 (0)20 7946 0958', '0044 20 7946 0958', '44 20 7946 0958' and '020-7946-0958' all
    give '02079460958'; an extension ('x123') is dropped. Other numbers (abroad, or local
    numbers without a code) are returned as their digits, a leading + kept, so nothing is
    lost; blank or digit-free input gives None.
    """
    text = _text(s)
    if text is None:
        return None
    text = _EXTENSION.sub("", text).strip()
    digits = re.sub(r"\D", "", text.replace("(0)", ""))
    if not digits:
        return None
    national: str | None = None
    if digits.startswith("0044"):
        national = digits[4:]
    elif text.startswith("+44") or (
        not text.startswith("+") and digits.startswith("44") and len(digits) in (11, 12)
    ):
        national = digits[2:]
    if national is not None:
        national = national if national.startswith("0") else "0" + national
        if len(national) in (10, 11):
            return national
        return "+44" + national[1:]
    if digits.startswith("0") and not digits.startswith("00") and len(digits) in (10, 11):
        return digits
    if text.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    return digits


def normalise_email(s: Any) -> str | None:
    """Lower case with white space removed ('  John.Smith@Example.ORG ' ->
    'john.smith@example.org'); a 'mailto:' prefix and angle brackets are dropped."""
    text = _text(s)
    if text is None:
        return None
    text = re.sub(r"\s+", "", text).lower()
    if text.startswith("mailto:"):
        text = text[7:]
    text = text.strip("<>")
    return text or None


def is_plausible_email(s: Any) -> bool:
    """One @ with something before it and a dotted domain after it (not a full RFC check)."""
    n = normalise_email(s)
    return n is not None and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", n) is not None
