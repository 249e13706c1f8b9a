"""Adversarial validation: how well a model tells train rows from test rows, on all features
together (LightGBM, cross-validated) and one feature at a time, and how much of a feature's test
values lie outside the train range."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd


def encoded(feats: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    from ..tabular.preprocess import TabularPreprocessor

    both = pd.concat([feats.train, feats.test], ignore_index=True)
    pre = TabularPreprocessor(plan=feats.plan).fit(both)  # no target involved: fitting on both is fine
    return pre.transform(feats.train), pre.transform(feats.test)


def adversarial_auc(train_x: pd.DataFrame, test_x: pd.DataFrame, *, k: int = 5, seed: int = 42,
                    categorical: tuple[str, ...] = ()) -> tuple[float, np.ndarray, pd.Series]:
    """Cross-validated AUC of LightGBM telling ``test_x`` rows from ``train_x`` rows.
    Returns (AUC, out-of-fold P(test) of the train rows, share of gain per feature)."""
    import lightgbm as lgb
    from sklearn.model_selection import StratifiedKFold

    from ..metrics import binary_auc
    from ..tabular._base import auto_n_jobs  # one thread on small tables, as the families use

    x = pd.concat([train_x, test_x], ignore_index=True)
    is_test = np.r_[np.zeros(len(train_x)), np.ones(len(test_x))]
    oof = np.zeros(len(x))
    gain = pd.Series(0.0, index=x.columns)
    cats = [c for c in categorical if c in x.columns]
    for tr, va in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, is_test):
        # 100 rounds at 0.1: the AUC of 200 at 0.05 on real tables (titanic 0.50, Stack Overflow's
        # random split 0.50, bike sharing's days 1.00) in 0.42 of the time, which kk new spends
        model = lgb.LGBMClassifier(n_estimators=100, learning_rate=0.1, num_leaves=31, subsample=0.8,
                                   subsample_freq=1, colsample_bytree=0.8, random_state=seed, verbose=-1,
                                   n_jobs=auto_n_jobs(x, None))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x.iloc[tr], is_test[tr], categorical_feature=cats or "auto")
            oof[va] = np.asarray(model.predict_proba(x.iloc[va]))[:, 1]
        gain += model.booster_.feature_importance("gain")
    total = gain.sum()
    return binary_auc(is_test, oof), oof[:len(train_x)], gain / total if total > 0 else gain


def single_feature_auc(train_col: pd.Series, test_col: pd.Series, bins: int = 64, seed: int = 0) -> float:
    """Train-vs-test AUC of one feature alone: P(test | value bin), estimated on one half of the
    rows and scored on the other (both ways), so a feature with many distinct values does not
    look separating by chance. Symmetric: 0.5 means no signal, 1.0 full separation."""
    from ..metrics import binary_auc

    values = pd.concat([train_col, test_col], ignore_index=True)
    if values.nunique(dropna=False) > bins and pd.api.types.is_numeric_dtype(values):
        # quantile bins of the values (ties stay in one bin: ranking them by position would put
        # train's copies of a value in lower bins than test's), missing values a bin of their own
        codes = pd.qcut(values, bins, labels=False, duplicates="drop").fillna(-1).to_numpy(np.int64)
    else:
        codes = pd.factorize(values, use_na_sentinel=False)[0].astype(np.int64)
    is_test = np.r_[np.zeros(len(train_col)), np.ones(len(test_col))]
    half = np.random.default_rng(seed).random(len(values)) < 0.5
    score = np.zeros(len(values))
    prior = is_test.mean()
    for fit, apply in ((half, ~half), (~half, half)):
        stats = pd.DataFrame({"c": codes[fit], "t": is_test[fit]}).groupby("c")["t"].agg(["sum", "count"])
        rate = (stats["sum"] + prior) / (stats["count"] + 1)  # one pseudo-row at the prior
        score[apply] = pd.Series(codes[apply]).map(rate).fillna(prior).to_numpy()
    if len(np.unique(is_test)) < 2:
        return 0.5
    auc = binary_auc(is_test, score)
    return max(auc, 1 - auc)


def value_range(s: pd.Series) -> str:
    s = s.dropna()
    if s.empty:
        return "all missing"
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return f"{s.min():g} to {s.max():g}"
    return f"{s.nunique()} values"


def out_of_range(train_col: pd.Series, test_col: pd.Series, categorical: bool) -> float:
    t = test_col.dropna()
    if t.empty:
        return 0.0
    if categorical or not pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t):
        return float((~t.astype(str).isin(set(train_col.dropna().astype(str)))).mean())
    tr = train_col.dropna()
    if tr.empty:
        return 1.0
    return float(((t < tr.min()) | (t > tr.max())).mean())
