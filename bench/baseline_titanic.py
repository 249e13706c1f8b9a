"""`kk baseline titanic` against a plain hand-written LightGBM on the same folds and features.

Prints the 5-fold CV accuracy and wall time of both. The hand-written loop reads the CSVs,
applies the same feature function, codes categories with pandas and early-stops LightGBM on the
validation fold: what a competitor would write in a notebook.
"""

from __future__ import annotations

import importlib.util
import time
import warnings

import numpy as np
import pandas as pd
from _common import REPO, kk, need_shared, newest_runs


def hand_written(data_dir, folds: pd.DataFrame) -> tuple[float, float]:
    import lightgbm as lgb

    warnings.filterwarnings("ignore", category=lgb.basic.LGBMDeprecationWarning if hasattr(
        lgb.basic, "LGBMDeprecationWarning") else UserWarning)
    t = time.perf_counter()
    features = REPO / "competitions/titanic/features.py"
    spec = importlib.util.spec_from_file_location("titanic_features", features)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    train = pd.read_csv(data_dir / "train.csv")
    test = pd.read_csv(data_dir / "test.csv")
    full = mod.add_features(pd.concat([train.drop(columns="Survived"), test], ignore_index=True))
    full = full.drop(columns=["PassengerId", "Name", "Ticket", "Cabin"])
    for c in ["Sex", "Embarked", "Deck", "Title", "Pclass"]:
        full[c] = full[c].astype("category")
    X, y = full.iloc[: len(train)], train["Survived"].to_numpy()
    fold = folds.set_index("PassengerId").loc[train.PassengerId, "fold"].to_numpy()
    oof = np.zeros(len(train))
    for f in range(5):
        tr, va = fold != f, fold == f
        m = lgb.LGBMClassifier(n_estimators=3000, learning_rate=0.03, subsample=0.8, subsample_freq=1,
                               colsample_bytree=0.8, verbose=-1, random_state=42)
        m.fit(X[tr], y[tr], eval_set=[(X[va], y[va])], callbacks=[lgb.early_stopping(150, verbose=False)])
        oof[va] = m.predict_proba(X[va])[:, 1]
    return float(np.mean((oof > 0.5) == y)), time.perf_counter() - t


if __name__ == "__main__":
    data_dir = need_shared("titanic")
    wall, _ = kk("baseline", "titanic")
    runs = newest_runs("titanic", 2)
    best = max(runs, key=lambda r: r["cv"])
    fold_id = __import__("json").loads((REPO / "runs/titanic" / best["id"] / "meta.json").read_text())["fold_id"]
    folds = pd.read_parquet(REPO / "runs/titanic/folds" / f"{fold_id}.parquet")
    acc, secs = hand_written(data_dir, folds)
    print("titanic, 5-fold stratified CV accuracy (same folds, same features)")
    for r in sorted(runs, key=lambda r: r["models"]):
        print(f"  kk baseline {r['models'][0]:5s}           CV {r['cv']:.4f} ± {r['cv_std']:.4f}")
    print(f"  kk baseline (whole command)    {wall:5.1f} s wall, best CV {best['cv']:.4f} ({best['models'][0]})")
    print(f"  hand-written LightGBM          {secs:5.1f} s (in-process, no start-up), CV {acc:.4f}")
    print("bar: best CV >= 0.83 and command < 10 s:", "met" if best["cv"] >= 0.83 and wall < 10 else "NOT met")
