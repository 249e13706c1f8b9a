"""Cross-validation of one tabular model on the shared folds: out-of-fold and fold-averaged test
predictions, per-fold scores and feature importance, with bagged seeds and repeated k-fold. The core
of ``kk baseline`` and of ``kk tune``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data import CompetitionData
from ..errors import DataError, OptionError, SpecError
from ..folds import Folds, repeated_folds
from ..metrics import log_space
from ..predictions import encode_target, score_predictions, target_info
from ..spec import Target
from .features import TabularFeatures
from .models import create_model
from .preprocess import TabularPreprocessor


@dataclass
class CVPredictions:
    """One model cross-validated: OOF and fold-averaged test predictions per submitted target, the
    scores (overall and per fold), mean feature importance and LightGBM's best iterations."""

    oof: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    targets: dict[str, dict[str, Any]]
    scores: dict[str, float]
    fold_scores: list[float]
    importance: pd.Series
    best_iterations: list[int]
    repeat_scores: list[float] = field(default_factory=list)  # repeated k-fold: each split's own CV


def fit_predict_cv(feats: TabularFeatures, data: CompetitionData, folds: Folds, model: str, *,
                   params: dict[str, Any] | None = None, seed: int = 42, time_limit: float | None = None,
                   n_jobs: int | None = None, only_folds: list[int] | None = None,
                   on_fold: Any = None, predict_test: bool = True, bags: int = 1, repeats: int = 1) -> CVPredictions:
    """Cross-validate one model. ``bags`` > 1 averages that many fits per fold (seeds ``seed``,
    ``seed + 1``, ...). ``repeats`` > 1 is repeated k-fold (:func:`~kagglekit.folds.repeated_folds`):
    each row's OOF prediction is the mean of its out-of-fold predictions over the splits, the test
    prediction the mean of every fit; fold scores stay on the shared folds (runs remain paired) and
    ``repeat_scores`` holds each split's own CV."""
    comp = data.comp
    if repeats > 1 and only_folds is not None:
        raise OptionError("repeats: repeated k-fold trains every fold of each split, not a subset of folds")
    splits = repeated_folds(data, folds, repeats)
    targets = target_info(comp, data.train)
    to_space, from_space = log_space(comp.metric)
    oof: dict[str, np.ndarray] = {}
    test: dict[str, np.ndarray] = {}
    per_split: list[dict[str, np.ndarray]] = [{} for _ in splits]
    importances = []
    best_iters: list[int] = []
    fold_ids = [f for f, _, _ in folds.split(only_folds)]
    fits = len(fold_ids) * bags * repeats
    for t in comp.submitted_targets:
        classes = targets[t.name]["classes"]
        y = _target_values(data, t, classes, to_space)
        n_classes = len(classes) if classes else 0
        task = "regression" if classes is None else "classification"
        shape = (len(y), n_classes) if n_classes else len(y)
        test_t = np.zeros((len(feats.test), n_classes) if n_classes else len(feats.test))
        for r, split in enumerate(splits):
            oof_r = np.full(shape, np.nan)
            for f, tr, va in split.split(only_folds):
                pre = TabularPreprocessor(plan=feats.plan).fit(feats.train.iloc[tr])
                x_tr, x_va = pre.transform(feats.train.iloc[tr]), pre.transform(feats.train.iloc[va])
                x_te = pre.transform(feats.test) if predict_test else None
                oof_r[va] = 0.0
                for b in range(bags):
                    est = create_model(model, task=task, n_classes=n_classes, params=params, seed=seed + r * bags + b,
                                       n_jobs=n_jobs, time_limit=time_limit, n_rows=len(data.train))
                    est.fit(x_tr, y[tr], x_va, y[va], categorical=feats.plan.categorical)
                    oof_r[va] += est.predict(x_va) / bags
                    if x_te is not None:
                        test_t += est.predict(x_te) / fits
                    importances.append(pd.Series(est.feature_importances_, index=pre.feature_names_))
                    best_iters.append(int(getattr(est, "best_iteration_", 0) or 0))
                if on_fold is not None:
                    on_fold(f)
            per_split[r][t.name] = oof_r  # in the space the models fit (log1p for RMSLE)
        mean = np.mean([p[t.name] for p in per_split], axis=0)
        oof[t.name] = from_space(mean) if not classes else mean  # averaged in the metric's space, reported
        test[t.name] = from_space(test_t) if not classes else test_t  # in the original one
    rows = np.flatnonzero(np.isin(folds.fold, fold_ids))
    fold_scores = [score_predictions(comp, data.train, oof, targets, rows=np.flatnonzero(folds.fold == f))["cv"]
                   for f in fold_ids]
    overall = score_predictions(comp, data.train, oof, targets, rows=rows)
    repeat_scores = [] if repeats == 1 else [
        score_predictions(comp, data.train, {k_: v if targets[k_]["classes"] else from_space(v) for k_, v in p.items()},
                          targets, rows=rows)["cv"] for p in per_split]
    importance = pd.concat(importances, axis=1).fillna(0).mean(axis=1).sort_values(ascending=False)
    return CVPredictions(oof, test, targets, overall, fold_scores, importance, best_iters, repeat_scores)


def _target_values(data: CompetitionData, t: Target, classes: list[str] | None, to_space: Any) -> np.ndarray:
    """A submitted target as the models fit it: class indices, or values in the metric's space
    (log1p for RMSLE)."""
    comp = data.comp
    if t.task == "multilabel":
        raise SpecError(f"{comp.spec_file}: target {t.name!r} is multilabel, which the tabular baseline "
                        "does not handle; split it into one binary target per label")
    y = encode_target(data.train[t.name], classes)
    if comp.metric == "rmsle" and (y < 0).any():
        raise DataError(f"{comp.name}: target {t.name!r} has negative values, which RMSLE cannot score")
    return to_space(y) if not classes else y
