"""The shape of the probabilistic (Fellegi–Sunter) person-matching model.

This module says *what* the model compares and *which* parameters are set by
judgement rather than learnt; :mod:`joinedup.mci.probabilistic` trains and runs it.

Two design choices here exist to beat the household trap (people at one address
share a surname, a UPRN, a postcode and often a landline):

* Address evidence is ONE comparison ("residence") whose levels are UPRN, then
  address key + postcode, then postcode, then postcode district. Splink treats
  comparisons as independent, so separate UPRN, postcode and address comparisons
  would count "lives at the same place" three times over.
* The residence and phone comparisons have FIXED m and u probabilities, chosen so
  that living together is worth a few bits (same property: +4, same phone: +3),
  never enough on its own to link, and never learnt by EM (EM on address blocks
  learns "same household", not "same person"). A mobile number shared by records at
  different addresses is not explained by living together: +8 (see ``_phone``).
* The given-name comparison has an "opposite-sex twin pattern" level ahead of its
  similarity levels: a similar (not identical) first name whose recorded sexes differ, with
  the same family name and date of birth (Ciara and Ciaran at one flat); fixed -12 bits.
* The given-name comparison has a "twin pattern" level ahead of its else level:
  different first names with the same family name and date of birth. Its weight is
  fixed strongly negative (-30 bits) because, given identical birth date and
  surname, a wholly different first name is the signature of a twin, not a typo.
  It does not apply when the NI or NHS number agrees (twins never share one).

All SQL here is DuckDB SQL over the match-feature columns written by
``joinedup.mci.standardise.standardise()``; ``_l``/``_r`` suffixes name the two
records of a pair, as Splink expects.
"""

from __future__ import annotations

import math
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl

# The match-feature columns (the standardise() contract) live in their own module, so the
# stored match index's tables can be defined without importing Splink; named here as before.
from joinedup.mci.feature_columns import (  # noqa: F401 - re-exported: spec.FEATURE_COLUMNS
    BOOLEAN_COLUMNS,
    FEATURE_COLUMNS,
    INTEGER_COLUMNS,
    UNIQUE_ID_COLUMN,
)

#: Version of the model *specification* (comparisons, levels, fixed priors).
#: Bump it whenever a comparison or level changes: a saved model trained under
#: another specification version is refused on load.
MODEL_SPEC_VERSION = "1.5"  # 1.5: a mobile shared by records living apart; 1.4: sex m fixed, opposite-sex twins


def _fixed(level: Any, *, m: float, u: float) -> Any:
    """Pin a level's m and u so that neither u-sampling nor EM moves them."""
    return level.configure(
        m_probability=m, u_probability=u, fix_m_probability=True, fix_u_probability=True
    )


def _fixed_weight(level: Any, *, m: float, bits: float) -> Any:
    """Pin a level to a chosen match weight (log2 Bayes factor) given its m."""
    return _fixed(level, m=m, u=m / (2.0**bits))


def _split(col: str, side: str) -> str:
    return f"string_split({col}_{side}, '|')"


#: Weight (bits) of a similar given name with the other sex in the twin setting: enough to
#: outweigh a shared birth date, surname and home, so such a pair is not linked on its score.
OTHER_SEX_TWIN_BITS = -12.0


def _given_name() -> cl.CustomComparison:
    jw = "jaro_winkler_similarity(given_name_std_l, given_name_std_r)"
    clearly_different = (
        f"NOT list_has_any({_split('given_name_roots', 'l')}, "
        f"{_split('given_name_roots', 'r')}) "
        f"AND {jw} < 0.8 "
        "AND given_initial_l IS DISTINCT FROM given_initial_r"
    )
    twin_pattern = (
        f"{clearly_different} "
        "AND family_name_std_l = family_name_std_r "
        "AND dob_l = dob_r "
        # Twins never share an NI or NHS number: when one agrees, the different
        # first name is a recording error, not a second person.
        "AND NOT coalesce(ni_key_l = ni_key_r, false) "
        "AND NOT coalesce(nhs_number_l = nhs_number_r, false)"
    )
    # Opposite-sex twins are often given gendered forms of one name (Ciara and Ciaran,
    # Daniel and Daniela, Alexander and Alexandra): to the levels below they look like one
    # person's typo or nickname. When both sexes are known and differ, with the same surname
    # and birth date and no shared NI or NHS number, the similar name is evidence of twins
    # instead. A shared home is not required: the level also keeps apart one person whose sex
    # one system recorded wrongly (a missed merge, the safer failure).
    other_sex_twin = (
        "sex_l <> sex_r "  # NULL when either is unknown: the level does not apply
        f"AND NOT ({clearly_different}) "
        "AND family_name_std_l = family_name_std_r "
        "AND dob_l = dob_r "
        "AND NOT coalesce(ni_key_l = ni_key_r, false) "
        "AND NOT coalesce(nhs_number_l = nhs_number_r, false)"
    )
    return cl.CustomComparison(
        output_column_name="given_name",
        comparison_description="Given name: exact, nickname, similar, initial",
        comparison_levels=[
            cll.NullLevel("given_name_std"),
            cll.ExactMatchLevel("given_name_std", term_frequency_adjustments=True),
            _fixed_weight(
                cll.CustomLevel(
                    other_sex_twin,
                    label_for_charts="Similar first name, other sex, same surname and birth "
                    "date (opposite-sex twin pattern)",
                ),
                m=1e-6,
                bits=OTHER_SEX_TWIN_BITS,
            ),
            cll.CustomLevel(
                f"list_has_any({_split('given_name_roots', 'l')}, "
                f"{_split('given_name_roots', 'r')})",
                label_for_charts="Nickname or variant of the same name",
            ),
            cll.CustomLevel(f"{jw} >= 0.92", label_for_charts="Jaro-Winkler >= 0.92"),
            cll.CustomLevel(f"{jw} >= 0.80", label_for_charts="Jaro-Winkler >= 0.80"),
            cll.CustomLevel(
                "jaro_winkler_similarity(given_name_std_l, family_name_std_r) >= 0.92",
                label_for_charts="Is the other's family name (forename and surname swapped)",
            ),
            cll.CustomLevel(
                "given_initial_l = given_initial_r",
                label_for_charts="Same initial only",
            ),
            _fixed_weight(
                cll.CustomLevel(
                    twin_pattern,
                    label_for_charts="Different first name, same surname and birth "
                    "date (twin pattern)",
                ),
                m=1e-10,
                bits=-30.0,
            ),
            cll.ElseLevel(),
        ],
    )


def _family_name() -> cl.CustomComparison:
    jw = "jaro_winkler_similarity(family_name_std_l, family_name_std_r)"
    return cl.CustomComparison(
        output_column_name="family_name",
        comparison_description="Family name: exact, maiden/hyphenated part, phonetic",
        comparison_levels=[
            cll.NullLevel("family_name_std"),
            cll.ExactMatchLevel("family_name_std", term_frequency_adjustments=True),
            cll.CustomLevel(
                f"list_has_any({_split('family_name_parts', 'l')}, "
                f"{_split('family_name_parts', 'r')})",
                label_for_charts="Shares a surname part or previous surname",
            ),
            cll.CustomLevel(
                "family_name_phonetic_l = family_name_phonetic_r",
                label_for_charts="Sounds the same (phonetic code)",
            ),
            cll.CustomLevel(f"{jw} >= 0.92", label_for_charts="Jaro-Winkler >= 0.92"),
            cll.CustomLevel(f"{jw} >= 0.80", label_for_charts="Jaro-Winkler >= 0.80"),
            cll.CustomLevel(
                "jaro_winkler_similarity(family_name_std_l, given_name_std_r) >= 0.92",
                label_for_charts="Is the other's given name (forename and surname swapped)",
            ),
            cll.ElseLevel(),
        ],
    )


def _date_of_birth() -> cl.CustomComparison:
    transposed = (
        "substr(dob_l, 1, 4) = substr(dob_r, 1, 4) "
        "AND substr(dob_l, 6, 2) = substr(dob_r, 9, 2) "
        "AND substr(dob_l, 9, 2) = substr(dob_r, 6, 2)"
    )
    days_apart = (
        "abs(date_diff('day', try_cast(dob_l AS DATE), try_cast(dob_r AS DATE)))"
    )
    return cl.CustomComparison(
        output_column_name="dob",
        comparison_description="Date of birth (placeholders are already missing)",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob"),
            cll.CustomLevel(transposed, label_for_charts="Day and month transposed"),
            cll.CustomLevel(
                "damerau_levenshtein(dob_l, dob_r) <= 1",
                label_for_charts="One digit mistyped or two neighbours swapped",
            ),
            cll.CustomLevel(
                "substr(dob_l, 1, 7) = substr(dob_r, 1, 7)",
                label_for_charts="Same year and month",
            ),
            cll.CustomLevel(f"{days_apart} <= 365", label_for_charts="Within a year"),
            cll.CustomLevel(
                f"{days_apart} <= 3653", label_for_charts="Within ten years"
            ),
            cll.ElseLevel(),
        ],
    )


def _identifier(column: str, name: str, description: str) -> cl.CustomComparison:
    """A personal identifier keyed by hand somewhere: exact, else one character mistyped
    or two neighbours swapped (Damerau-Levenshtein 1), else different. The near level is
    evidence for the score only: two different VALID NI/NHS numbers are still a hard
    constraint (:func:`joinedup.mci.rules.conflict`) that no score overrides."""
    return cl.CustomComparison(
        output_column_name=name,
        comparison_description=description,
        comparison_levels=[
            cll.NullLevel(column),
            cll.ExactMatchLevel(column),
            cll.CustomLevel(
                f"damerau_levenshtein({column}_l, {column}_r) <= 1",
                label_for_charts="One character mistyped or two neighbours swapped",
            ),
            cll.ElseLevel(),
        ],
    )


def _residence() -> cl.CustomComparison:
    """UPRN, address key and postcode as ONE comparison, with fixed weights."""
    missing = (
        "(uprn_l IS NULL OR uprn_r IS NULL) "
        "AND (postcode_l IS NULL OR postcode_r IS NULL) "
        "AND (address_key_l IS NULL OR address_key_r IS NULL)"
    )
    same_postcode = (
        "postcode_l = postcode_r AND postcode_l NOT LIKE 'ZZ99%'"
    )
    # m sums to 1 over the non-null levels; u of the else level takes the rest.
    same_property_m, same_property_bits = 0.60, 4.0
    postcode_m, postcode_bits = 0.10, 3.0
    outward_m, outward_bits = 0.08, 1.0
    else_m = 1.0 - same_property_m - postcode_m - outward_m
    else_u = 1.0 - (
        same_property_m / 2**same_property_bits
        + postcode_m / 2**postcode_bits
        + outward_m / 2**outward_bits
    )
    return cl.CustomComparison(
        output_column_name="residence",
        comparison_description="Where they live: UPRN, address, postcode (fixed "
        "weights: a shared home is weak evidence of being the same person)",
        comparison_levels=[
            cll.CustomLevel(missing, label_for_charts="Address missing").configure(
                is_null_level=True
            ),
            _fixed_weight(
                cll.CustomLevel(
                    "uprn_l = uprn_r OR (address_key_l = address_key_r "
                    f"AND {same_postcode})",
                    label_for_charts="Same property (UPRN or address and postcode)",
                ),
                m=same_property_m,
                bits=same_property_bits,
            ),
            _fixed_weight(
                cll.CustomLevel(same_postcode, label_for_charts="Same postcode").configure(
                    tf_adjustment_column="postcode",
                    disable_tf_exact_match_detection=True,
                    # Only ever weakens: a postcode shared by many records (a hostel,
                    # a block of flats) counts less, a rare one never counts more.
                    tf_minimum_u_value=postcode_m / 2**postcode_bits,
                ),
                m=postcode_m,
                bits=postcode_bits,
            ),
            _fixed_weight(
                cll.CustomLevel(
                    "postcode_outward_l = postcode_outward_r",
                    label_for_charts="Same postcode district",
                ),
                m=outward_m,
                bits=outward_bits,
            ),
            _fixed(cll.ElseLevel(), m=else_m, u=else_u),
        ],
    )


def _name_in_email(side: str) -> str:
    """SQL: the record's family name (letters only) is spelled inside its email address."""
    family = f"lower(replace(replace(family_name_std_{side}, ' ', ''), '-', ''))"
    return (
        f"length(family_name_std_{side}) >= 2 "
        f"AND strpos(lower(email_std_{side}), {family}) > 0"
    )


def _email() -> cl.CustomComparison:
    """Email: an address made of the person's name is weak evidence, any other is strong.

    Most personal addresses are built from the name (given.family@, initial+family+NN@).
    Two different people with the same given and family name often hold the same such
    address at different times or on different systems' files (measured on the synthetic
    council at 100,000 residents: 2.4% of different-person pairs with the same full name and
    both an email share it, and every one of those addresses spells the family name). Splink
    treats comparisons as independent, so an exact-match level trained on random pairs
    (u ~ 1e-6) would count the name a second time and link namesakes with different dates
    of birth. The name-made level therefore has a FIXED weight (+4 bits: what it adds once
    the names already agree); an address that does not spell the family name keeps the
    trained exact-match weight.
    """
    name_made = (
        f"email_std_l = email_std_r AND {_name_in_email('l')} AND {_name_in_email('r')}"
    )
    return cl.CustomComparison(
        output_column_name="email",
        comparison_description="Email address (an address spelling the family name is "
        "weak evidence: namesakes share them)",
        comparison_levels=[
            cll.NullLevel("email_std"),
            _fixed_weight(
                cll.CustomLevel(
                    name_made,
                    label_for_charts="Same email, spelled from the shared family name",
                ),
                m=0.7,
                bits=4.0,
            ),
            cll.ExactMatchLevel("email_std"),
            cll.ElseLevel(),
        ],
    )


#: m of the sex comparison, FIXED: the share of one person's record pairs that agree on sex
#: (most disagreements are keying errors, or a title that does not match the recorded sex).
#: Learnt by EM it was unstable: on a clean extract (more records carry a sex once titles
#: say it) EM drove the disagreement m towards zero and dragged other rare levels' m below
#: what Splink accepts. 0.005 is the floor a learnt value was held to anyway.
SEX_DIFFERS_M = 0.005


def _sex() -> cl.CustomComparison:
    """Sex, recorded or read from a gendered title (see ``standardise.sex_from_title``).
    Its m is fixed; u is still sampled (how often two random records agree on sex)."""
    return cl.CustomComparison(
        output_column_name="sex",
        comparison_description="Sex (as recorded, else from a gendered title; fixed m)",
        comparison_levels=[
            cll.NullLevel("sex"),
            cll.ExactMatchLevel("sex").configure(
                m_probability=1.0 - SEX_DIFFERS_M, fix_m_probability=True
            ),
            cll.ElseLevel().configure(m_probability=SEX_DIFFERS_M, fix_m_probability=True),
        ],
    )


#: A UK mobile number in the national form ``phone_std`` gives: 07 then nine digits, in the
#: ranges Ofcom allocates to mobiles (071-075, 077-079; not 070 personal numbers or 076
#: pagers).
UK_MOBILE_PATTERN = "07[1-57-9][0-9]{8}"


def _phone() -> cl.CustomComparison:
    """Phone, with fixed weights: a number shared at one home is weak evidence, a mobile
    shared by records living apart is strong.

    A landline is the household's, and a family may give one mobile for all of them: at one
    address a shared number says "same household" (+3 bits, never enough to link). A mobile
    number is a person's own, and kept when they move (number portability); two records at
    different addresses that share one are not explained by living together, so that level
    is worth +8 bits, where both records carry a date of birth. Without one (council tax
    keeps none) a namesake father and son who share a mobile would link on their names and
    the mobile alone, so there a shared mobile counts +3 as before.

    Measured on the synthetic council at 100,000 residents with record history: 2,828 of
    the 6,969 pairs left to stewards shared a mobile at different addresses, 1,727 of them
    with both birth dates, and every one of the 2,818 the council's truth knows was one
    person (people who moved, often under a married surname, keeping their mobile). The
    synthetic council gives each adult one number for life and never shares one, so it
    cannot show the cost: the weight is a judgement, chosen well below what a mobile's
    rarity among random pairs would give (tens of bits), because a relative's mobile given
    as a contact is a real confound; with +8, a different first name (-6.5) or birth date
    (-8) still keeps two people apart. The household trap is unchanged: at one property or
    postcode a shared mobile counts +3, as a landline does.
    """
    apart = (
        f"regexp_matches(phone_std_l, '^{UK_MOBILE_PATTERN}$') "
        # known to live apart: two real postcodes that differ (a missing one, or the
        # no-fixed-abode ZZ99 placeholder, is not known to be apart), and neither the same
        # UPRN nor the same address key (one home with a mistyped postcode)
        "AND postcode_l <> postcode_r "
        "AND postcode_l NOT LIKE 'ZZ99%' AND postcode_r NOT LIKE 'ZZ99%' "
        "AND NOT coalesce(uprn_l = uprn_r, false) "
        "AND NOT coalesce(address_key_l = address_key_r, false) "
        # and both born on record: a namesake father and son who share one mobile are then
        # told apart by their birth dates; without them the names and the mobile alone
        # would link them, so there a shared mobile counts as any shared number
        "AND dob_l IS NOT NULL AND dob_r IS NOT NULL"
    )
    mobile_apart_m, mobile_apart_bits = 0.40, 8.0
    same_m, same_bits = 0.15, 3.0
    else_m = 1.0 - mobile_apart_m - same_m
    else_u = 1.0 - (mobile_apart_m / 2**mobile_apart_bits + same_m / 2**same_bits)
    return cl.CustomComparison(
        output_column_name="phone",
        comparison_description="Phone (fixed weights: a number is shared by a household; "
        "a mobile shared by records living apart is the person's own)",
        comparison_levels=[
            cll.NullLevel("phone_std"),
            _fixed_weight(
                cll.CustomLevel(
                    f"phone_std_l = phone_std_r AND {apart}",
                    label_for_charts="Same mobile number, living apart (both born on record)",
                ),
                m=mobile_apart_m,
                bits=mobile_apart_bits,
            ),
            _fixed_weight(cll.ExactMatchLevel("phone_std"), m=same_m, bits=same_bits),
            _fixed(cll.ElseLevel(), m=else_m, u=else_u),
        ],
    )


def comparisons() -> list[cl.CustomComparison]:
    """Every comparison of the model, in the order evidence is shown to stewards."""
    return [
        _given_name(),
        _family_name(),
        _date_of_birth(),
        _sex(),
        _identifier("ni_key", "ni_number", "National Insurance number (8 chars)"),
        _identifier("nhs_number", "nhs_number", "NHS number"),
        _residence(),
        _email(),
        _phone(),
    ]


#: Comparisons whose parameters are fixed by judgement, never trained.
FIXED_COMPARISONS = ("residence", "phone")

#: Deterministic rules (DuckDB SQL) for estimating the prior (lambda): pairs they
#: find are almost surely the same person.
DETERMINISTIC_RULES: tuple[str, ...] = (
    "l.ni_key = r.ni_key AND l.dob = r.dob",
    "l.nhs_number = r.nhs_number AND l.dob = r.dob",
    "l.given_name_std = r.given_name_std AND l.family_name_std = r.family_name_std "
    "AND l.dob = r.dob",
)
DETERMINISTIC_RECALL = 0.8

#: EM training blocks, as equality keys: identifier- and person-based, never
#: address-only, so EM learns what distinguishes a person, not a household. Each
#: trains m for every comparison that does not use its columns.
EM_TRAINING_BLOCKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("same date of birth", ("dob",)),
    ("same given and family name", ("given_name_std", "family_name_std")),
    ("same NI number", ("ni_key",)),
)


def settings_dict(probability_two_random_records_match: float = 1e-4) -> dict[str, Any]:
    """The untrained Splink settings (DuckDB dialect) for person matching."""
    from splink import SettingsCreator

    creator = SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=[],
        probability_two_random_records_match=probability_two_random_records_match,
        unique_id_column_name=UNIQUE_ID_COLUMN,
        # True so that the gamma_ (level reached) columns are output; the raw
        # matching values are dropped again before pairs leave the matcher.
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        max_iterations=25,
    )
    return creator.create_settings_dict("duckdb")


#: m for levels EM could not observe in the training data (e.g. no nickname
#: pairs in a small extract), keyed by (comparison, level label).
M_FALLBACK: dict[tuple[str, str], float] = {
    ("given_name", "Exact match on given_name_std"): 0.85,
    ("given_name", "Nickname or variant of the same name"): 0.04,
    ("given_name", "Jaro-Winkler >= 0.92"): 0.05,
    ("given_name", "Jaro-Winkler >= 0.80"): 0.02,
    ("given_name", "Is the other's family name (forename and surname swapped)"): 0.005,
    ("given_name", "Same initial only"): 0.02,
    ("given_name", "All other comparisons"): 0.01,
    ("family_name", "Shares a surname part or previous surname"): 0.03,
    ("family_name", "Is the other's given name (forename and surname swapped)"): 0.005,
    ("family_name", "All other comparisons"): 0.03,
    ("dob", "Day and month transposed"): 0.005,
    ("dob", "One digit mistyped or two neighbours swapped"): 0.01,
    ("dob", "Same year and month"): 0.01,
    ("dob", "Within a year"): 0.01,
    ("dob", "Within ten years"): 0.005,
    ("dob", "All other comparisons"): 0.003,
    ("sex", "All other comparisons"): 0.01,
    ("nhs_number", "Exact match on nhs_number"): 0.999,
    ("nhs_number", "One character mistyped or two neighbours swapped"): 0.005,
    ("nhs_number", "All other comparisons"): 0.001,
    ("ni_number", "One character mistyped or two neighbours swapped"): 0.005,
    ("ni_number", "All other comparisons"): 0.001,
    ("email", "All other comparisons"): 0.2,
}

#: Smallest m allowed for a comparison's disagreement ("else") level. EM on
#: clean extracts learns m ~ 1e-16 for "emails differ" or "sex differs", which
#: would veto a true match over one changed email address. Real data disagree.
M_FLOOR_ELSE: dict[str, float] = {
    "given_name": 0.005,
    "family_name": 0.02,  # marriage without a recorded previous surname
    "dob": 0.002,
    "sex": 0.005,
    "ni_number": 0.0005,  # different valid NI numbers are vetoed by hard rules
    "nhs_number": 0.0005,
    "email": 0.15,
}
M_FLOOR = 1e-4

#: Largest u allowed for agreement on a unique identifier. Random sampling sees
#: few pairs where both sides carry an NHS number (social care only), and can
#: return u = 1, which would make agreement on it worthless. And where most people
#: have several records (FEBRL4: every one has two), the sampled "random" pairs
#: include many true matches, so u comes out near (true links / all pairs), 1e-4,
#: which says one random pair in 10,000 shares an NI number. An NI or NHS number is
#: issued to one person; two people share one only by a recording error, far rarer:
#: 1e-6 (still generous for a council of a million).
U_CEILING: dict[tuple[str, str], float] = {
    ("nhs_number", "Exact match on nhs_number"): 1e-6,
    ("ni_number", "Exact match on ni_key"): 1e-6,
    ("email", "Exact match on email_std"): 1e-3,
}
U_FLOOR = 1e-7


def m_floor(comparison: str, is_else: bool) -> float:
    """The smallest m a trained level may keep (a disagreement level has its own)."""
    return M_FLOOR_ELSE.get(comparison, M_FLOOR) if is_else else M_FLOOR


def m_fallback(comparison: str, label: str, is_else: bool) -> float:
    """A sane m for a level EM could not estimate (unobserved, or driven to underflow):
    the judgement value of ``M_FALLBACK`` where there is one, else the level's floor."""
    return M_FALLBACK.get((comparison, label), m_floor(comparison, is_else))


def _number(value: Any) -> float | None:
    """A finite number, or None for anything else (missing, Splink's "level not observed"
    text, NaN or infinity: EM that divides 0 by 0 returns NaN, which no floor catches)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def apply_judgement(settings: dict[str, Any]) -> list[str]:
    """Fill unobserved parameters and floor over-confident ones, in place.

    Returns a steward-readable list of what was changed. Fixed levels are left
    alone; the trained m of each comparison is rescaled to sum to 1 afterwards.
    An m or u that is not a finite number (NaN, infinity) counts as not observed.
    """
    changes: list[str] = []
    for comparison in settings["comparisons"]:
        name = comparison["output_column_name"]
        levels = [l for l in comparison["comparison_levels"] if not l.get("is_null_level")]
        for level in levels:
            label = level.get("label_for_charts") or level["sql_condition"]
            is_else = level["sql_condition"].strip().upper() == "ELSE"
            if not level.get("fix_m_probability"):
                m = _number(level.get("m_probability"))
                if m is None:
                    m = M_FALLBACK.get((name, label), 0.01)
                    changes.append(f"{name}: {label}: m not observed, set to {m}")
                floor = m_floor(name, is_else)
                if m < floor:
                    changes.append(f"{name}: {label}: m {m:.3g} raised to floor {floor}")
                    m = floor
                level["m_probability"] = float(m)
            if not level.get("fix_u_probability"):
                u = _number(level.get("u_probability"))
                if u is None:
                    known = sum(
                        _number(o.get("u_probability")) or 0.0 for o in levels if o is not level
                    )
                    u = max(U_FLOOR, 1.0 - known) if is_else else U_FLOOR
                    changes.append(f"{name}: {label}: u not observed, set to {u:.3g}")
                ceiling = U_CEILING.get((name, label))
                if ceiling is not None and u > ceiling:
                    changes.append(f"{name}: {label}: u {u:.3g} lowered to {ceiling}")
                    u = ceiling
                if u < U_FLOOR:
                    changes.append(f"{name}: {label}: u {u:.3g} raised to floor {U_FLOOR}")
                    u = U_FLOOR
                level["u_probability"] = float(u)
        trained = [l for l in levels if not l.get("fix_m_probability")]
        fixed_total = sum(l["m_probability"] for l in levels if l.get("fix_m_probability"))
        trained_total = sum(l["m_probability"] for l in trained)
        if trained and trained_total > 0 and fixed_total < 1:
            scale = (1.0 - fixed_total) / trained_total
            for level in trained:
                level["m_probability"] *= scale
    return changes


def weight_to_probability(match_weight: float) -> float:
    """Match weight (bits) -> match probability, as Splink computes it."""
    return 1.0 / (1.0 + math.pow(2.0, -match_weight))
