"""The tabular network's AdamW step over all its tensors at once, against a loop over them.

    python bench/nn_optimizer.py [--tables modeldata-stackoverflow,spaceship-titanic,...] [--repeats 3]

``kagglekit/tabular/_onecycle.py`` steps AdamW with torch's ``_foreach`` operations: each of the
update's operations is one call over every parameter tensor. The plain equivalent is the loop over
the tensors (five operations each) that kk used before. On a small table the network's step is
bound by Python's calls, not by arithmetic, so the calls are the cost. Each table is the suite's first
outer fold (``bench/tabular_suite.py``) given ``kk new``, its features as ``kk baseline`` builds them, and one of kk's
own folds; the network (kk's defaults for the table, one thread) is fitted both ways in turn,
``--repeats`` times. Printed: seconds per fit each way, and whether the predictions are identical.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tabular_suite import HERE, _env, outer_folds, tables, write_competition


def loop_step(self) -> None:  # noqa: ANN001  (the per-tensor loop: kk's step before _foreach)
    import torch

    from kagglekit.tabular._onecycle import one_cycle

    lr, beta1 = one_cycle(min(self.steps, self.total - 1), self.total, self.max_lr, self.pct_start)
    self.steps += 1
    correction1, correction2 = 1 - beta1**self.steps, math.sqrt(1 - self.beta2**self.steps)
    with torch.no_grad():
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            if p.grad is None:
                continue
            p.mul_(1 - lr * self.weight_decay)
            m.lerp_(p.grad, 1 - beta1)
            v.mul_(self.beta2).addcmul_(p.grad, p.grad, value=1 - self.beta2)
            p.addcdiv_(m, (v.sqrt() / correction2).add_(self.eps), value=-lr / correction1)


def fold_data(folder: Path, name: str):
    """kk's features of the table and its first fold: (X_train, y_train, X_valid, y_valid, task, classes, cats)."""
    os.environ.update(_env(folder))
    from kagglekit.data import load_data
    from kagglekit.folds import get_folds
    from kagglekit.predictions import encode_target, target_info
    from kagglekit.tabular.features import build_features
    from kagglekit.tabular.preprocess import TabularPreprocessor
    from kagglekit.workspace import Workspace

    ws = Workspace.at(folder)
    comp = ws.competition(name)
    data = load_data(comp, ws)
    feats = build_features(data)
    t = comp.submitted_targets[0]
    classes = target_info(comp, data.train)[t.name]["classes"]
    y = encode_target(data.train[t.name], classes)
    _, tr, va = next(iter(get_folds(data, ws).split()))
    pre = TabularPreprocessor(plan=feats.plan).fit(feats.train.iloc[tr])
    x_tr, x_va = pre.transform(feats.train.iloc[tr]), pre.transform(feats.train.iloc[va])
    return x_tr, y[tr], x_va, y[va], t.task, classes, tuple(feats.plan.categorical), len(data.train)


def suite_fold(t, folder: Path) -> tuple:  # noqa: ANN001  (a tabular_suite.Table)
    """The table's first outer fold as a competition in ``folder`` given ``kk new``, then :func:`fold_data`."""
    shutil.rmtree(folder, ignore_errors=True)
    write_competition(t, folder, outer_folds(t, 5, seed=0)[0])
    (folder / "competitions").mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "kagglekit", "new", t.name], cwd=folder, env=_env(folder),
                   capture_output=True, check=True)
    return fold_data(folder, t.name)


def fit_seconds(args: tuple, way: str) -> tuple[float, np.ndarray]:
    from kagglekit.tabular import _onecycle
    from kagglekit.tabular.nn import TabularNNModel

    x_tr, y_tr, x_va, y_va, task, classes, cats, n_rows = args
    step = _onecycle.OneCycleAdamW.step
    if way == "loop":
        _onecycle.OneCycleAdamW.step = loop_step
    try:
        model = TabularNNModel(task=task, n_classes=len(classes or []), seed=42, n_jobs=1, n_rows=n_rows)
        t0 = time.perf_counter()
        model.fit(x_tr, y_tr, x_va, y_va, categorical=cats)
        seconds = time.perf_counter() - t0
    finally:
        _onecycle.OneCycleAdamW.step = step
    return seconds, model.predict(x_va)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", default="titanic,modeldata-stackoverflow,spaceship-titanic,bike-sharing-demand,"
                                        "modeldata-credit-data,cardata-salaries,ggplot2-diamonds")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", default="/tmp/kk_nn_optimizer")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "nn_optimizer.jsonl")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    tabs = tables()
    for name in args.tables.split(","):
        data = suite_fold(tabs[name], Path(args.work) / name)
        seconds: dict[str, list[float]] = {"foreach": [], "loop": []}
        preds: dict[str, np.ndarray] = {}
        for r in range(args.repeats):
            for way in (("foreach", "loop") if r % 2 == 0 else ("loop", "foreach")):
                s, preds[way] = fit_seconds(data, way)
                seconds[way].append(round(s, 3))
        same = bool(np.array_equal(preds["foreach"], preds["loop"]))
        row = {"table": name, "rows": len(data[0]), "columns": data[0].shape[1], **seconds,
               "ratio": float(np.median(seconds["foreach"]) / np.median(seconds["loop"])), "identical": same}
        print(f"{name} ({len(data[0])} rows x {data[0].shape[1]}): foreach {np.median(seconds['foreach']):.2f} s, "
              f"loop {np.median(seconds['loop']):.2f} s a fit (medians of {args.repeats}), "
              f"predictions identical: {same}", flush=True)
        with args.out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
