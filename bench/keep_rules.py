"""Which epoch each fold keeps, replayed on finished runs: every rule on the same epochs.

    python bench/keep_rules.py RUN [RUN ...] [--out bench/results/keep_rules.jsonl]

A run's ``history.csv`` holds every epoch's validation scores, per target, for every fold (the
probe counts as one epoch). Training does not depend on the rule, only which epoch predicts does, so
each rule's out-of-fold score can be read from the history alone: per fold the epoch the rule keeps,
its per-target score (no TTA), pooled over the folds by their sizes (RMSE: the root of the pooled
mean square). The rules:

- ``probe``: the linear probe on frozen features (what the frozen-feature floor measures),
- ``summed loss``: the lowest validation loss of all heads together (kk's rule before per-head keep),
- ``per-head loss``: each head its own lowest validation loss (kk's rule with several heads),
- ``metric``: the best competition metric, ``last``: the last epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def kept_rows(h: pd.DataFrame, rule: str, head: str, higher_is_better: bool) -> pd.Series:
    """The history row ``rule`` keeps for ``head`` in one fold."""
    if rule == "probe":
        return h.iloc[0]
    if rule == "last":
        return h.iloc[-1]
    if rule == "metric":
        return h.loc[h["cv"].idxmax() if higher_is_better else h["cv"].idxmin()]
    column = f"valid_loss:{head}" if rule == "per-head loss" and f"valid_loss:{head}" in h else "valid_loss"
    return h.loc[h[column].idxmin()]


def replay(run: Path) -> dict:
    from kagglekit.metrics import get_metric
    from kagglekit.workspace import Workspace

    comp = Workspace.at(run.parents[2]).competition(run.parent.name)  # <workspace>/runs/<competition>/<run>
    higher = get_metric(comp.metric).greater_is_better
    folds = sorted(run.glob("fold_*/history.csv"))
    sizes = [len(np.load(f.parent / "preds.npz")["valid_idx"]) for f in folds]
    histories = [pd.read_csv(f) for f in folds]
    rules = ("probe", "summed loss", "per-head loss", "metric", "last")
    out: dict = {"run": str(run), "set": comp.name, "folds": len(folds), "rules": {}}
    for rule in rules:
        scores = {}
        for t in comp.submitted_targets:
            per_fold = np.array([kept_rows(h, rule, t.name, higher)[t.name] for h in histories])
            w = np.array(sizes) / sum(sizes)
            scores[t.name] = float(np.sqrt(w @ per_fold**2)) if not t.is_classification else float(w @ per_fold)
        out["rules"][rule] = scores
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "keep_rules.jsonl")
    args = ap.parse_args()
    for run in args.runs:
        row = replay(run.resolve())
        targets = list(next(iter(row["rules"].values())))
        print(f"{row['set']} ({row['folds']} folds, no TTA): " + "  ".join(targets), file=sys.stderr)
        for rule, scores in row["rules"].items():
            print(f"  {rule:14s} " + "  ".join(f"{scores[t]:.4f}" for t in targets), file=sys.stderr)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
