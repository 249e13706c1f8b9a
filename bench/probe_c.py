"""The linear probe's C: one for all heads against one a head, on a real photo set with several targets.

    python bench/probe_c.py [--set fashion-products] [--arch tf_efficientnet_lite0]
        [--out bench/results/probe_c.jsonl]

kk train's probe is a multinomial logistic regression per head on frozen features of the plain and
the mirrored photo, its C from ``PROBE_C_GRID`` by a 3-fold inner CV of the log loss on the
training folds. This script fits that same probe with scikit-learn on the features of the arch's
real ImageNet weights (timm's evaluation transform, 224 px; ``KK_WEIGHTS_DIR``), on the 5 folds
kk new's spec makes, twice: C chosen once for all heads (the sum of their held-out losses, as kk
did) and C chosen per head. Printed and written to ``--out``: each target's out-of-fold accuracy and
the C each fold chose, per rule.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

import numpy as np
from _common import SHARED, new_workspace
from _handloop import frozen_features, preload


def inner_losses(f: np.ndarray, fl: np.ndarray, y: np.ndarray, trn: np.ndarray, grid) -> dict[float, float]:
    """Held-out log loss of each C in a 3-fold inner CV on rows ``trn`` (plain + mirrored features)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    inner, out = np.arange(len(trn)) % 3, {}
    for c in grid:
        total = 0.0
        for j in range(3):
            a, b = trn[inner != j], trn[inner == j]
            m = LogisticRegression(C=c, max_iter=500).fit(np.vstack([f[a], fl[a]]), np.concatenate([y[a], y[a]]))
            p = np.full((len(b), y.max() + 1), 1e-15)
            p[:, m.classes_] = m.predict_proba(f[b])
            total += log_loss(y[b], p / p.sum(1, keepdims=True), labels=range(p.shape[1])) * len(b)
        out[c] = total / len(trn)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="fashion-products")
    ap.add_argument("--arch", default="tf_efficientnet_lite0")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("KK_SHARED_DATA", SHARED)))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "probe_c.jsonl")
    args = ap.parse_args()
    import torch
    from sklearn.linear_model import LogisticRegression

    from kagglekit.data import load_data
    from kagglekit.folds import get_folds
    from kagglekit.vision.probe import PROBE_C_GRID

    warnings.filterwarnings("ignore", category=FutureWarning)
    ws, _ = new_workspace(args.set, args.data, "kk_probe_c_")
    comp = ws.competition(args.set)
    data = load_data(comp, ws)
    fold = get_folds(data, ws).fold
    weights = Path(os.environ.get("KK_WEIGHTS_DIR", "~/.cache/kk-weights")).expanduser() / f"{args.arch}.safetensors"
    x = preload(data.train["path"].tolist(), args.arch, weights)
    f, fl = frozen_features(x, args.arch, weights), frozen_features(torch.flip(x, dims=[3]), args.arch, weights)
    targets = [t.name for t in comp.submitted_targets if t.is_classification]
    ys = {t: data.train[t].astype(str).astype("category").cat.codes.to_numpy() for t in targets}
    right = {r: {t: np.zeros(len(fold)) for t in targets} for r in ("one C", "C per head")}
    chosen: dict[str, dict[str, list[float]]] = {r: {t: [] for t in targets} for r in right}
    for k in range(comp.cv.k):
        trn, va = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        held = {t: inner_losses(f, fl, ys[t], trn, PROBE_C_GRID) for t in targets}
        shared = min(PROBE_C_GRID, key=lambda c: sum(held[t][c] for t in targets))
        for t in targets:
            for rule, c in (("one C", shared), ("C per head", min(PROBE_C_GRID, key=held[t].get))):
                m = LogisticRegression(C=c, max_iter=500).fit(np.vstack([f[trn], fl[trn]]),
                                                              np.concatenate([ys[t][trn], ys[t][trn]]))
                right[rule][t][va] = m.predict(f[va]) == ys[t][va]
                chosen[rule][t].append(c)
    for rule in right:
        row = {"set": args.set, "arch": args.arch, "rule": rule,
               "accuracy": {t: round(float(right[rule][t].mean()), 4) for t in targets}, "C": chosen[rule]}
        print(json.dumps(row))
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
    for t in targets:
        d = right["C per head"][t] - right["one C"][t]
        print(f"{t}: C per head minus one C {d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(len(d)):.4f}")


if __name__ == "__main__":
    main()
