"""Which submission should a baseline write when its models are indistinguishable on CV?

On small tables (Titanic: 891 rows) the CV order of random forest and LightGBM is often fold-
sampling luck. This bench draws many small competitions from the built-in churn generator (each
with its own seed and hidden test labels), runs `kk baseline` (rf + lgbm, 5 folds) on each, and
scores on the hidden labels: the CV-best model, the mean blend of the two, the model with the
lower fold variance, and the noise rule (the CV-best model, unless the runner-up is within two
standard errors of the paired fold differences: then the mean blend), kk baseline's submission
until the tabular suite (bench/tabular_suite.py) showed the greedy ensemble at least as good.

    python bench/noise_rule.py [--datasets 12] [--rows 900]

Prints per-dataset figures and the mean hidden score of each choice.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import REPO


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", type=int, default=12)
    ap.add_argument("--rows", type=int, default=900)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import pandas as pd

    import kagglekit as kk
    from kagglekit.builtin import churn
    from kagglekit.metrics import get_metric
    from kagglekit.runs import fold_gap
    from kagglekit.workspace import Workspace

    auc = get_metric("auc")
    rows = []
    for seed in range(args.datasets):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "competitions").mkdir()
            data = root / "data" / "churn"
            data.mkdir(parents=True)
            churn(data, n=args.rows + 400, n_test=400, seed=1000 + seed)
            ws = Workspace.at(root)
            comp = kk.define_competition("churn", id="customer_id", metric="auc", targets={"churned": "binary"},
                                         data_dir=data, root=root / "competitions",
                                         files={"solution": "solution.csv"}, cv={"kind": "stratified", "k": 5},
                                         tabular={"date_columns": ["signup_date"]})
            res = kk.baseline(comp, models=("rf", "lgbm"), workspace=ws, submit=False)
            truth = pd.read_csv(data / "solution.csv").set_index("customer_id")["churned"]
            by = {r.model: r for r in res.results}
            preds = {m: by[m].run.test().set_index("customer_id")["churned:1"].loc[truth.index].to_numpy()
                     for m in by}
            hidden = {m: auc(truth.to_numpy(), p) for m, p in preds.items()}
            hidden["blend"] = auc(truth.to_numpy(), np.mean(list(preds.values()), axis=0))
            best, other = res.best, next(r for r in res.results if r is not res.best)
            gap = fold_gap("auc", best.fold_scores, other.fold_scores)
            calm = min(res.results, key=lambda r: r.cv_std)
            rule = "blend" if gap is not None and gap.indistinguishable else best.model
            rows.append({"seed": seed, "rf_cv": by["rf"].cv, "lgbm_cv": by["lgbm"].cv, "tie": gap.indistinguishable,
                         "cv_best": hidden[best.model], "blend": hidden["blend"], "lower_std": hidden[calm.model],
                         "rule": hidden[rule], "rf": hidden["rf"], "lgbm": hidden["lgbm"]})
            r = rows[-1]
            print(f"dataset {seed:2d}: CV rf {r['rf_cv']:.4f} lgbm {r['lgbm_cv']:.4f} gap {gap} -> "
                  f"{'indistinguishable' if r['tie'] else 'distinct'}; hidden rf {r['rf']:.4f} lgbm {r['lgbm']:.4f} "
                  f"blend {r['blend']:.4f}", flush=True)
    df = pd.DataFrame(rows)
    print(f"\n{len(df)} churn datasets of {args.rows} train rows, hidden test AUC "
          "(mean over datasets; higher is better)")
    for col, what in [("cv_best", "the CV-best model (plain rule)"), ("lower_std", "the lower-variance model"),
                      ("blend", "always the mean blend"), ("rule", "CV-best unless indistinguishable, then blend")]:
        wins = (df[col] >= df["cv_best"] - 1e-12).mean()
        print(f"  {what:<52} {df[col].mean():.4f}   (>= CV-best on {wins:.0%} of datasets)")
    print(f"  indistinguishable on {df['tie'].mean():.0%} of datasets; "
          f"the CV picked the model that was better on hidden labels in "
          f"{((df['rf_cv'] > df['lgbm_cv']) == (df['rf'] > df['lgbm'])).mean():.0%}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
