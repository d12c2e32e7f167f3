"""Match quality of the master citizen index on the synthetic council, measured.

What it does, end to end, exactly as a council would:

1. builds the synthetic council (``build_council(n, seed)``): four systems' native records
   and the truth (which person each record is, which persons are twins);
2. maps each system's native records to canonical person records with
   ``mappings/<system>.yaml`` (the production mappings). A system without a mapping file
   yet uses the stand-in mapping below, and the report says so;
3. writes one canonical CSV per system and runs ``joinedup link`` on them (in process:
   :func:`joinedup.mci.link_command.link_files`), which trains on the input itself;
4. scores the master IDs against the truth with :mod:`joinedup.evaluate`: pairwise
   precision, recall, F1, and twins merged.

Targets (issue 6): precision >= 0.995, recall >= 0.98, zero twins merged.

Run:  .venv/bin/python benchmarks/mci_bench.py [--residents 10000] [--seed 11] [--time-100k]
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Stand-in mappings for systems whose mappings/<system>.yaml is not written yet. They
#: follow the native layouts of the preamble; the production files replace them.
STAND_IN_MAPPINGS: dict[str, str] = {
    "housing": """
description: stand-in (benchmarks/mci_bench.py) for housing tenants
fields:
  source_key:     {from: TenantRef, transform: trim}
  title:          {from: Title, transform: normalise_title}
  given_name:     {from: Forename, transform: [trim, title_case_name]}
  family_name:    {from: Surname, transform: [trim, title_case_name]}
  date_of_birth:  {from: DateOfBirth, transform: {parse_date: {formats: ["%Y-%m-%d"]}}}
  ni_number:      {from: NINumber, transform: normalise_nino}
  uprn:           {from: PropertyUPRN, transform: normalise_uprn}
  address_line_1: {from: AddressLine1, transform: trim}
  address_line_2: {from: AddressLine2, transform: trim}
  town:           {from: Town, transform: trim}
  postcode:       {from: PostCode, transform: normalise_postcode}
  email:          {from: Email, transform: normalise_email}
  phone:          {from: Phone, transform: normalise_phone}
  updated_at:     {from: LastModified, transform: {parse_datetime: {formats: ["%Y-%m-%dT%H:%M:%S"]}}}
""",
    "socialcare": """
description: stand-in (benchmarks/mci_bench.py) for social care clients
fields:
  source_key:     {from: ClientId, transform: trim}
  given_name:     {from: GivenName, transform: [trim, title_case_name]}
  family_name:    {from: FamilyName, transform: [trim, title_case_name]}
  date_of_birth:  {from: BirthDate, transform: {parse_date: {formats: ["%Y-%m-%d"]}}}
  nhs_number:     {from: NHSNumber, transform: normalise_nhs_number}
  ni_number:      {from: NINumber, transform: normalise_nino}
  sex:            {from: Gender, transform: {code_lookup: {codes: {"1": M, "2": F, "9": U}}}}
  address_line_1: {from: Address1, transform: trim}
  address_line_2: {from: Address2, transform: trim}
  town:           {from: Town, transform: trim}
  postcode:       {from: Postcode, transform: normalise_postcode}
  updated_at:     {from: LastUpdated, transform: {parse_datetime: {formats: ["%Y-%m-%dT%H:%M:%S"]}}}
""",
    "hr": """
description: stand-in (benchmarks/mci_bench.py) for HR staff
fields:
  source_key:     {from: EMPNO, transform: trim}
  given_name:     {from: FIRST_FORENAME, transform: [trim, title_case_name]}
  middle_names:   {from: OTHER_FORENAMES, transform: [trim, title_case_name]}
  family_name:    {from: SURNAME, transform: [trim, title_case_name]}
  date_of_birth:  {from: DOB, transform: {parse_date: {formats: ["%Y%m%d"]}}}
  sex:            {from: SEX, transform: {code_lookup: {codes: {M: M, F: F}}}}
  ni_number:      {from: NINO, transform: normalise_nino}
  address_line_1: {from: ADDR1, transform: trim}
  address_line_2: {from: ADDR2, transform: trim}
  town:           {from: TOWN, transform: trim}
  postcode:       {from: POSTCODE, transform: normalise_postcode}
  updated_at:     {from: LAST_CHANGED, transform: {parse_datetime: {formats: ["%Y%m%d%H%M%S"]}}}
""",
}


def mapping_for(system: str):  # noqa: ANN201 - MappingSpec
    """(MappingSpec, where it came from): mappings/<system>.yaml, else the stand-in."""
    from joinedup.mapping.spec import MappingSpec, load_mapping

    path = REPO / "mappings" / f"{system}.yaml"
    if path.is_file():
        return load_mapping(path), str(path.relative_to(REPO))
    if system not in STAND_IN_MAPPINGS:
        raise KeyError(f"no mapping for system {system!r}: write mappings/{system}.yaml")
    return MappingSpec.model_validate(yaml.safe_load(STAND_IN_MAPPINGS[system])), "stand-in"


def canonical_frames(council) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:  # noqa: ANN001
    """Each system's native records mapped to canonical person records."""
    from joinedup.mapping.engine import apply_mapping

    frames, sources = {}, {}
    for system, records in council.records.items():
        if not records:
            continue
        spec, where = mapping_for(system)
        raw = pd.DataFrame(records).astype(object)
        raw = raw.where(raw.notna(), None)
        if where == "stand-in" and system == "hr":  # the mapping language has no 'first word'
            words = raw["FORENAMES"].map(lambda v: v.split(None, 1) if v else [])
            raw["FIRST_FORENAME"] = words.map(lambda w: w[0] if w else None)
            raw["OTHER_FORENAMES"] = words.map(lambda w: w[1] if len(w) > 1 else None)
        frames[system] = apply_mapping(raw, spec, system).drop(columns=["mapping_issues"])
        sources[system] = where
    return frames, sources


def write_canonical_csvs(council, folder: Path) -> tuple[list[Path], dict[str, str]]:  # noqa: ANN001
    """One canonical CSV per system (named by the system: the file stem is the source)."""
    folder.mkdir(parents=True, exist_ok=True)
    frames, sources = canonical_frames(council)
    paths = []
    for system, frame in frames.items():
        path = folder / f"{system}.csv"
        frame.drop(columns=["source_system"]).to_csv(path, index=False)
        paths.append(path)
    return paths, sources


def measure(residents: int, seed: int, workdir: Path | None = None) -> dict:
    """Build, map, link and evaluate one council; the figures as a dict."""
    from joinedup.evaluate import evaluate
    from joinedup.mci.link_command import link_files
    from joinedup.simulators.council import build_council

    started = time.perf_counter()
    council = build_council(residents, seed=seed)
    built = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = workdir or Path(tmp)
        paths, sources = write_canonical_csvs(council, folder)
        mapped = time.perf_counter()
        outcome = link_files(paths, folder / "out.csv", pairs_path=folder / "pairs.csv")
        linked = time.perf_counter()
        out = pd.read_csv(folder / "out.csv", dtype=str)
    assignments = list(zip(out.source_system, out.source_key, out.master_id))
    quality = evaluate(assignments, council.truth, council.twins)
    return {
        "residents": residents, "seed": seed, "records": len(council.truth),
        "mappings": sources, "link": outcome.as_dict(),
        "quality": quality.as_dict(), "summary": quality.summary(),
        "seconds": {"build": round(built - started, 1), "map": round(mapped - built, 1),
                    "link": round(linked - mapped, 1)},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--time-100k", action="store_true", help="also time 100,000 residents")
    args = parser.parse_args(argv)
    runs = [args.residents] + ([100_000] if args.time_100k else [])
    for n in runs:
        figures = measure(n, args.seed)
        q = figures["quality"]
        print(f"synthetic council: {n:,} residents, seed {args.seed}, {figures['records']:,} records")
        print(f"mappings: {json.dumps(figures['mappings'])}")
        print(figures["summary"])
        ok = q["precision"] >= 0.995 and q["recall"] >= 0.98 and q["twins_merged"] == 0
        print(f"targets (P >= 0.995, R >= 0.98, no twins merged): {'MET' if ok else 'NOT MET'}")
        print(f"link: {json.dumps(figures['link'])}")
        print(f"seconds: {json.dumps(figures['seconds'])}; peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
