"""Does the probe of the submitted heads change when auxiliary heads join? kk's probe, fitted jointly
(one L-BFGS over every head, as before) against each head on its own (``kagglekit.vision.probe``).

    python bench/probe_heads.py [--set fashion-products] [--arch tf_efficientnet_lite0] [--folds 0,1]
        [--out bench/results/probe_heads.jsonl]

Frozen features of the arch's real ImageNet weights (timm's evaluation transform, 224 px, plain and
mirrored; ``KK_WEIGHTS_DIR``) on the folds kk new's spec makes. For each outer fold, kk's own
``choose_c`` and ``fit_head`` on the training rows, with the submitted targets alone and with every
auxiliary label kk new lists switched on (missing labels masked), each way of fitting. Printed and
written to ``--out``: the C each submitted head chose, and its probe's held-out accuracy.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
from _common import SHARED, new_workspace
from _handloop import frozen_features, preload


def joint_fit_head(learner, feats, y, l2, max_iter: int = 200, head=None) -> float:  # noqa: ANN001
    """kk's probe before: every head's rows in one L-BFGS, each penalised by its own l2."""
    import torch

    head = learner.model.get_classifier() if head is None else head
    l2s = l2 if isinstance(l2, list) else [l2] * len(learner.heads)
    rows = torch.cat([torch.full((h.size, 1), v) for h, v in zip(learner.heads, l2s, strict=True)])
    opt = torch.optim.LBFGS(head.parameters(), lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure():  # noqa: ANN202
        opt.zero_grad(set_to_none=True)
        loss = learner.loss(head(feats), y, smoothing=0.0) + (rows * head.weight ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return 0.0


def run(learner, feats, y, ids, fit, choose) -> list[float]:  # noqa: ANN001
    """The C of each head by kk's inner CV, with ``fit`` as the probe's fit; then the probe at those Cs."""
    import kagglekit.vision.probe as probe

    saved = probe.fit_head
    probe.fit_head = fit  # choose_c's inner fits use it
    try:
        cs, _ = choose(learner, feats, y, ids)
    finally:
        probe.fit_head = saved
    fit(learner, feats, y, l2=[1.0 / (2 * len(feats) * c) for c in cs])
    return cs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="fashion-products")
    ap.add_argument("--arch", default="tf_efficientnet_lite0")
    ap.add_argument("--folds", default="0,1")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("KK_SHARED_DATA", SHARED)))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "probe_heads.jsonl")
    args = ap.parse_args()
    import timm
    import torch

    from kagglekit.data import load_data
    from kagglekit.folds import get_folds
    from kagglekit.vision.config import make_heads
    from kagglekit.vision.learner import Learner
    from kagglekit.vision.probe import choose_c, fit_head

    warnings.filterwarnings("ignore", category=FutureWarning)
    ws, spec = new_workspace(args.set, args.data, "kk_probe_heads_")
    comps = {"submitted": ws.competition(args.set)}  # then the auxiliary targets kk new lists, switched on
    spec.write_text(re.sub(r"(?m)^# (\[\[targets\]\]|name = |task = |submit = )", r"\1", spec.read_text()))
    comps["with auxiliary"] = ws.competition(args.set)
    data = load_data(comps["submitted"], ws)
    fold = get_folds(data, ws).fold
    weights = Path(os.environ.get("KK_WEIGHTS_DIR", "~/.cache/kk-weights")).expanduser() / f"{args.arch}.safetensors"
    x = preload(data.train["path"].tolist(), args.arch, weights)
    f = torch.from_numpy(np.vstack([frozen_features(x, args.arch, weights),
                                    frozen_features(torch.flip(x, dims=[3]), args.arch, weights)])).float()
    for k in map(int, args.folds.split(",")):
        trn, va = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        rows = torch.from_numpy(np.concatenate([trn, trn + len(fold)]))
        for name, comp in comps.items():
            heads, y = make_heads(comp, data.train)
            yt = torch.from_numpy(y)
            for how, fit in (("joint", joint_fit_head), ("apart", fit_head)):
                model = timm.create_model(args.arch, pretrained=False, num_classes=sum(h.size for h in heads))
                torch.manual_seed(0)
                learner = Learner(model, heads, torch.device("cpu"))
                cs = run(learner, f[rows], yt[rows % len(fold)], rows % len(fold), fit, choose_c)
                with torch.no_grad():
                    out = copy.deepcopy(model.get_classifier())(f[torch.from_numpy(va)])
                acc = {h.name: round(float((out[:, h.start:h.start + h.size].argmax(1).numpy()
                                            == y[va, i]).mean()), 4)
                       for i, h in enumerate(heads) if h.submit}
                row = {"set": args.set, "fold": k, "heads": name, "fit": how,
                       "C": {h.name: c for h, c in zip(heads, cs, strict=True)}, "accuracy": acc}
                print(json.dumps(row), flush=True)
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
