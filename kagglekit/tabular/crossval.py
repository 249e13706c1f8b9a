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
from ._base import default_n_jobs
from ._workers import can_fork, fold_workers, requested_workers, run_jobs
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
    ``repeat_scores`` holds each split's own CV.

    On a small table the folds are fitted side by side, one forked process a core
    (:func:`~kagglekit.tabular._workers.fold_workers`; ``KK_FOLD_WORKERS=1`` for one after another);
    the predictions are those of the folds one after another."""
    comp = data.comp
    if repeats > 1 and only_folds is not None:
        raise OptionError("repeats: repeated k-fold trains every fold of each split, not a subset of folds")
    splits = repeated_folds(data, folds, repeats)
    targets = target_info(comp, data.train)
    to_space, from_space = log_space(comp.metric)
    fold_ids = [f for f, _, _ in folds.split(only_folds)]
    ys = {t.name: _target_values(data, t, targets[t.name]["classes"], to_space) for t in comp.submitted_targets}
    jobs = [_FoldJob(t.name, r, f, tr, va) for t in comp.submitted_targets for r, split in enumerate(splits)
            for f, tr, va in split.split(only_folds)]
    workers = fold_workers(cores=default_n_jobs(), cells=feats.train.shape[0] * feats.train.shape[1],
                           fits=len(jobs), n_jobs=n_jobs, fork=can_fork(),
                           requested=requested_workers())
    state = dict(feats=feats, ys=ys, targets=targets, n_rows=len(data.train), model=model, params=params, seed=seed,
                 bags=bags, time_limit=time_limit, predict_test=predict_test, n_jobs=n_jobs if workers == 1 else 1)
    fitted = run_jobs(_fit_fold, jobs, state=state, workers=workers,
                      on_done=(lambda job: on_fold(job.fold)) if on_fold is not None else None)
    oof: dict[str, np.ndarray] = {}
    test: dict[str, np.ndarray] = {}
    per_split: list[dict[str, np.ndarray]] = [{} for _ in splits]
    fits = len(fold_ids) * bags * repeats
    for t in comp.submitted_targets:
        classes, y = targets[t.name]["classes"], ys[t.name]
        test_t = np.zeros((len(feats.test), len(classes)) if classes else len(feats.test))
        for r in range(len(splits)):
            oof_r = np.full((len(y), len(classes)) if classes else len(y), np.nan)
            for job, fit in zip(jobs, fitted, strict=True):
                if (job.target, job.repeat) == (t.name, r):
                    oof_r[job.valid] = fit.oof
                    for p in fit.test:  # added up in the folds' order, however the folds were fitted
                        test_t += p / fits
            per_split[r][t.name] = oof_r  # in the space the models fit (log1p for RMSLE)
        mean = np.mean([p[t.name] for p in per_split], axis=0)
        oof[t.name] = from_space(mean) if not classes else mean  # averaged in the metric's space, reported
        test[t.name] = from_space(test_t) if not classes else test_t  # in the original one
    importances = [imp for fit in fitted for imp in fit.importance]
    best_iters = [it for fit in fitted for it in fit.best_iterations]
    rows = np.flatnonzero(np.isin(folds.fold, fold_ids))
    fold_scores = [score_predictions(comp, data.train, oof, targets, rows=np.flatnonzero(folds.fold == f))["cv"]
                   for f in fold_ids]
    overall = score_predictions(comp, data.train, oof, targets, rows=rows)
    repeat_scores = [] if repeats == 1 else [
        score_predictions(comp, data.train, {k_: v if targets[k_]["classes"] else from_space(v) for k_, v in p.items()},
                          targets, rows=rows)["cv"] for p in per_split]
    importance = pd.concat(importances, axis=1).fillna(0).mean(axis=1).sort_values(ascending=False)
    return CVPredictions(oof, test, targets, overall, fold_scores, importance, best_iters, repeat_scores)


@dataclass(frozen=True)
class _FoldJob:
    target: str
    repeat: int
    fold: int
    train: np.ndarray  # row positions
    valid: np.ndarray


@dataclass
class _FoldFit:
    oof: np.ndarray  # the validation rows' prediction, the mean over bags
    test: list[np.ndarray]  # each bag's test prediction (empty without test)
    importance: list[pd.Series]
    best_iterations: list[int]


def _fit_fold(state: dict[str, Any], job: _FoldJob) -> _FoldFit:
    """One fold of one target: preprocessing fitted on its training rows, ``bags`` seeded fits."""
    feats, y, bags = state["feats"], state["ys"][job.target], state["bags"]
    classes = state["targets"][job.target]["classes"]
    pre = TabularPreprocessor(plan=feats.plan).fit(feats.train.iloc[job.train])
    x_tr, x_va = pre.transform(feats.train.iloc[job.train]), pre.transform(feats.train.iloc[job.valid])
    x_te = pre.transform(feats.test) if state["predict_test"] else None
    out = _FoldFit(np.zeros((len(job.valid), len(classes)) if classes else len(job.valid)), [], [], [])
    for b in range(bags):
        est = create_model(state["model"], task="classification" if classes else "regression",
                           n_classes=len(classes) if classes else 0, params=state["params"],
                           seed=state["seed"] + job.repeat * bags + b, n_jobs=state["n_jobs"],
                           time_limit=state["time_limit"], n_rows=state["n_rows"])
        est.fit(x_tr, y[job.train], x_va, y[job.valid], categorical=feats.plan.categorical)
        out.oof += est.predict(x_va) / bags
        if x_te is not None:
            out.test.append(est.predict(x_te))
        out.importance.append(pd.Series(est.feature_importances_, index=pre.feature_names_))
        out.best_iterations.append(int(getattr(est, "best_iteration_", 0) or 0))
    return out


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
