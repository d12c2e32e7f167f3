"""Training survives EM underflow: on very clean data Splink 5's EM can drive the m of a level
never seen among true matches below 1e-300, and Splink then refuses the value (ValueError
from inside its maximisation step), so no model at all came out and a night that retrains
failed. ``train`` now pins such a level at its fallback m, retries the block, and records it.

The council here is tiny, clean and deterministic (see :func:`clean_council`): among
same-name pairs a birth date in the same year and month is seen only between different
people, and EM drives its m to zero for real (no mock of Splink). It did so for each of
the five seeds tried.
"""
from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from joinedup.mci import model_settings as spec
from joinedup.mci import probabilistic
from joinedup.mci.probabilistic import TrainedModel, load_model, score_pairs, train
from joinedup.mci.standardise import standardise

GIVEN = ["Oliver", "Amelia", "Harry", "Isla", "Jack", "Ava", "George", "Mia", "Noah", "Emily",
         "Leo", "Grace"]
FAMILY = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson"]
SYSTEMS = ["housing", "revenues", "hr"]


def _person(rnd: random.Random, key: int, given: str, family: str, born: tuple[int, int, int],
            sex: str) -> dict[str, Any]:
    letters = "ABCEHJKLMNPRSTWXYZ"
    return {
        "given_name": given, "family_name": family, "date_of_birth": "%04d-%02d-%02d" % born,
        "sex": sex, "ni_number": f"{rnd.choice(letters)}{rnd.choice(letters)}{key:06d}{rnd.choice('ABCD')}",
        "postcode": f"CF{rnd.randint(1, 40)} {rnd.randint(1, 9)}AB",
        "address_line_1": f"{rnd.randint(1, 200)} High Street", "email": f"p{key}@example.org",
    }


def clean_council(people: int = 300, seed: int = 1, namesakes: int = 40) -> pd.DataFrame:
    """Canonical records of a small, clean council: 1-3 records a person, identical but that
    a quarter of later records carry an unrelated birth date and no NI number or email (these
    same-person pairs are ambiguous, so EM converges slowly), and some lack the NI number and
    email. The first ``namesakes`` people have a namesake of the other sex born the same year
    and month (a "same year and month" birth date is then seen only between different
    people, and every other field disagrees: its m decays towards zero each iteration)."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []

    def records_of(key: int, person: dict[str, Any]) -> None:
        year = int(person["date_of_birth"][:4])
        for s in range(rnd.choice([1, 2, 2, 3])):
            record = {**person, "source_system": SYSTEMS[s], "source_key": f"{s}-{key}", "person": key}
            if s and rnd.random() < 0.25:
                record["date_of_birth"] = (f"{year + rnd.randint(15, 30)}-{rnd.randint(1, 12):02d}-"
                                           f"{rnd.randint(1, 28):02d}")
                record["ni_number"] = record["email"] = None
            if s and rnd.random() < 0.3:
                record["ni_number"] = record["email"] = None
            rows.append(record)

    for i in range(people):
        given, family = rnd.choice(GIVEN), rnd.choice(FAMILY)
        born = (rnd.randint(1940, 2005), rnd.randint(1, 12), rnd.randint(1, 9))
        sex = rnd.choice("MF")
        records_of(i, _person(rnd, i, given, family, born, sex))
        if i < namesakes:
            other = (born[0], born[1], born[2] + 18)
            records_of(people + i, _person(rnd, people + i, given, family, other, "F" if sex == "M" else "M"))
    frame = pd.DataFrame(rows)
    frame["record_id"] = range(1, len(frame) + 1)
    return frame


@pytest.fixture(scope="module")
def council() -> pd.DataFrame:
    return clean_council()


@pytest.fixture(scope="module")
def trained(council: pd.DataFrame) -> tuple[TrainedModel, list[BaseException]]:
    """The model, and every underflow refusal Splink raised while it was trained."""
    refusals: list[BaseException] = []
    real = probabilistic._underflowed_level

    def spy(exc: BaseException):  # noqa: ANN202
        refusals.append(exc)
        return real(exc)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(probabilistic, "_underflowed_level", spy)
        model = train(standardise(council), u_max_pairs=1e5)
    return model, refusals


def test_splink_really_refused_an_underflowed_m_during_em(trained) -> None:  # noqa: ANN001
    _, refusals = trained
    assert refusals, "the clean council no longer makes EM underflow; make it cleaner"
    exc = refusals[0]
    assert isinstance(exc, ValueError) and "below the minimum allowed value" in str(exc)
    raised_in = []
    tb = exc.__traceback__
    while tb is not None:
        raised_in.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    assert any("splink" in f and "expectation_maximisation" in f for f in raised_in)


def test_training_succeeds_and_records_the_pinned_levels(trained) -> None:  # noqa: ANN001
    model, refusals = trained
    pinned = model.training["em_underflow_pinned"]
    assert len(pinned) == len(refusals) >= 1
    assert not [s for s in model.training["em_blocks_skipped"] if s.get("reason") == "underflow"]
    by_name = {c["output_column_name"]: c for c in model.splink_settings["comparisons"]}
    for entry in pinned:
        assert set(entry) == {"comparison", "level", "parameter", "value", "block"}
        level = next(lv for lv in by_name[entry["comparison"]]["comparison_levels"]
                     if lv.get("label_for_charts") == entry["level"])
        is_else = level["sql_condition"].strip().upper() == "ELSE"
        assert entry["parameter"] == "m"
        assert entry["value"] == spec.m_fallback(entry["comparison"], entry["level"], is_else)
        assert level["fix_m_probability"] is True and level["m_probability"] == entry["value"]


def test_every_parameter_is_a_sane_probability_and_m_sums_to_one(trained) -> None:  # noqa: ANN001
    model, _ = trained
    # A failed EM session trims the linker's settings while it runs: all are back.
    assert model.comparison_names == [c.get_comparison("duckdb").output_column_name for c in spec.comparisons()]
    assert model.training["prior_source"] == "deterministic rules"
    assert 0 < model.splink_settings["probability_two_random_records_match"] < 0.01
    for comparison in model.splink_settings["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for level in levels:
            for param in ("m_probability", "u_probability"):
                value = level[param]
                # Trained values are floored (m 1e-4, u 1e-7); fixed ones are the spec's own.
                floor = 1e-300 if level.get(f"fix_{param}") else 1e-7
                assert math.isfinite(value) and floor <= value <= 1.0, (comparison["output_column_name"], param)
        assert sum(lv["m_probability"] for lv in levels) == pytest.approx(1.0, abs=1e-6), \
            comparison["output_column_name"]


def test_the_model_saves_loads_and_scores(trained, council: pd.DataFrame, tmp_path) -> None:  # noqa: ANN001
    model, _ = trained
    reloaded = load_model(model.save(tmp_path / "model.json"))
    features = standardise(council)
    pairs = score_pairs(reloaded, features, threshold_weight=None)
    assert len(pairs) > 0
    person = council.set_index("record_id")["person"]
    same = person.loc[pairs["record_id_l"]].to_numpy() == person.loc[pairs["record_id_r"]].to_numpy()
    exact = features.set_index("record_id")[["dob", "ni_key"]]
    agree = (exact.loc[pairs["record_id_l"]].to_numpy() == exact.loc[pairs["record_id_r"]].to_numpy()).all(axis=1)
    left = person.loc[pairs["record_id_l"]].to_numpy()
    right = person.loc[pairs["record_id_r"]].to_numpy()
    namesakes = (abs(left - right) == 300) & (np.minimum(left, right) < 40)
    # Records of one person that agree on birth date and NI number link; the namesakes (same
    # name, the other sex, born the same month) do not, nor do different people at large.
    assert (same & agree).sum() > 100 and namesakes.sum() >= 40
    assert (pairs.loc[same & agree, "match_probability"] > 0.99).all()
    assert (pairs.loc[namesakes, "match_probability"] < 0.5).all()
    assert (pairs.loc[~same, "match_probability"] < 0.5).mean() > 0.99


def test_a_refusal_that_is_not_an_underflow_is_not_swallowed() -> None:
    class Training:
        def estimate_parameters_using_expectation_maximisation(self, sql, max_pairs):  # noqa: ANN001, ANN201
            raise ValueError("Error parsing sql_statement")

    class Core:
        def copy(self):  # noqa: ANN201
            return "settings before the block"

    class Settings:
        core_model_settings = Core()

    class Linker:
        training = Training()
        _settings_obj = Settings()

    linker = Linker()
    with pytest.raises(ValueError, match="parsing"):
        probabilistic._em_guarded(linker, "l.dob = r.dob", block="x", max_pairs=None, pinned=[])
    assert linker._settings_obj.core_model_settings == "settings before the block"  # restored


def test_judgement_treats_non_finite_parameters_as_unobserved_and_says_so() -> None:
    settings = spec.settings_dict()
    dob = next(c for c in settings["comparisons"] if c["output_column_name"] == "dob")
    levels = [lv for lv in dob["comparison_levels"] if not lv.get("is_null_level")]
    for level in levels:
        level["m_probability"], level["u_probability"] = 0.1, 0.1
    levels[1]["m_probability"] = float("nan")
    levels[2]["u_probability"] = float("inf")
    levels[3]["u_probability"] = 1e-12
    changes = spec.apply_judgement(settings)
    for level in levels:
        assert math.isfinite(level["m_probability"]) and math.isfinite(level["u_probability"])
    assert levels[3]["u_probability"] == spec.U_FLOOR
    assert sum(lv["m_probability"] for lv in levels) == pytest.approx(1.0)
    said = " | ".join(c for c in changes if c.startswith("dob:"))
    assert f"{levels[1]['label_for_charts']}: m not observed" in said
    assert f"{levels[2]['label_for_charts']}: u not observed" in said
    assert f"{levels[3]['label_for_charts']}: u 1e-12 raised to floor" in said
