"""Cross-validation of tabular models on the shared folds: out-of-fold and fold-averaged test
predictions, per-fold scores and feature importance, with bagged seeds and repeated k-fold. The core
of ``kk baseline`` and of ``kk tune``."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
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
from ._workers import can_fork, fold_workers, requested_workers, run_groups
from .features import TabularFeatures
from .models import MODELS, create_model
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
    seconds: float = 0.0  # the folds' fit time / the workers fitting them side by side: the family's share of the wall


def fit_predict_cv(feats: TabularFeatures, data: CompetitionData, folds: Folds, model: str, *,
                   params: dict[str, Any] | None = None, seed: int = 42, time_limit: float | None = None,
                   n_jobs: int | None = None, only_folds: list[int] | None = None,
                   on_fold: Any = None, predict_test: bool = True, bags: int = 1, repeats: int = 1) -> CVPredictions:
    """Cross-validate one model. ``bags`` > 1 averages that many fits per fold (seeds ``seed``,
    ``seed + 1``, ...). ``repeats`` > 1 is repeated k-fold (:func:`~kagglekit.folds.repeated_folds`):
    each row's OOF prediction is the mean of its out-of-fold predictions over the splits, the test
    prediction the mean of every fit; fold scores stay on the shared folds (runs remain paired) and
    ``repeat_scores`` holds each split's own CV. :func:`cross_validate` does several models."""
    return next(cross_validate(feats, data, folds, [model], params={model: params or {}}, seed=seed,
                               time_limit=time_limit, n_jobs=n_jobs, only_folds=only_folds, on_fold=on_fold,
                               predict_test=predict_test, bags=bags, repeats=repeats))[1]


def cross_validate(feats: TabularFeatures, data: CompetitionData, folds: Folds, models: Sequence[str], *,
                   params: dict[str, dict[str, Any]] | None = None, seed: int = 42,
                   time_limit: float | None = None, n_jobs: int | None = None, only_folds: list[int] | None = None,
                   on_fold: Any = None, predict_test: bool = True, bags: int = 1,
                   repeats: int = 1) -> Iterator[tuple[str, CVPredictions]]:
    """Cross-validate each of ``models`` (as :func:`fit_predict_cv`), yielding ``(model, predictions)``
    as each is done (in their order when the folds run one after another, the first done first when
    side by side). ``on_fold(fold)`` is called as each fold's fit is collected.

    On a small table every model's folds go to one pool of forked processes at once, one a core
    (:func:`~kagglekit.tabular._workers.fold_workers`; ``KK_FOLD_WORKERS=1`` for one after another),
    so no core waits for the last fold of a family, the costliest family's folds first
    (``TabularModel.fold_cost``), so no core waits for a long last fold; the predictions are those
    of the folds one after another. Elsewhere the models train one after another, each fit on every core."""
    if repeats > 1 and only_folds is not None:
        raise OptionError("repeats: repeated k-fold trains every fold of each split, not a subset of folds")
    plan = _plan(feats, data, folds, repeats, only_folds)
    jobs = [[_FoldJob(m, t, r, f, tr, va) for t, r, f, tr, va in plan.folds] for m in models]
    workers = fold_workers(cores=default_n_jobs(), cells=feats.train.shape[0] * feats.train.shape[1],
                           fits=sum(map(len, jobs)), n_jobs=n_jobs, fork=can_fork(), requested=requested_workers())
    state = dict(feats=feats, ys=plan.ys, targets=plan.targets, n_rows=len(data.train), params=params or {},
                 seed=seed, bags=bags, time_limit=time_limit, predict_test=predict_test,
                 n_jobs=n_jobs if workers == 1 else 1)
    done = run_groups(_fit_fold, jobs, state=state, workers=workers, costs=[MODELS[m].fold_cost for m in models],
                      setups=[MODELS[m].fold_setup for m in models],
                      on_done=(lambda job: on_fold(job.fold)) if on_fold is not None else None)
    for g, fitted in done:
        cv = _assemble(plan, data, folds, jobs[g], fitted, bags, repeats, n_test=len(feats.test))
        yield models[g], replace(cv, seconds=sum(f.seconds for f in fitted) / workers)


@dataclass(frozen=True)
class _Plan:
    """What every model's cross-validation shares: the targets as fitted, the splits and their folds."""

    targets: dict[str, dict[str, Any]]
    from_space: Any  # back from the space the models fit in (expm1 for RMSLE)
    ys: dict[str, np.ndarray]
    splits: int
    fold_ids: list[int]
    folds: list[tuple[str, int, int, np.ndarray, np.ndarray]]  # (target, repeat, fold, train rows, valid rows)


def _plan(feats: TabularFeatures, data: CompetitionData, folds: Folds, repeats: int,
          only_folds: list[int] | None) -> _Plan:
    comp = data.comp
    targets = target_info(comp, data.train)
    to_space, from_space = log_space(comp.metric)
    splits = repeated_folds(data, folds, repeats)
    ys = {t.name: _target_values(data, t, targets[t.name]["classes"], to_space) for t in comp.submitted_targets}
    return _Plan(targets, from_space, ys, len(splits), [f for f, _, _ in folds.split(only_folds)],
                 [(t.name, r, f, tr, va) for t in comp.submitted_targets for r, split in enumerate(splits)
                  for f, tr, va in split.split(only_folds)])


def _assemble(plan: _Plan, data: CompetitionData, folds: Folds, jobs: list[_FoldJob],
              fitted: list[_FoldFit], bags: int, repeats: int, n_test: int) -> CVPredictions:
    """One model's fold fits put together: OOF (the mean over repeats, in the metric's space), the
    test prediction (the mean of every fit, added up in the folds' order), scores and importance."""
    comp, targets, from_space, fold_ids = data.comp, plan.targets, plan.from_space, plan.fold_ids
    oof: dict[str, np.ndarray] = {}
    test: dict[str, np.ndarray] = {}
    per_split: list[dict[str, np.ndarray]] = [{} for _ in range(plan.splits)]
    fits = len(fold_ids) * bags * repeats
    for t in comp.submitted_targets:
        classes, y = targets[t.name]["classes"], plan.ys[t.name]
        test_t = np.zeros((n_test, len(classes)) if classes else n_test)
        for r in range(plan.splits):
            oof_r = np.full((len(y), len(classes)) if classes else len(y), np.nan)
            for job, fit in zip(jobs, fitted, strict=True):
                if (job.target, job.repeat) == (t.name, r):
                    oof_r[job.valid] = fit.oof
                    for p in fit.test:
                        test_t += p / fits
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
    importance = pd.concat([imp for fit in fitted for imp in fit.importance], axis=1).fillna(0).mean(axis=1)
    return CVPredictions(oof, test, targets, overall, fold_scores, importance.sort_values(ascending=False),
                         [it for fit in fitted for it in fit.best_iterations], repeat_scores)


@dataclass(frozen=True)
class _FoldJob:
    model: str
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
    seconds: float = 0.0


def _fit_fold(state: dict[str, Any], job: _FoldJob) -> _FoldFit:
    """One model on one fold of one target: preprocessing fitted on its training rows, ``bags`` seeded fits."""
    start = time.perf_counter()
    feats, y, bags = state["feats"], state["ys"][job.target], state["bags"]
    params = state["params"].get(job.model)
    classes = state["targets"][job.target]["classes"]
    pre = TabularPreprocessor(plan=feats.plan).fit(feats.train.iloc[job.train])
    x_tr, x_va = pre.transform(feats.train.iloc[job.train]), pre.transform(feats.train.iloc[job.valid])
    x_te = pre.transform(feats.test) if state["predict_test"] else None
    out = _FoldFit(np.zeros((len(job.valid), len(classes)) if classes else len(job.valid)), [], [], [])
    for b in range(bags):
        est = create_model(job.model, task="classification" if classes else "regression",
                           n_classes=len(classes) if classes else 0, params=params,
                           seed=state["seed"] + job.repeat * bags + b, n_jobs=state["n_jobs"],
                           time_limit=state["time_limit"], n_rows=state["n_rows"])
        est.fit(x_tr, y[job.train], x_va, y[job.valid], categorical=feats.plan.categorical)
        out.oof += est.predict(x_va) / bags
        if x_te is not None:
            out.test.append(est.predict(x_te))
        out.importance.append(pd.Series(est.feature_importances_, index=pre.feature_names_))
        out.best_iterations.append(int(getattr(est, "best_iteration_", 0) or 0))
    out.seconds = time.perf_counter() - start
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
