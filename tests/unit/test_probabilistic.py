"""The probabilistic matcher: the same person scores high, twins and households low.

One model is trained per module (Splink + DuckDB start-up and training take a few
seconds) on a seeded synthetic population plus hand-made cases. The feature frames
are built here by hand, following the standardise() column contract, so these
tests do not depend on the standardiser.
"""

from __future__ import annotations

import json
import random
from itertools import combinations
from typing import Any

import pandas as pd
import pytest

from joinedup.mci import model_settings
from joinedup.mci.thresholds import MatchThresholds
from joinedup.mci.probabilistic import (
    FeatureFrameError,
    ModelFileError,
    TrainedModel,
    explain_pair,
    explain_records,
    load_model,
    score_pairs,
    score_pairs_with_report,
    train,
)

NICKNAME_ROOTS = {
    "WILLIAM": {"WILLIAM", "BILL", "WILL", "BILLY", "LIAM"},
    "BILL": {"WILLIAM", "BILL"},
    "ELIZABETH": {"ELIZABETH", "LIZ", "BETH", "BETTY", "LIZZIE"},
    "LIZ": {"ELIZABETH", "LIZ"},
    "ROBERT": {"ROBERT", "BOB", "ROB", "BOBBY"},
    "BOB": {"ROBERT", "BOB"},
    "MARGARET": {"MARGARET", "MAGGIE", "PEGGY", "MEG"},
    "PEGGY": {"MARGARET", "PEGGY"},
    "DAVID": {"DAVID", "DAVE", "DAFYDD"},
    "DAFYDD": {"DAVID", "DAFYDD"},
}


def _phonetic(name: str | None) -> str | None:
    """A small Soundex, enough for tests (the real one lives in standardise)."""
    if not name:
        return None
    codes = {c: d for d, letters in {
        "1": "BFPV", "2": "CGJKQSXZ", "3": "DT", "4": "L", "5": "MN", "6": "R"
    }.items() for c in letters}
    letters = [c for c in name.upper() if c.isalpha()]
    if not letters:
        return None
    out, last = letters[0], codes.get(letters[0], "")
    for c in letters[1:]:
        code = codes.get(c, "")
        if code and code != last:
            out += code
        if c not in "HW":
            last = code
    return (out + "000")[:4]


def feature_row(
    record_id: int,
    given: str | None,
    family: str | None,
    dob: str | None,
    *,
    sex: str | None = None,
    middle: str | None = None,
    previous_family: tuple[str, ...] = (),
    ni: str | None = None,
    nhs: str | None = None,
    uprn: str | None = None,
    postcode: str | None = None,
    address_key: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    source_system: str = "housing",
    dob_is_placeholder: bool = False,
) -> dict[str, Any]:
    given = given.upper() if given else None
    family = family.upper() if family else None
    roots = sorted(NICKNAME_ROOTS.get(given, {given})) if given else None
    parts = sorted({*(family.split("-") if family else []), *previous_family}) or None
    return {
        "record_id": record_id,
        "source_system": source_system,
        "source_key": f"{source_system[:2].upper()}{record_id:07d}",
        "given_name_std": given,
        "given_name_roots": "|".join(roots) if roots else None,
        "given_initial": given[0] if given else None,
        "middle_names_std": middle,
        "family_name_std": family,
        "family_name_parts": "|".join(parts) if parts else None,
        "family_name_phonetic": _phonetic(family),
        "dob": None if dob_is_placeholder else dob,
        "dob_year": int(dob[:4]) if dob else None,
        "dob_is_placeholder": dob_is_placeholder,
        "sex": sex,
        "ni_key": ni[:8] if ni else None,
        "nhs_number": nhs,
        "uprn": uprn,
        "postcode": postcode,
        "postcode_outward": postcode.split(" ")[0] if postcode else None,
        "address_key": address_key,
        "email_std": email,
        "phone_std": phone,
        "deceased": False,
    }


_NI_LETTERS = "ABCEGHJKLMNPRSTWXYZ"


def synthetic_population(n_people: int = 1500, seed: int = 7) -> pd.DataFrame:
    """Seeded residents in households, ~30% with a second record in another system
    (typos, nicknames, moves, missing fields). Record ids start at 1."""
    from faker import Faker

    rng = random.Random(seed)
    fake = Faker("en_GB")
    Faker.seed(seed)
    first_f = list(dict.fromkeys(fake.first_name_female() for _ in range(400)))
    first_m = list(dict.fromkeys(fake.first_name_male() for _ in range(400)))
    surnames = list(dict.fromkeys(fake.last_name() for _ in range(600)))
    rows: list[dict[str, Any]] = []
    next_id = 1
    person = 0
    while person < n_people:
        uprn = str(rng.randint(10_000_000, 99_999_999))
        outward = f"{rng.choice('BCDLMNS')}{rng.choice('ABEHLMNRSTW')}{rng.randint(1, 20)}"
        postcode = f"{outward} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        address_key = f"{rng.randint(1, 200)} {fake.street_name().upper()}"
        phone = f"01{rng.randint(100000000, 999999999)}" if rng.random() < 0.5 else None
        family = rng.choice(surnames)
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
            if person >= n_people:
                break
            person += 1
            sex = rng.choice("FM")
            given = rng.choice(first_f if sex == "F" else first_m)
            dob = f"{rng.randint(1935, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            ni = (
                f"{rng.choice(_NI_LETTERS[:-3])}{rng.choice(_NI_LETTERS)}"
                f"{rng.randint(0, 999999):06d}{rng.choice('ABCD')}"
                if rng.random() < 0.6
                else None
            )
            email = f"{given}.{family}{rng.randint(1, 99)}@EXAMPLE.COM" if rng.random() < 0.4 else None
            base = dict(
                sex=sex, ni=ni, uprn=uprn, postcode=postcode, address_key=address_key,
                email=email, phone=phone,
            )
            rows.append(feature_row(next_id, given, family, dob, **base))
            next_id += 1
            if rng.random() < 0.3:
                g, f, d = given, family, dob
                kw = dict(base, source_system="revenues")
                roll = rng.random()
                if roll < 0.15:
                    g = g[:-1] + rng.choice("AEIOU") if len(g) > 3 else g
                elif roll < 0.25:
                    f = f[:2] + f[3:] if len(f) > 4 else f
                elif roll < 0.35:
                    d = f"{d[:8]}{rng.randint(1, 28):02d}"
                elif roll < 0.45:
                    kw.update(uprn=None, postcode=f"{outward} 9ZZ", address_key="1 NEW ROAD")
                if rng.random() < 0.5:
                    kw["ni"] = None
                if rng.random() < 0.3:
                    kw["email"] = None
                rows.append(feature_row(next_id, g, f, d, **kw))
                next_id += 1
    return pd.DataFrame(rows)


# Hand-made cases, ids from 100_001 so they never collide with the population.
CASES = {
    "nickname": (100_001, 100_002),
    "maiden_name": (100_003, 100_004),
    "transposed_dob": (100_005, 100_006),
    "twins": (100_007, 100_008),
    "household": (100_009, 100_010, 100_011, 100_012),
}


def hand_made_cases() -> pd.DataFrame:
    home = dict(uprn="10091234567", postcode="LS6 2AB", address_key="14 ASH GROVE",
                phone="01132000001")
    twins_home = dict(uprn="10091239999", postcode="CF10 1AA", address_key="7 HEOL WEN",
                      phone="02920000002")
    rows = [
        # the same man as William and as Bill, NI number in one system only
        feature_row(100_001, "William", "Okonkwo", "1961-03-14", sex="M",
                    ni="JK123456C", postcode="M14 5RT", address_key="3 PARK ROAD",
                    uprn="20001", source_system="housing"),
        feature_row(100_002, "Bill", "Okonkwo", "1961-03-14", sex="M",
                    postcode="M14 5RT", address_key="3 PARK ROAD",
                    source_system="revenues"),
        # the same woman under her married (hyphenated) name and her maiden name
        feature_row(100_003, "Priyanka", "Nair-Whitfield", "1984-11-02", sex="F",
                    previous_family=("NAIR",), nhs="9434765919",
                    postcode="B15 2TT", address_key="88 ELM ROW", source_system="socialcare"),
        feature_row(100_004, "Priyanka", "Nair", "1984-11-02", sex="F",
                    nhs="9434765919", postcode="B29 6QQ", address_key="1 OAK CLOSE",
                    source_system="hr"),
        # the same man with day and month swapped in one system
        feature_row(100_005, "Tomasz", "Wisniewski", "1975-04-09", sex="M",
                    ni="AB654321D", postcode="NG7 1AA", address_key="21 DERBY ROAD",
                    source_system="revenues"),
        feature_row(100_006, "Tomasz", "Wisniewski", "1975-09-04", sex="M",
                    ni="AB654321D", postcode="NG7 1AA", address_key="21 DERBY ROAD",
                    source_system="hr"),
        # twins: one home, one surname, one birthday, different first names
        feature_row(100_007, "Rhys", "Llewellyn", "2001-06-30", sex="M", **twins_home),
        feature_row(100_008, "Owen", "Llewellyn", "2001-06-30", sex="M", **twins_home),
        # a household of four at one UPRN
        feature_row(100_009, "Graham", "Hartley", "1968-01-22", sex="M", **home),
        feature_row(100_010, "Susan", "Hartley", "1970-08-05", sex="F", **home),
        feature_row(100_011, "Jack", "Hartley", "1996-12-11", sex="M", **home),
        feature_row(100_012, "Chloe", "Hartley", "1999-02-17", sex="F", **home),
    ]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Shared model
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return pd.concat([synthetic_population(), hand_made_cases()], ignore_index=True)


@pytest.fixture(scope="module")
def model(features: pd.DataFrame, tmp_path_factory) -> TrainedModel:
    return train(
        features,
        u_max_pairs=1e6,
        temp_directory=tmp_path_factory.mktemp("duckdb"),
        model_version="test-1",
    )


@pytest.fixture(scope="module")
def all_pairs(model: TrainedModel, features: pd.DataFrame) -> pd.DataFrame:
    return score_pairs(model, features, threshold_weight=-1000.0)


def _pair(frame: pd.DataFrame, a: int, b: int) -> pd.Series:
    hit = frame[(frame.record_id_l == min(a, b)) & (frame.record_id_r == max(a, b))]
    assert len(hit) == 1, f"pair {a}-{b} was not scored"
    return hit.iloc[0]


# ---------------------------------------------------------------------------
# The same person, three ways
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["nickname", "maiden_name", "transposed_dob"])
def test_same_person_scores_high(all_pairs: pd.DataFrame, case: str) -> None:
    pair = _pair(all_pairs, *CASES[case])
    assert pair.match_weight > 10
    assert pair.match_probability > 0.999


def test_nickname_and_transposed_date_are_named_in_the_evidence(
    model: TrainedModel, all_pairs: pd.DataFrame
) -> None:
    nickname = explain_pair(model, _pair(all_pairs, *CASES["nickname"])).set_index("field")
    assert nickname.loc["given_name", "level"] == "Nickname or variant of the same name"
    assert nickname.loc["given_name", "match_weight"] > 0
    swapped = explain_pair(model, _pair(all_pairs, *CASES["transposed_dob"])).set_index("field")
    assert swapped.loc["dob", "level"] == "Day and month transposed"
    maiden = explain_pair(model, _pair(all_pairs, *CASES["maiden_name"])).set_index("field")
    assert maiden.loc["family_name", "level"] == "Shares a surname part or previous surname"


# ---------------------------------------------------------------------------
def test_field_evidence_gives_explain_pairs_rows(all_pairs: pd.DataFrame, model: TrainedModel) -> None:
    from joinedup.mci.probabilistic import field_evidence

    for case in ("nickname", "transposed_dob", "twins"):
        pair = _pair(all_pairs, *CASES[case])
        table = explain_pair(model, pair)
        rows = table[~table.field.isin(["prior", "total"])]
        fast = field_evidence(model, pair)
        assert [f for f, *_ in fast] == rows.field.tolist()
        assert [lvl for _, lvl, *_ in fast] == rows.level.tolist()
        assert [w for *_, w, _ in fast] == pytest.approx(rows.match_weight.tolist())


# Twins and households: never enough to link
# ---------------------------------------------------------------------------


def test_twins_at_one_address_score_low(all_pairs: pd.DataFrame, model: TrainedModel) -> None:
    pair = _pair(all_pairs, *CASES["twins"])
    assert pair.match_probability < 0.01
    evidence = explain_pair(model, pair).set_index("field")
    assert "twin pattern" in evidence.loc["given_name", "level"]


def test_every_pair_in_a_household_of_four_scores_low(
    model: TrainedModel, features: pd.DataFrame
) -> None:
    household = CASES["household"]
    scored = score_pairs_with_report(
        model,
        features,
        threshold_weight=None,
        explicit_pairs=list(combinations(household, 2)),
    ).pairs
    assert len(scored) == 6
    assert (scored.match_probability < 0.001).all()
    # They share a home and a phone: the evidence shows it, capped by design.
    first = explain_pair(model, scored.iloc[0]).set_index("field")
    assert first.loc["residence", "level"].startswith("Same property")
    assert first.loc["residence", "match_weight"] == pytest.approx(4.0)
    assert first.loc["phone", "match_weight"] == pytest.approx(3.0)


def test_namesakes_sharing_an_email_made_of_their_name_score_low(
    model: TrainedModel, features: pd.DataFrame
) -> None:
    """Two Siobhan Kellys, born years apart, living apart, both on file as
    siobhan.kelly@...: the address is spelled from the name they share, so it adds only
    the fixed few bits and does not link them (at 100,000 residents such pairs were most
    of the false merges). An address NOT made of the name keeps its trained, strong weight."""
    namesakes = pd.DataFrame([
        feature_row(200_001, "Siobhan", "Kelly", "1971-07-11", sex="F",
                    postcode="NP18 4HN", address_key="2 RIVER VIEW", uprn="30001",
                    email="SIOBHAN.KELLY@GMAIL.COM"),
        feature_row(200_002, "Siobhan", "Kelly", "1965-02-22", sex="F",
                    postcode="NP10 0DA", address_key="9 HILL STREET", uprn="30002",
                    email="SIOBHAN.KELLY@GMAIL.COM", source_system="revenues"),
        feature_row(200_003, "Siobhan", "Kelly", "1971-07-11", sex="F",
                    postcode="NP18 4HN", address_key="2 RIVER VIEW", uprn="30001",
                    email="SK_4821@GMAIL.COM"),
        feature_row(200_004, "Siobhan", "Kelly", "1965-02-22", sex="F",
                    postcode="NP10 0DA", address_key="9 HILL STREET", uprn="30002",
                    email="SK_4821@GMAIL.COM", source_system="revenues"),
    ])
    scored = score_pairs_with_report(
        model,
        pd.concat([features, namesakes], ignore_index=True),
        threshold_weight=None,
        explicit_pairs=[(200_001, 200_002), (200_003, 200_004)],
    ).pairs
    name_made = explain_pair(model, _pair(scored, 200_001, 200_002)).set_index("field")
    other = explain_pair(model, _pair(scored, 200_003, 200_004)).set_index("field")
    assert name_made.loc["email", "level"].startswith("Same email, spelled from")
    assert name_made.loc["email", "match_weight"] == pytest.approx(4.0)
    # Below the review line: not linked, not even put to a steward.
    assert _pair(scored, 200_001, 200_002).match_weight < MatchThresholds().review_weight
    assert other.loc["email", "level"] == "Exact match on email_std"
    assert other.loc["email", "match_weight"] > name_made.loc["email", "match_weight"] + 4


def test_a_mobile_shared_by_records_living_apart_is_strong_evidence_a_shared_home_is_not(
    model: TrainedModel, features: pd.DataFrame
) -> None:
    """A woman who married and moved keeps her mobile: her two records differ in surname and
    address, agree on first name, birth date and mobile, and link (the shared mobile at
    different addresses, both born on record, is +8 bits). At one home the same shared mobile
    is the household's (+3, as a landline): a mother and daughter who give one mobile stay
    far apart, and so do a mother in a care home and the daughter whose mobile is her contact
    number. A landline shared at different addresses gets no more than at one, and nor does a
    mobile shared by namesakes with no birth date on record (a father and son)."""
    def moved_woman(first_id: int, phone: str) -> list[dict[str, Any]]:
        """One woman: maiden name at her parents' flat, married name at her own home."""
        return [
            feature_row(first_id, "Bethan", "Pryce", "1990-05-17", sex="F", postcode="NP20 4AB",
                        address_key="5 DOCK STREET", uprn="40001", phone=phone),
            feature_row(first_id + 1, "Bethan", "Morgan", "1990-05-17", sex="F", postcode="NP44 2CD",
                        address_key="31 LAKE ROAD", uprn="40002", phone=phone, source_system="revenues"),
        ]

    cases = pd.DataFrame([
        *moved_woman(300_001, "07712345678"),
        # mother and daughter at one home, one mobile between them
        feature_row(300_003, "Carys", "Lloyd", "1962-09-03", sex="F", postcode="NP19 8EF",
                    address_key="12 CHURCH LANE", uprn="40003", phone="07898765432"),
        feature_row(300_004, "Ffion", "Lloyd", "1993-01-28", sex="F", postcode="NP19 8EF",
                    address_key="12 CHURCH LANE", uprn="40003", phone="07898765432",
                    source_system="revenues"),
        # a mother in a care home whose contact number is her daughter's mobile
        feature_row(300_005, "Glenys", "Lloyd", "1938-11-12", sex="F", postcode="NP18 1GH",
                    address_key="THE LAURELS CARE HOME", uprn="40005", phone="07898765432",
                    source_system="socialcare"),
        # the same woman's landline on records at different addresses
        *moved_woman(300_006, "01633123456"),
        # a namesake father and son on council tax (no birth dates), the son moved round the
        # corner, one mobile between them
        feature_row(300_008, "Gareth", "Pugh", None, sex="M", postcode="NP20 5JK",
                    address_key="8 FIELD ROAD", uprn="40008", phone="07555123123",
                    source_system="revenues"),
        feature_row(300_009, "Gareth", "Pugh", None, sex="M", postcode="NP20 6LM",
                    address_key="2 MILL STREET", uprn="40009", phone="07555123123",
                    source_system="revenues"),
    ])
    pairs = [(300_001, 300_002), (300_003, 300_004), (300_004, 300_005), (300_006, 300_007),
             (300_008, 300_009)]
    scored = score_pairs_with_report(
        model, pd.concat([features, cases], ignore_index=True), threshold_weight=None,
        explicit_pairs=pairs,
    ).pairs
    thresholds = MatchThresholds()
    moved = _pair(scored, 300_001, 300_002)
    moved_phone = explain_pair(model, moved).set_index("field").loc["phone"]
    assert moved_phone.level == "Same mobile number, living apart (both born on record)"
    assert moved_phone.match_weight == pytest.approx(8.0)
    assert moved.match_weight >= thresholds.link_weight

    at_home = _pair(scored, 300_003, 300_004)
    home_phone = explain_pair(model, at_home).set_index("field").loc["phone"]
    assert home_phone.level == "Exact match on phone_std"
    assert home_phone.match_weight == pytest.approx(3.0)
    assert at_home.match_weight < thresholds.review_weight

    contact = _pair(scored, 300_004, 300_005)
    assert explain_pair(model, contact).set_index("field").loc["phone", "level"] == "Same mobile number, living apart (both born on record)"
    assert contact.match_weight < thresholds.review_weight

    landline = _pair(scored, 300_006, 300_007)
    landline_phone = explain_pair(model, landline).set_index("field").loc["phone"]
    assert landline_phone.level == "Exact match on phone_std"
    assert landline.match_weight == pytest.approx(moved.match_weight - 5.0, abs=1e-6)

    namesakes = _pair(scored, 300_008, 300_009)
    namesake_phone = explain_pair(model, namesakes).set_index("field").loc["phone"]
    assert namesake_phone.level == "Exact match on phone_std"  # no birth dates: any shared number
    assert namesake_phone.match_weight == pytest.approx(3.0)


def test_household_parameters_are_fixed_not_learnt(model: TrainedModel) -> None:
    comparisons = {c["output_column_name"]: c for c in model.splink_settings["comparisons"]}
    for name in model_settings.FIXED_COMPARISONS:
        for level in comparisons[name]["comparison_levels"]:
            if not level.get("is_null_level"):
                assert level["fix_m_probability"] and level["fix_u_probability"]
    assert all(
        "residence" not in str(b) and "uprn" not in str(b)
        for b in model.training["em_blocks_used"]
    )


# ---------------------------------------------------------------------------
# Evidence, persistence, incremental scoring
# ---------------------------------------------------------------------------


def test_explanation_sums_to_the_match_weight(
    model: TrainedModel, all_pairs: pd.DataFrame
) -> None:
    pair = _pair(all_pairs, *CASES["nickname"])
    evidence = explain_pair(model, pair)
    fields = evidence[evidence.field != "total"]
    assert fields.match_weight.sum() == pytest.approx(pair.match_weight, abs=1e-6)
    assert set(fields.field) == {"prior", *model.comparison_names}
    total = evidence.set_index("field").loc["total"]
    assert total.bayes_factor == pytest.approx(2**pair.match_weight, rel=1e-6)


def test_explain_records_scores_a_pair_no_rule_found(
    model: TrainedModel, features: pd.DataFrame
) -> None:
    evidence = explain_records(model, features, 100_001, 100_012).set_index("field")
    assert evidence.loc["total", "match_weight"] < 0


def test_saved_model_reloads_and_scores_identically(
    model: TrainedModel, features: pd.DataFrame, all_pairs: pd.DataFrame, tmp_path
) -> None:
    path = model.save(tmp_path / "models" / "match_model.json")
    saved = json.loads(path.read_text("utf-8"))
    assert saved["model_version"] == "test-1"
    assert saved["spec_version"] == model_settings.MODEL_SPEC_VERSION
    assert saved["trained_at"] and saved["features"] == list(model_settings.FEATURE_COLUMNS)
    reloaded = load_model(path)
    again = score_pairs(reloaded, features, threshold_weight=-1000.0)
    pd.testing.assert_frame_equal(again, all_pairs, check_exact=False, rtol=1e-9)


def test_a_model_from_another_specification_is_refused(
    model: TrainedModel, tmp_path
) -> None:
    path = model.save(tmp_path / "m.json")
    data = json.loads(path.read_text("utf-8"))
    data["spec_version"] = "0.1"
    path.write_text(json.dumps(data), "utf-8")
    with pytest.raises(ModelFileError, match="Retrain"):
        load_model(path)
    with pytest.raises(ModelFileError, match="no match model"):
        load_model(tmp_path / "absent.json")


def test_a_night_retrains_when_the_saved_model_is_for_an_older_specification(
    model: TrainedModel, features: pd.DataFrame, tmp_path
) -> None:
    """An upgrade that changes the comparisons must not stop the night: it retrains and says so,
    and the old file stays for explaining past links."""
    from joinedup.mci.match import choose_model
    from joinedup.mci.thresholds import load_thresholds

    old = model.save(tmp_path / "old.json")
    data = json.loads(old.read_text("utf-8"))
    data["spec_version"] = "0.1"
    old.write_text(json.dumps(data), "utf-8")
    saved: list[TrainedModel] = []
    thresholds = load_thresholds().model_copy(update={"min_records_for_model": 10})
    choice = choose_model(features, thresholds, load_current=lambda: (load_model(old), old),
                          save=lambda m: saved.append(m) or tmp_path / "new.json")
    assert choice.trained_now and saved and choice.model is saved[0]
    assert choice.model.spec_version == model_settings.MODEL_SPEC_VERSION
    assert "older specification" in choice.reason and old.exists()


def test_new_ids_restricts_pairs_to_new_records(
    model: TrainedModel, features: pd.DataFrame, all_pairs: pd.DataFrame
) -> None:
    new_ids = {CASES["nickname"][1], CASES["twins"][1], 5, 17}
    night = score_pairs(model, features, new_ids=new_ids, threshold_weight=-1000.0)
    assert len(night) > 0
    touches = night.record_id_l.isin(new_ids) | night.record_id_r.isin(new_ids)
    assert touches.all()
    expected = all_pairs[
        all_pairs.record_id_l.isin(new_ids) | all_pairs.record_id_r.isin(new_ids)
    ].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        night.drop(columns="blocking_rule"),
        expected.drop(columns="blocking_rule"),
        check_exact=False,
        rtol=1e-9,
    )


def test_threshold_weight_drops_weaker_pairs(
    model: TrainedModel, features: pd.DataFrame, all_pairs: pd.DataFrame
) -> None:
    strong = score_pairs(model, features, threshold_weight=5.0)
    assert (strong.match_weight >= 5.0).all()
    assert len(strong) == int((all_pairs.match_weight >= 5.0).sum())


def test_pairs_carry_no_raw_personal_values(all_pairs: pd.DataFrame) -> None:
    assert not any(c.endswith(("_std_l", "_std_r", "dob_l", "dob_r")) for c in all_pairs.columns)


def test_features_without_a_contract_column_are_refused(
    model: TrainedModel, features: pd.DataFrame
) -> None:
    with pytest.raises(FeatureFrameError, match="given_name_roots"):
        score_pairs(model, features.drop(columns="given_name_roots"), threshold_weight=0)
    duplicated = pd.concat([features.head(3), features.head(1)])
    with pytest.raises(FeatureFrameError, match="record_id"):
        score_pairs(model, duplicated, threshold_weight=0)
