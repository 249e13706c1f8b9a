"""The benchmark pages' plots, drawn from ``bench/results/`` (the docs build calls :func:`make_all`;
``python docs/plots.py OUT`` draws them by hand).

- ``tabular_vs_autogluon.png``: per real table, kk's paired gap to AutoGluon best_quality on the same
  outer folds (mean ± standard error over the folds, in the metric's better direction), and the
  time each took.
- ``photos_accuracy_time.png``: OOF accuracy against wall time, each method on each photo set.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

LOWER_IS_BETTER = {"rmse", "rmsle", "mae", "logloss"}
KK = "kk +linear"  # today's defaults: the tree families and the linear family, blended
AUTOGLUON = "autogluon best_quality 60s"


def suite_gaps(rows: list[dict]) -> list[tuple[str, float, float, float, float]]:
    """(table, mean gap, s.e., kk seconds a fold, AutoGluon seconds a fold) per table; the gap is in
    percent of AutoGluon's score on the fold (tables of other metrics share one axis), > 0: kk ahead."""
    by: dict[tuple[str, str], dict[tuple[int, int], dict]] = defaultdict(dict)
    for r in rows:
        by[(r["table"], r["system"])][(r["repeat"], r["fold"])] = r
    out = []
    for table in sorted({t for t, _ in by}):
        kk, ag = by.get((table, KK), {}), by.get((table, AUTOGLUON), {})
        keys = sorted(set(kk) & set(ag))
        if len(keys) < 2:
            continue
        sign = -1.0 if kk[keys[0]]["metric"] in LOWER_IS_BETTER else 1.0
        gaps = 100 * np.array([sign * (kk[k]["score"] - ag[k]["score"]) / abs(ag[k]["score"]) for k in keys])
        out.append((table, float(gaps.mean()), float(gaps.std(ddof=1) / np.sqrt(len(gaps))),
                    float(np.mean([kk[k]["seconds"] for k in keys])), float(np.mean([ag[k]["seconds"] for k in keys]))))
    return out


def tabular_plot(results: Path, out: Path) -> Path:
    text = gzip.decompress((results / "tabular_suite.jsonl.gz").read_bytes()).decode()
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    gaps = suite_gaps(rows)
    fig = Figure(figsize=(8, 0.5 * len(gaps) + 1.6))
    ax, bx = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    y = np.arange(len(gaps))
    ax.errorbar([g[1] for g in gaps], y, xerr=[g[2] for g in gaps], fmt="o", color="#3b75af", capsize=3)
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(y, [g[0] for g in gaps])
    ax.set_xlabel("kk against AutoGluon, % of its score (> 0: kk better), ± s.e.")
    bx.barh(y - 0.18, [g[3] for g in gaps], height=0.35, color="#3b75af", label="kk")
    bx.barh(y + 0.18, [g[4] for g in gaps], height=0.35, color="#d62728", label="AutoGluon")
    bx.set_xlabel("seconds a fold")
    bx.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8)
    fig.suptitle("Real tables, outer 5-fold: kk's defaults against AutoGluon (60 s a fold)")
    fig.tight_layout()
    path = out / "tabular_vs_autogluon.png"
    fig.savefig(path, dpi=110)
    return path


def photos_plot(results: Path, out: Path) -> Path:
    with open(results / "photo_sets.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    markers = dict(zip(sorted({r["dataset"] for r in rows}), "osD^v", strict=False))
    colours = dict(zip(sorted({r["method"] for r in rows}), ["#3b75af", "#d62728", "#2ca02c", "#9467bd"], strict=False))
    for r in rows:
        ax.scatter(float(r["seconds"]), float(r["accuracy"]), marker=markers[r["dataset"]],
                   color=colours[r["method"]], s=60)
        ax.annotate(f"{r['dataset']}", (float(r["seconds"]), float(r["accuracy"])), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    for m, c in colours.items():
        ax.scatter([], [], color=c, label=m)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("wall time, 5 folds (s, log scale)")
    ax.set_ylabel("OOF accuracy")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Photo sets: accuracy against wall time")
    fig.tight_layout()
    path = out / "photos_accuracy_time.png"
    fig.savefig(path, dpi=110)
    return path


def make_all(results: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [tabular_plot(results, out), photos_plot(results, out)]


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    print(make_all(here.parent / "bench" / "results", Path(sys.argv[1]) if len(sys.argv) > 1 else here / "_generated"))
