"""How an ensemble weighs and blends its members' predictions: mean, rank, optimised weights,
greedy forward selection (Caruana et al. 2004) and stacking with its own inner CV. RMSLE targets
are blended in log space."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .data import CompetitionData
from .folds import Folds
from .metrics import get_metric, log_space
from .spec import Competition

Preds = dict[str, np.ndarray]


def space(comp: Competition) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    return log_space(comp.metric)


def blend(preds: Sequence[Preds], w: np.ndarray, comp: Competition) -> Preds:
    fwd, inv = space(comp)
    out = {}
    for t in preds[0]:
        out[t] = inv(sum(wi * fwd(p[t]) for wi, p in zip(w, preds, strict=True)))
    return out


def rank(p: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    if p.ndim == 2 and p.shape[1] == 2:  # binary: rank the positive class, keep columns complementary
        r1 = rankdata(p[:, 1]) / len(p)
        return np.column_stack([1 - r1, r1])
    r = rankdata(p, axis=0) / len(p)
    if p.ndim == 2:  # per-class ranks, renormalised into a distribution
        r = r / r.sum(axis=1, keepdims=True)
    return r


def weights(method: str, oofs: list[Preds], comp: Competition, score: Callable[[Preds], float],
             greedy_iterations: int) -> np.ndarray:
    """The members' weights by ``method`` (mean, rank, weights, greedy), on OOF predictions."""
    metric = get_metric(comp.metric)
    if method in ("mean", "rank"):
        return np.full(len(oofs), 1 / len(oofs))
    if method == "weights":
        return optimise_weights(oofs, comp, score, metric.greater_is_better)
    return greedy(oofs, comp, score, metric, greedy_iterations)


def optimise_weights(oofs: Sequence[Preds], comp: Competition, score: Callable[[Preds], float],
                      maximise: bool) -> np.ndarray:
    from scipy.optimize import minimize

    n = len(oofs)
    if n == 1:
        return np.ones(1)

    def weights(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max())
        return e / e.sum()

    def loss(z: np.ndarray) -> float:
        s = score(blend(oofs, weights(z), comp))
        return -s if maximise else s

    starts = [np.zeros(n)] + [np.where(np.arange(n) == i, 2.0, 0.0) for i in range(n)]
    best = min((minimize(loss, z0, method="Nelder-Mead", options={"maxiter": 200 * n, "xatol": 1e-3,
                                                                  "fatol": 1e-7}) for z0 in starts),
               key=lambda r: r.fun)
    w = weights(best.x)
    w[w < 1e-4] = 0
    return w / w.sum()


def greedy(oofs: Sequence[Preds], comp: Competition, score: Callable[[Preds], float], metric: Any,
            iterations: int) -> np.ndarray:
    """Caruana et al. (2004): start from the best member, repeatedly add (with replacement) the member
    that most improves the blend; keep the best prefix."""
    n = len(oofs)
    counts = np.zeros(n)
    singles = [score(o) for o in oofs]
    first = int(np.argmin([metric.sort_key(s) for s in singles]))
    counts[first] = 1
    best_counts, best_score = counts.copy(), singles[first]
    for _ in range(iterations):
        trial_scores = []
        for i in range(n):
            c = counts.copy()
            c[i] += 1
            trial_scores.append(score(blend(oofs, c / c.sum(), comp)))
        i = int(np.argmin([metric.sort_key(s) for s in trial_scores]))
        counts[i] += 1
        if metric.better(trial_scores[i], best_score):
            best_counts, best_score = counts.copy(), trial_scores[i]
    return best_counts / best_counts.sum()


def stack_features(preds: Sequence[Preds], name: str, comp: Competition) -> np.ndarray:
    fwd, _ = space(comp)
    cols = []
    for p in preds:
        a = fwd(p[name])
        if a.ndim == 2:
            a = np.log(np.clip(a, 1e-6, 1))  # log-probabilities: a linear model's natural scale
            cols.append(a[:, 1:] if a.shape[1] == 2 else a)
        else:
            cols.append(a[:, None])
    return np.hstack(cols)


def stacking(oofs: Sequence[Preds], tests: Sequence[Preds], comp: Competition, data: CompetitionData,
              folds: Folds, targets: dict[str, Any]) -> tuple[np.ndarray, Preds, Preds]:
    """A logistic (classification) or ridge (regression) model on the members' OOF predictions.
    Its own OOF predictions come from an inner CV over the shared folds: honest."""
    from sklearn.linear_model import LogisticRegression, Ridge

    from .predictions import encode_target

    _, inv = space(comp)
    fwd, _ = space(comp)
    oof: Preds = {}
    test: Preds = {}
    coefs = np.zeros(len(oofs))
    for t in comp.submitted_targets:
        X, Xt = stack_features(oofs, t.name, comp), stack_features(tests, t.name, comp)
        classes = targets[t.name]["classes"]
        y = encode_target(data.train[t.name], classes)

        def fit(x: np.ndarray, yy: np.ndarray, classes: list[str] | None = classes) -> Any:
            return (LogisticRegression(C=1.0, max_iter=2000) if classes else Ridge(alpha=1.0)).fit(x, yy)

        def predict(m: Any, x: np.ndarray, classes: list[str] | None = classes) -> np.ndarray:
            if not classes:
                return inv(m.predict(x))
            p = np.zeros((len(x), len(classes)))
            p[:, m.classes_] = m.predict_proba(x)
            return p

        y_fit = fwd(y) if not classes else y
        o = np.zeros((len(y), len(classes))) if classes else np.zeros(len(y))
        for f in range(folds.k):
            tr, va = folds.fold != f, folds.fold == f
            o[va] = predict(fit(X[tr], y_fit[tr]), X[va])
        full = fit(X, y_fit)
        oof[t.name], test[t.name] = o, predict(full, Xt)
        coef = np.abs(np.atleast_2d(full.coef_)).sum(axis=0)
        per_member = np.array([c.sum() for c in np.array_split(coef, len(oofs))])
        coefs += per_member / max(per_member.sum(), 1e-12)
    return coefs / coefs.sum(), oof, test
