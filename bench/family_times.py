"""Where kk baseline's time goes, per family, for kk variants of the tabular suite run on the same folds.

    python bench/family_times.py "kk seq" "kk par" [--results bench/results/tabular_suite.jsonl.gz]

From the suite's rows (``bench/tabular_suite.py``): each family's fit time a fold, the time outside
the families (``kk new``, start-up and imports, run files, the blend) and the whole command's, as
means over the (table, fold) pairs every label ran; kk's time against AutoGluon best_quality's on
the same folds; and whether the submissions scored the same (the variants should only differ in time).
A family alone is stored as its fit time plus the time outside the families (``kk_members``), so
with n families: outside = (sum of the families alone - whole) / (n - 1).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from tabular_suite import HERE, load_results

FAMILIES = ("rf", "lgbm", "linear", "nn", "catboost")


def per_fold(rows: list[dict], label: str) -> dict[tuple, dict[str, float]]:
    """{(table, repeat, fold): {"whole", "outside", "score", <family>: fit seconds}} for one label."""
    out: dict[tuple, dict[str, float]] = defaultdict(dict)
    for r in rows:
        key = (r["table"], r["repeat"], r["fold"])
        if r["system"] == label:
            out[key]["whole"], out[key]["score"] = r["seconds"], r["score"]
        elif r["system"].startswith(f"{label} single ") and r["system"].split()[-1] in FAMILIES:
            out[key]["alone " + r["system"].split()[-1]] = r["seconds"]
    for v in out.values():
        alone = {k.split()[-1]: s for k, s in v.items() if k.startswith("alone ")}
        if "whole" in v and len(alone) > 1:
            v["outside"] = (sum(alone.values()) - v["whole"]) / (len(alone) - 1)
            v.update({f: s - v["outside"] for f, s in alone.items()})
    return {k: v for k, v in out.items() if "outside" in v}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("labels", nargs="+")
    ap.add_argument("--results", default=str(HERE / "results" / "tabular_suite.jsonl.gz"))
    ap.add_argument("--ag", default="autogluon best_quality 60s")
    args = ap.parse_args()
    rows = load_results(Path(args.results))
    runs = {lab: per_fold(rows, lab) for lab in args.labels}
    ag = {(r["table"], r["repeat"], r["fold"]): r["seconds"] for r in rows if r["system"] == args.ag}
    keys = sorted(set.intersection(*(set(v) for v in runs.values())) & set(ag))
    print(f"{len(keys)} (table, fold) pairs that every label and {args.ag} ran, {len({k[0] for k in keys})} tables")
    print("| per fold, mean | " + " | ".join(args.labels) + " |\n|---|" + "---|" * len(args.labels))
    for part in ("outside", *FAMILIES, "whole"):
        vals = [[runs[lab][k].get(part) for k in keys] for lab in args.labels]
        if all(v is None for v in vals[0]):
            continue
        print(f"| {part} | " + " | ".join(f"{np.mean([x for x in v if x is not None]):.1f} s" for v in vals) + " |")
    ag_mean = np.mean([ag[k] for k in keys])
    for lab in args.labels:
        whole = np.array([runs[lab][k]["whole"] for k in keys])
        ratio = whole / np.array([ag[k] for k in keys])
        print(f"{lab}: {whole.mean():.1f} s a fold against AutoGluon's {ag_mean:.1f} s: {whole.mean() / ag_mean:.2f} "
              f"of it (median table {np.median(ratio):.2f}, largest {ratio.max():.2f} on "
              f"{keys[int(ratio.argmax())][0]})")
    first = args.labels[0]
    for lab in args.labels[1:]:
        diff = [k for k in keys if abs(runs[lab][k]["score"] - runs[first][k]["score"]) > 1e-9]
        print(f"{lab} against {first}: submissions scored differently on {len(diff)} of {len(keys)} folds"
              + (": " + ", ".join(f"{t} f{f}" for t, _, f in diff) if diff else ""))


if __name__ == "__main__":
    main()
