"""Precision and recall against the match threshold, on the synthetic council, so a steward
can choose ``link_weight`` / ``review_weight`` / ``merge_weight`` (schemas/match.yaml)
knowingly.

From the scored pairs ``joinedup link --pairs`` writes (run here on the canonical CSVs that
``build_bench`` exports, or ``--pairs`` to reuse a file): at each match weight ``w``, the
pairs scoring at least ``w`` are called links; precision is the share of them that join two
records of the same resident; recall is their share of ALL true pairs among the records (so
the curve's left end is the blocking's ceiling: pairs never compared are never recalled).
These are pairwise decisions before clustering — the index's own figures (after clustering
and its guards) are in ``build_bench``/``peers_bench``. Pairs a hard constraint blocks
(different NI numbers, twins) are never links; pairs a deterministic rule decided without a
model weight count as links at every threshold when the rule linked them (never when it
sent them to review).

Writes docs/match_thresholds.png and docs/benchmarks/thresholds.json.

Run:  .venv/bin/python benchmarks/threshold_bench.py --canonical var/bench/build-10000/canonical
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.support import save_figures  # noqa: E402

SYSTEMS = ("housing", "revenues", "socialcare", "hr")
WEIGHTS = [w / 2 for w in range(-10, 41)]  # -5 .. 20 in steps of 0.5


def link_pairs(folder: Path, out: Path) -> Path:
    """Run ``joinedup link --pairs`` on the canonical CSVs (the command a steward would run)."""
    inputs = [str(folder / f"{s}.csv") for s in SYSTEMS if (folder / f"{s}.csv").exists()]
    exe = Path(sys.executable).with_name("joinedup")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "joinedup.cli"]
    proc = subprocess.run([*cmd, "link", *inputs, "--out", str(out / "assignments.csv"), "--pairs",
                           str(out / "pairs.csv")], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"joinedup link failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return out / "pairs.csv"


def curve(pairs: pd.DataFrame, truth: pd.DataFrame, weights: list[float] = WEIGHTS) -> dict[str, Any]:
    """Precision and recall of 'link if weight >= w' for each w (pure; see the module doc)."""
    person = {(s, k): p for s, k, p in truth.itertuples(index=False)}
    present = set(zip(pairs.source_system_l, pairs.source_key_l)) | set(zip(pairs.source_system_r, pairs.source_key_r))
    sizes = Counter(person.values())
    true_pairs = sum(n * (n - 1) // 2 for n in sizes.values())
    same = [person.get((a, b)) is not None and person.get((a, b)) == person.get((c, d))
            for a, b, c, d in zip(pairs.source_system_l, pairs.source_key_l, pairs.source_system_r, pairs.source_key_r)]
    frame = pd.DataFrame({"weight": pd.to_numeric(pairs.match_weight, errors="coerce"),
                          "blocked": pairs.outcome.astype(str).str.startswith("blocked"), "same": same})
    frame["rule_link"] = pairs.outcome.astype(str).str.startswith("link").to_numpy()
    frame = frame[~frame.blocked]
    rule_only = frame.weight.isna()
    points = []
    for w in weights:
        called = frame[(rule_only & frame.rule_link) | (frame.weight >= w)]
        tp = int(called.same.sum())
        points.append({"weight": w, "probability": 1 / (1 + 2 ** -w), "links": len(called), "correct": tp,
                       "precision": tp / len(called) if len(called) else 1.0,
                       "recall": tp / true_pairs if true_pairs else 1.0})
    return {"true_pairs": true_pairs, "pairs_scored": int(len(pairs)), "records_in_pairs": len(present),
            "rule_only_pairs": int(rule_only.sum()), "points": points}


def plot(figures: dict[str, Any], out: Path, thresholds: dict[str, float]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = figures["points"]
    xs = [p["weight"] for p in pts]
    low = min(min(p["precision"] for p in pts), min(p["recall"] for p in pts))
    fig, ax = plt.subplots(figsize=(9, 5.2))
    ax.plot(xs, [p["precision"] for p in pts], marker=".", label="precision")
    ax.plot(xs, [p["recall"] for p in pts], marker=".", label="recall")
    f1 = [2 * p["precision"] * p["recall"] / (p["precision"] + p["recall"]) if p["precision"] + p["recall"] else 0
          for p in pts]
    ax.plot(xs, f1, linestyle="--", color="grey", label="F1")
    if "review" in thresholds and thresholds["review"] > xs[0]:
        ax.axvspan(xs[0], thresholds["review"], color="lightgrey", alpha=0.4,
                   label="below the review weight: pairs not written, curve flat")
    for name, w in thresholds.items():
        ax.axvline(w, color="grey", linestyle=":", linewidth=1)
        ax.text(w, max(0.0, low - 0.015), f" {name} {w:g}", rotation=90, va="bottom", fontsize=8, color="dimgrey")
    ax.set_xlabel("match weight threshold (log2 Bayes factor); probability = 1 / (1 + 2^-w)")
    ax.set_ylabel("pairwise precision / recall")
    ax.set_ylim(max(0.0, low - 0.02), 1.005)  # zoomed: the differences that matter are in the last per cent
    ax.grid(True, alpha=0.3)
    top = ax.secondary_xaxis("top", functions=(lambda w: w, lambda w: w))
    ticks = [w for w in (-4, 0, 4, 8, 12, 16, 20) if xs[0] <= w <= xs[-1]]
    top.set_xticks(ticks, [f"{1 / (1 + 2 ** -w):.4g}" for w in ticks])
    top.set_xlabel("match probability")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"Synthetic council ({figures['records']:,} records): links at or above a threshold", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _shown(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canonical", type=Path, default=REPO / "var" / "bench" / "build-10000" / "canonical")
    parser.add_argument("--pairs", type=Path, help="reuse a pairs CSV written by `joinedup link --pairs`")
    parser.add_argument("--png", type=Path, default=REPO / "docs" / "match_thresholds.png")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    from joinedup.mci.thresholds import load_thresholds

    folder = args.canonical.resolve()
    work = folder.parent / "thresholds"
    work.mkdir(parents=True, exist_ok=True)
    pairs_path = args.pairs or link_pairs(folder, work)
    pairs = pd.read_csv(pairs_path, dtype={"source_key_l": str, "source_key_r": str})
    truth = pd.read_csv(folder / "truth.csv", dtype=str)
    keys = set()
    for s in SYSTEMS:
        if (folder / f"{s}.csv").exists():
            keys |= {(s, k) for k in pd.read_csv(folder / f"{s}.csv", dtype=str, usecols=["source_key"]).source_key}
    truth = truth[[(s, k) in keys for s, k in zip(truth.source_system, truth.source_key)]]
    figures = {"records": len(truth), **curve(pairs, truth)}
    t = load_thresholds()
    marks = {"review": t.review_weight, "link": t.link_weight, "merge": t.merge_weight}
    print(f"{figures['records']:,} records, {figures['true_pairs']:,} true pairs, {figures['pairs_scored']:,} "
          f"pairs scored ({figures['rule_only_pairs']:,} decided by a rule alone)")
    print("| weight | probability | links | precision | recall |")
    print("|---|---|---|---|---|")
    for p in figures["points"]:
        if p["weight"] in (-2, 0, 2, 4, 6, 8, 10, 12, 14, 16, 20) or any(p["weight"] == v for v in marks.values()):
            print(f"| {p['weight']:g} | {p['probability']:.4f} | {p['links']:,} | {p['precision']:.4f} | "
                  f"{p['recall']:.4f} |")
    print(f"thresholds in schemas/match.yaml: {marks}")
    if not args.no_save:
        png = plot(figures, args.png, marks)
        saved = save_figures("thresholds", folder.parent.name, {**figures, "thresholds": marks})
        print(f"plot: {_shown(png)}; figures: {_shown(saved)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
