"""The linear family's elastic net fitted on its design dense, against the sparse design it was fitted on before.

    python bench/linear_dense.py [--tables ggplot2-diamonds,bike-sharing-demand,...] [--repeats 3]

``kagglekit/tabular/linear.py`` builds a sparse design (one-hot levels beside scaled numerics). For a
regression it hands scikit-learn's ``ElasticNetCV`` that design as a dense array when it holds at most
``_DENSE_CELLS`` cells: scikit-learn's coordinate descent over dense columns is far faster than its
sparse variant, and minimises the same objective. The plain equivalent is the sparse fit. Each table is
the suite's first outer fold (``bench/tabular_suite.py``) given ``kk new``, its features as
``kk baseline`` builds them, and one of kk's own folds (as in ``bench/nn_optimizer.py``); the family
(kk's defaults, one thread) is fitted both ways in turn, ``--repeats`` times. Printed: seconds per fit
each way, the chosen penalty each way and the largest difference between their validation predictions,
relative to the target's spread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from nn_optimizer import suite_fold
from tabular_suite import HERE, tables

REGRESSIONS = ("ggplot2-diamonds,bike-sharing-demand,aer-cps1988,islr-wage,islr-carseats,mass-boston,"
               "modeldata-sacramento,modeldata-concrete,cardata-salaries,modeldata-car-prices,diabetes")


def fit(data: tuple, way: str) -> tuple[float, np.ndarray, float]:
    """Seconds to fit the family one way, its validation predictions and the penalty it chose."""
    from kagglekit.tabular import linear

    x_tr, y_tr, x_va, _, task, _, cats, _ = data
    cells = linear._DENSE_CELLS
    if way == "sparse":
        linear._DENSE_CELLS = -1
    try:
        model = linear.LinearModel(task=task, n_classes=0, seed=42, n_jobs=1)
        t0 = time.perf_counter()
        model.fit(x_tr, y_tr, categorical=cats)
        seconds = time.perf_counter() - t0
    finally:
        linear._DENSE_CELLS = cells
    return seconds, model.predict(x_va), float(model.estimator_.alpha_)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", default=REGRESSIONS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", default="/tmp/kk_linear_dense")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "linear_dense.jsonl")
    args = ap.parse_args()
    tabs = tables()
    for name in args.tables.split(","):
        t = tabs[name]
        data = suite_fold(t, Path(args.work) / name)
        seconds: dict[str, list[float]] = {"dense": [], "sparse": []}
        preds, alphas = {}, {}
        for r in range(args.repeats):
            for way in (("dense", "sparse") if r % 2 == 0 else ("sparse", "dense")):
                s, preds[way], alphas[way] = fit(data, way)
                seconds[way].append(round(s, 3))
        gap = float(np.max(np.abs(preds["dense"] - preds["sparse"])) / np.std(data[1]))
        row = {"table": name, "rows": len(data[0]), "columns": data[0].shape[1], **seconds,
               "ratio": float(np.median(seconds["dense"]) / np.median(seconds["sparse"])),
               "alpha_dense": alphas["dense"], "alpha_sparse": alphas["sparse"], "max_gap_over_sd": gap}
        print(f"{name} ({len(data[0])} rows x {data[0].shape[1]}): dense {np.median(seconds['dense']):.2f} s, "
              f"sparse {np.median(seconds['sparse']):.2f} s a fit (medians of {args.repeats}); penalty "
              f"{alphas['dense']:.4g} / {alphas['sparse']:.4g}; largest prediction gap {gap:.1e} sd", flush=True)
        with args.out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
