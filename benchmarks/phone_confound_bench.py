"""What a relative's mobile on an older person's record costs the matcher.

Match model 1.5 counts a mobile number shared by records living apart +8 bits
(``joinedup.mci.model_settings._phone``). The synthetic council gives every adult one number
for life and never shares one, so on its own it cannot show what that level costs. This
benchmark plants the confound a real council has: on a share of the records of people aged 70
or more (default 20% of social care's, 5% of the other systems'; a record whose birth date is
missing or a placeholder counts, its age being unknown), the phone becomes the mobile
of a relative living elsewhere: a record of another person with the same family name at
another postcode (a namesake, same first name too, when there is one: a father and son, the
pair most like one person), or failing one, of any other person with a mobile at another
postcode (a carer or neighbour). It links the canonical CSVs as they are and with the planted numbers
(``joinedup link``), scores both against the council's truth, and counts the planted pairs
(an older person's record and the relative's record whose mobile it now carries) that were
scored as candidates and that ended in one person: each is a wrong merge.

Run:  .venv/bin/python benchmarks/phone_confound_bench.py --canonical DIR
      [--share-socialcare 0.2] [--share-other 0.05] [--as-of 2026-12-07] [--seed 7] [--work DIR]
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.peers_bench import SYSTEMS, run_joinedup, score  # noqa: E402
from benchmarks.support import machine_summary  # noqa: E402

OLDER_AGE = 70


class Holder(NamedTuple):
    """A record with a mobile, that an older person's record may be given as a relative's."""
    person: str
    postcode: str
    mobile: str
    record: tuple[str, str]  # (source, key)
    given: str


def _mobile(value: str) -> str | None:
    """The number as the matcher standardises it (``standardise.phone_std``) if it is a UK
    mobile (the match model's pattern), else None."""
    from joinedup.mci.model_settings import UK_MOBILE_PATTERN
    from joinedup.mci.standardise import phone_std

    number = phone_std(value) if value else None
    return number if number and re.fullmatch(UK_MOBILE_PATTERN, number) else None


def plant(folder: Path, out: Path, *, share_socialcare: float, share_other: float, as_of: date,
          seed: int) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Copy the canonical CSVs of ``folder`` to ``out`` with relatives' mobiles planted (see the
    module doc). Returns the planted pairs: ((source, key) of the older person's record,
    (source, key) of the record whose mobile it now carries)."""
    from joinedup.mci.standardise import dob_parts

    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    truth = pd.read_csv(folder / "truth.csv", dtype=str)
    person = dict(zip(zip(truth.source_system, truth.source_key), truth.person_id))
    frames = {s: pd.read_csv(folder / f"{s}.csv", dtype=str, keep_default_na=False)
              for s in SYSTEMS if (folder / f"{s}.csv").exists()}
    holders: list[Holder] = []  # every record with a mobile
    by_family: dict[str, list[Holder]] = {}
    for source, frame in frames.items():
        for key, given, family, postcode, phone in zip(frame.source_key, frame.given_name, frame.family_name,
                                                       frame.postcode, frame.phone):
            mobile = _mobile(phone)
            who = person.get((source, key))
            if mobile and who and postcode:
                holders.append(Holder(who, postcode, mobile, (source, key), given.upper()))
                by_family.setdefault(family.upper(), []).append(holders[-1])
    cutoff = f"{as_of.year - OLDER_AGE:04d}{as_of:-%m-%d}"
    planted = []
    for source, frame in frames.items():
        share = share_socialcare if source == "socialcare" else share_other
        phones = frame.phone.tolist()
        for i, (key, given, family, postcode, dob) in enumerate(zip(frame.source_key, frame.given_name,
                                                                    frame.family_name, frame.postcode,
                                                                    frame.date_of_birth)):
            who = person.get((source, key))
            known_dob = dob_parts(dob)[0] if dob else None
            if not who or (known_dob is not None and known_dob > cutoff) or rng.random() >= share:
                continue
            kin = [h for h in by_family.get(family.upper(), ()) if h.person != who and h.postcode != postcode]
            # a namesake relative (a father and son) first: the pair most like one person
            namesakes = [h for h in kin if h.given == given.upper()]
            elsewhere = namesakes or kin
            for _ in range(100):  # no relative of that name on file: a carer's or neighbour's mobile
                if elsewhere or not holders:
                    break
                h = holders[rng.randrange(len(holders))]
                elsewhere = [h] if h.person != who and h.postcode != postcode else []
            if not elsewhere:
                continue
            relative = rng.choice(elsewhere)
            phones[i] = relative.mobile
            planted.append(((source, key), relative.record))
        frame["phone"] = phones
        frame.to_csv(out / f"{source}.csv", index=False)
    for name in ("truth.csv", "twins.csv"):
        if (folder / name).exists():
            shutil.copyfile(folder / name, out / name)
    return planted


def measure(folder: Path, work: Path, **plant_args: Any) -> dict[str, Any]:
    planted = plant(folder, work / "planted", **plant_args)
    figures: dict[str, Any] = {"planted_pairs": len(planted), "runs": {}}
    for name, data in (("as is", folder), ("planted", work / "planted")):
        (work / name).mkdir(parents=True, exist_ok=True)
        run = run_joinedup(data, work / name)
        master = {(s, k): m for s, k, m in run["assignments"]}
        merged = sum(1 for a, b in planted if master.get(a) is not None and master.get(a) == master.get(b))
        pairs = pd.read_csv(work / name / "joinedup_pairs.csv", dtype=str)
        scored = set(zip(zip(pairs.source_system_l, pairs.source_key_l), zip(pairs.source_system_r, pairs.source_key_r)))
        candidates = sum(1 for a, b in planted if (a, b) in scored or (b, a) in scored)
        figures["runs"][name] = {**score(data, run["assignments"]), "planted_pairs_scored": candidates,
                                 "planted_pairs_merged": merged}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canonical", type=Path, default=REPO / "var" / "bench" / "build-10000" / "canonical")
    parser.add_argument("--share-socialcare", type=float, default=0.2)
    parser.add_argument("--share-other", type=float, default=0.05)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 12, 7))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, help="work folder (default: phone_confound beside --canonical)")
    args = parser.parse_args(argv)
    folder = args.canonical.resolve()
    work = args.work or folder.parent / "phone_confound"
    print(f"phone confound on {folder}; machine {json.dumps(machine_summary())}", flush=True)
    figures = measure(folder, work, share_socialcare=args.share_socialcare, share_other=args.share_other,
                      as_of=args.as_of, seed=args.seed)
    print(f"planted: {figures['planted_pairs']:,} older people's records carry a relative's mobile "
          f"(social care {args.share_socialcare:.0%}, others {args.share_other:.0%}, aged {OLDER_AGE}+ or "
          "age unknown)")
    print("| data | precision | recall | F1 | false merges | planted pairs scored | planted pairs merged "
          "| twins merged |")
    print("|---|---|---|---|---|---|---|---|")
    for name, q in figures["runs"].items():
        print(f"| {name} | {q['precision']:.4f} | {q['recall']:.4f} | {q['f1']:.4f} | {q['false_merges']:,} "
              f"| {q['planted_pairs_scored']:,} | {q['planted_pairs_merged']:,} | {q['twins_merged']} of {q['twin_pairs']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
