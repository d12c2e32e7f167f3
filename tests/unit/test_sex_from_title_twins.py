"""Opposite-sex twins with near-identical names at one flat are not linked automatically when
one of them is known only to council tax, which records a title but no sex.

The case (seen once at 1,000,000 residents): Ciaran on the HR extract (sex M) and Ciara on
council tax (title Miss, no sex), one birth date, one flat, no shared NI number, no email or
phone. Nothing else those systems hold tells them apart, and the given names are one letter
apart (Jaro-Winkler >= 0.92, which the model counts as a typo of one name). The title now
gives Ciara's record the sex F; the sex comparison (fixed m) then weighs against the link.

A small synthetic council is linked with ``joinedup link``'s engine (trained on its own
input) together with two such pairs at two flats: one whose council-tax record says "Miss"
(must not be linked), and a control whose council-tax record has no title (nothing tells the
twins apart, so the model links them: the test shows it is the title that decides).
"""
from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.mci_bench import canonical_frames
from joinedup.mci.link_command import link_records
from joinedup.mci.standardise import standardise
from joinedup.mci.thresholds import MatchThresholds
from joinedup.simulators.council import build_council

RESIDENTS, SEED = 1_100, 5


def _twins(tag: str, names: tuple[str, str, str], born: str, title: str | None, ni_number: str,
           home: tuple[str, str, str]) -> list[dict]:
    """An HR record for him (sex M) and a council-tax record for her (a title, no sex):
    ``names`` is (his given name, hers, the family name), ``home`` (UPRN, line 1, postcode)."""
    his, hers, family = names
    uprn, line_1, postcode = home
    shared = {"family_name": family, "date_of_birth": born, "address_line_1": line_1,
              "town": "Cardiff", "postcode": postcode}
    him = {**shared, "source_system": "hr", "source_key": f"TWIN{tag}M", "given_name": his,
           "sex": "M", "ni_number": ni_number}
    her = {**shared, "source_system": "revenues", "source_key": f"TWIN{tag}F", "given_name": hers,
           "title": title, "sex": None, "uprn": uprn}
    return [him, her]


@pytest.fixture(scope="module")
def linked() -> tuple[pd.DataFrame, pd.DataFrame]:
    frames, _ = canonical_frames(build_council(RESIDENTS, seed=SEED, night=0))
    council = pd.concat([frames[s] for s in sorted(frames)], ignore_index=True)
    twins = pd.DataFrame(
        _twins("A", ("Ciaran", "Ciara", "Prendergast"), "1991-06-14", "Miss", "JK482913C",
               ("100023336956", "Flat 3, 27 Heol Fawr", "CF14 2XY"))
        + _twins("B", ("Daniel", "Daniela", "Llewellyn"), "1987-02-23", None, "JK482914A",
                 ("100023336957", "Flat 5, 9 Ffordd Wen", "CF23 9ZZ"))
    )
    records = pd.concat([council, twins], ignore_index=True)
    records = records.astype(object).where(records.notna(), None)
    assignments, pairs, outcome = link_records(records)
    assert outcome.mode == "rules+model", outcome.mode_reason
    return assignments, pairs


def _master(assignments: pd.DataFrame, key: str) -> str:
    return assignments.loc[assignments.source_key == key, "master_id"].item()


def _pair(pairs: pd.DataFrame, tag: str) -> pd.DataFrame:
    keys = {f"TWIN{tag}M", f"TWIN{tag}F"}
    return pairs[pairs.source_key_l.isin(keys) & pairs.source_key_r.isin(keys)]


def test_twins_whose_council_tax_title_gives_the_sex_are_not_linked_automatically(linked) -> None:  # noqa: ANN001
    assignments, pairs = linked
    assert _master(assignments, "TWINAM") != _master(assignments, "TWINAF")
    scored = _pair(pairs, "A")  # pairs below the review weight are not listed
    assert (scored.outcome != "link").all()
    assert (scored.match_weight < MatchThresholds().link_weight).all()


def test_without_the_title_the_same_twins_are_linked(linked) -> None:  # noqa: ANN001
    """The control: the model cannot tell them apart without a sex (the 1M case)."""
    assignments, pairs = linked
    assert _master(assignments, "TWINBM") == _master(assignments, "TWINBF")
    assert (_pair(pairs, "B").outcome == "link").any()


def test_her_council_tax_title_gives_her_record_a_sex() -> None:
    records = pd.DataFrame(_twins("A", ("Ciaran", "Ciara", "Prendergast"), "1991-06-14", "Miss",
                                  "JK482913C", ("100023336956", "Flat 3, 27 Heol Fawr", "CF14 2XY")))
    records["record_id"] = [1, 2]
    assert standardise(records)["sex"].tolist() == ["M", "F"]
