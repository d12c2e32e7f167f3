"""Side by side on the same canonical CSVs and machine: JoinedUp (``joinedup link``), Splink 5
alone (a sensible hand-written model) and the ``recordlinkage`` package — wall time, peak
memory and pairwise precision/recall/F1 against the synthetic council's truth.

The CSVs are the staged canonical records, one per source, that ``build_bench`` exports after
its full build (``var/bench/build-<N>/canonical``, with truth.csv and twins.csv beside them),
so all three link exactly the records JoinedUp's own pipeline staged.

Each contender runs in a fresh child process (peak memory = that process's ru_maxrss, which
includes the interpreter and pandas, ~100-200 MB). Every contender ends with persons
(clusters): JoinedUp with its own clustering and guards; Splink alone with its connected
components at match probability >= 0.95; recordlinkage with connected components of the pairs
its ECM (unsupervised Fellegi-Sunter) classifier calls matches. Scores are pairwise over
clusters (:mod:`joinedup.evaluate`), twins merged counted too.

JoinedUp's own overhead: inside the ``joinedup link`` run, the time spent in Splink (training
and scoring, :mod:`joinedup.mci.probabilistic` ``train``/``score_pairs``) is measured apart;
the rest (reading, standardising, deterministic rules, evidence, clustering with guards) is
JoinedUp's own, reported as a share of the total (the issue's target: under 30%).

Run:  .venv/bin/python benchmarks/peers_bench.py --canonical var/bench/build-10000/canonical
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.support import LoadWatch, machine_summary, save_figures  # noqa: E402

CONTENDERS = ("joinedup", "splink", "recordlinkage")
SPLINK_THRESHOLD = 0.95
SYSTEMS = ("housing", "revenues", "socialcare", "hr")


def read_canonical(folder: Path) -> pd.DataFrame:
    """Every source's canonical CSV as one frame with source_system and a unique_id."""
    frames = []
    for path in sorted(folder.glob("*.csv")):
        if path.stem in SYSTEMS:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
            frame.insert(0, "source_system", path.stem)
            frames.append(frame)
    if not frames:
        raise SystemExit(f"no canonical CSVs ({', '.join(SYSTEMS)}) in {folder}: run build_bench first")
    records = pd.concat(frames, ignore_index=True)
    records["unique_id"] = records.source_system + ":" + records.source_key
    return records


def clusters_from_pairs(ids: list[str], pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Connected components (union-find): record id -> cluster id."""
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i: find(i) for i in ids}


def score(folder: Path, assignments: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Pairwise precision/recall/F1 over the records in the CSVs (quarantined ones are in no
    contender's input, so they are left out of the truth too)."""
    from joinedup.evaluate import evaluate, read_truth, read_twins

    present = {(s, k) for s, k, _ in assignments}
    truth = [t for t in read_truth(folder / "truth.csv") if (t[0], t[1]) in present]
    q = evaluate(assignments, truth, read_twins(folder / "twins.csv")).as_dict()
    return {k: q[k] for k in ("records", "persons", "clusters", "precision", "recall", "f1",
                              "false_merges", "missed_merges", "twin_pairs", "twins_merged")}


# -- the contenders (each in its own process) ------------------------------------------------

def run_joinedup(folder: Path, work: Path) -> dict[str, Any]:
    import joinedup.mci.probabilistic as probabilistic
    from benchmarks.support import StageClock
    from joinedup.mci.link_command import link_files

    clock = StageClock()
    clock.wrap(probabilistic, "train", "splink")
    clock.wrap(probabilistic, "score_pairs", "splink")
    paths = [folder / f"{s}.csv" for s in SYSTEMS if (folder / f"{s}.csv").exists()]
    start = time.perf_counter()
    with clock.stage("joinedup"):
        outcome = link_files(paths, work / "joinedup_out.csv", pairs_path=work / "joinedup_pairs.csv")
    wall = time.perf_counter() - start
    out = pd.read_csv(work / "joinedup_out.csv", dtype=str)
    splink_s = clock.figures["splink"].seconds if "splink" in clock.figures else 0.0
    return {"wall_s": wall, "splink_s": splink_s, "own_s": wall - splink_s,
            "pairs_scored": int(outcome.pairs_linked + outcome.pairs_review + outcome.pairs_blocked),
            "mode": outcome.mode,
            "assignments": list(zip(out.source_system, out.source_key, out.master_id))}


def run_splink(folder: Path, work: Path) -> dict[str, Any]:
    """A hand-written Splink 5 model on the canonical fields: what an engineer who read the
    Splink docs and the DESIGN note's advice would write (compound blocking, no placeholder
    blocks, DuckDB's memory capped as JoinedUp's is), trained the tutorial way."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    records = read_canonical(folder)
    start = time.perf_counter()
    frame = records[["unique_id", "source_system", "source_key", "given_name", "family_name", "date_of_birth",
                     "ni_number", "nhs_number", "uprn", "postcode", "address_line_1", "email"]].copy()
    frame["birth_year"] = frame.date_of_birth.str[:4]
    frame["initial"] = frame.given_name.str[:1].str.upper()
    frame["ni8"] = frame.ni_number.str[:8]
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=[
            block_on("family_name", "birth_year"),
            block_on("postcode", "initial"),
            block_on("ni8"),
            block_on("nhs_number"),
            block_on("uprn", "initial"),
            block_on("date_of_birth", "initial"),
        ],
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y-%m-%d"),
            cl.ExactMatch("ni8"),
            cl.ExactMatch("nhs_number"),
            cl.ExactMatch("uprn"),
            cl.PostcodeComparison("postcode"),
            cl.JaroWinklerAtThresholds("address_line_1", [0.9, 0.7]),
            cl.EmailComparison("email"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    # DuckDB takes 80% of the machine by default; like JoinedUp's matcher (and as the DESIGN note
    # advises), the engineer caps it at a quarter of the machine and lets it spill beyond that
    from joinedup.mci.blocking import open_duckdb

    db_api = DuckDBAPI(connection=open_duckdb())
    linker = Linker(db_api.register(frame, dataset_display_name="council"), settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("family_name", "given_name", "date_of_birth"), block_on("ni8")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    em_failed = []
    for rule in ("date_of_birth", "family_name"):
        try:  # on a small council an EM session can drive an m probability to 0: Splink refuses it
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(rule))
        except ValueError as exc:
            em_failed.append(f"EM blocked on {rule}: {str(exc)[:120]}")
    trained = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=0.01, warning_mode="never")
    pairs = predictions.as_pandas_dataframe()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=SPLINK_THRESHOLD).as_pandas_dataframe()
    wall = time.perf_counter() - start
    cluster_of = dict(zip(clusters.unique_id, clusters.cluster_id))
    pairs[["unique_id_l", "unique_id_r", "match_probability"]].to_csv(work / "splink_pairs.csv", index=False)
    return {"wall_s": wall, "train_s": trained - start, "pairs_scored": len(pairs),
            "threshold": SPLINK_THRESHOLD, "em_failed": em_failed,
            "assignments": [(s, k, str(cluster_of[u])) for s, k, u in
                            zip(records.source_system, records.source_key, records.unique_id)]}


def run_recordlinkage(folder: Path, work: Path) -> dict[str, Any]:
    """The recordlinkage package the textbook way: union of blocking indexes, field
    comparisons made binary, the unsupervised ECM (Fellegi-Sunter) classifier."""
    import recordlinkage as rl
    from recordlinkage.index import Block

    records = read_canonical(folder)
    start = time.perf_counter()
    frame = records.set_index("unique_id")
    frame["birth_year"] = frame.date_of_birth.str[:4]
    frame["initial"] = frame.given_name.str[:1].str.upper()
    frame["ni8"] = frame.ni_number.str[:8]
    indexer = rl.Index()
    for keys in (["family_name", "birth_year"], ["postcode", "initial"], ["ni8"], ["nhs_number"],
                 ["uprn", "initial"], ["date_of_birth", "initial"]):
        indexer.add(Block(keys))
    candidates = indexer.index(frame)
    compare = rl.Compare(n_jobs=1)
    compare.string("given_name", "given_name", method="jarowinkler", threshold=0.85, label="given_name")
    compare.string("family_name", "family_name", method="jarowinkler", threshold=0.85, label="family_name")
    compare.exact("date_of_birth", "date_of_birth", label="date_of_birth")
    compare.exact("ni8", "ni8", label="ni_number")
    compare.exact("nhs_number", "nhs_number", label="nhs_number")
    compare.exact("uprn", "uprn", label="uprn")
    compare.exact("postcode", "postcode", label="postcode")
    compare.string("address_line_1", "address_line_1", method="jarowinkler", threshold=0.85, label="address")
    features = compare.compute(candidates, frame)
    classifier = rl.ECMClassifier(binarize=None)
    matches = classifier.fit_predict(features.astype(int))
    wall_pairs = time.perf_counter()
    ids = list(frame.index)
    cluster_of = clusters_from_pairs(ids, [(a, b) for a, b in matches])
    wall = time.perf_counter() - start
    try:
        probs = classifier.prob(features.astype(int))
        pd.DataFrame({"unique_id_l": features.index.get_level_values(0),
                      "unique_id_r": features.index.get_level_values(1),
                      "match_probability": probs.to_numpy()}).to_csv(work / "recordlinkage_pairs.csv", index=False)
    except Exception:  # noqa: BLE001 - the pair file is a by-product; the figures stand without it
        pass
    return {"wall_s": wall, "pairs_scored": len(features), "matches": len(matches),
            "classify_s": wall_pairs - start,
            "assignments": [(s, k, cluster_of[u]) for s, k, u in
                            zip(records.source_system, records.source_key, records.unique_id)]}


def child_main(which: str, folder: Path, work: Path) -> int:
    import logging

    logging.getLogger("splink").setLevel(logging.ERROR)
    run = {"joinedup": run_joinedup, "splink": run_splink, "recordlinkage": run_recordlinkage}[which]
    result = run(folder, work)
    result["quality"] = score(folder, result.pop("assignments"))
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    (work / f"peer-{which}.json").write_text(json.dumps(result), encoding="utf-8")
    return 0


def measure(folder: Path, work: Path, contenders: tuple[str, ...] = CONTENDERS, say=print) -> dict[str, Any]:  # noqa: ANN001
    """Each contender in a fresh process on the same CSVs; their figures side by side."""
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"canonical": str(folder), "machine": machine_summary(), "contenders": {}}
    for which in contenders:
        result = work / f"peer-{which}.json"
        result.unlink(missing_ok=True)
        with LoadWatch() as load:
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", which, str(folder),
                                   str(work)], capture_output=True, text=True, cwd=REPO)
            wall = time.perf_counter() - started
        if proc.returncode != 0 or not result.exists():
            raise RuntimeError(f"contender {which} failed (exit {proc.returncode}): {proc.stderr[-2500:]}")
        fig = json.loads(result.read_text(encoding="utf-8"))
        fig.update(process_wall_s=round(wall, 2), load_average=load.summary())
        out["contenders"][which] = fig
        q = fig["quality"]
        say(f"  {which:14} {fig['wall_s']:8.1f} s  peak {fig['peak_rss_mb']:7.0f} MB  P {q['precision']:.4f} "
            f"R {q['recall']:.4f} F1 {q['f1']:.4f}  load {fig['load_average']['mean']}")
    ju = out["contenders"].get("joinedup")
    if ju:
        out["joinedup_own_share"] = round(ju["own_s"] / ju["wall_s"], 3) if ju["wall_s"] else None
        if "splink" in out["contenders"]:
            sp = out["contenders"]["splink"]
            out["joinedup_vs_splink_alone"] = round(ju["wall_s"] / sp["wall_s"], 2)
    return out


def table(figures: dict[str, Any]) -> str:
    lines = ["| contender | records | pairs scored | wall s | peak MB | precision | recall | F1 | twins merged |",
             "|---|---|---|---|---|---|---|---|---|"]
    names = {"joinedup": "JoinedUp (`joinedup link`)", "splink": f"Splink 5 alone (p >= {SPLINK_THRESHOLD})",
             "recordlinkage": "recordlinkage 0.16 (ECM)"}
    for which, f in figures["contenders"].items():
        q = f["quality"]
        lines.append(f"| {names[which]} | {q['records']:,} | {f['pairs_scored']:,} | {f['wall_s']:.1f} | "
                     f"{f['peak_rss_mb']:.0f} | {q['precision']:.4f} | {q['recall']:.4f} | {q['f1']:.4f} | "
                     f"{q['twins_merged']} of {q['twin_pairs']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _, which, folder, work = argv
        return child_main(which, Path(folder), Path(work))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canonical", type=Path, default=REPO / "var" / "bench" / "build-10000" / "canonical")
    parser.add_argument("--only", action="append", choices=CONTENDERS)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    folder = args.canonical.resolve()
    work = folder.parent / "peers"
    print(f"peers benchmark on {folder.relative_to(REPO) if folder.is_relative_to(REPO) else folder}", flush=True)
    figures = measure(folder, work, tuple(args.only or CONTENDERS), say=lambda s: print(s, flush=True))
    print(table(figures))
    if "joinedup_own_share" in figures:
        ju = figures["contenders"]["joinedup"]
        print(f"JoinedUp's own work: {ju['own_s']:.1f} s of {ju['wall_s']:.1f} s "
              f"({figures['joinedup_own_share']:.0%}; Splink inside JoinedUp {ju['splink_s']:.1f} s). "
              f"Target: under 30%.")
    if "joinedup_vs_splink_alone" in figures:
        print(f"JoinedUp's wall time is {figures['joinedup_vs_splink_alone']}x Splink alone's.")
    if not args.no_save and not args.only:
        records = figures["contenders"]["joinedup"]["quality"]["records"]
        save_figures("peers", str(folder.parent.name), {**figures, "records": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
