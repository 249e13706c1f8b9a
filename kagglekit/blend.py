"""Ensembles of out-of-fold predictions.

Runs can only be blended when they share the fold assignment, the training and test ids and the
classes of every submitted target; anything else is refused, naming the runs and what differs.
Blending happens per submitted target on the OOF predictions; RMSLE targets are blended in log
space. Methods:

- ``mean``: average of probabilities (or of values);
- ``rank``: average of ranks (scaled to [0, 1]); for AUC-like metrics;
- ``weights``: non-negative weights summing to 1, optimised on the OOF predictions for the
  competition's metric (Nelder-Mead over a softmax, several starts);
- ``greedy``: forward selection with replacement (Caruana et al. 2004), the default;
- ``stacking``: logistic / ridge regression on the members' OOF predictions, with its own inner CV
  over the shared folds so its reported score is honest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import CompetitionData, load_data
from .errors import OptionError, RunError, did_you_mean, one_of
from .folds import Folds, load_folds
from .metrics import get_metric, log_space
from .predictions import from_frame, score_predictions, to_frame
from .runs import Run, RunStore, fingerprint, fold_gap
from .spec import Competition
from .submissions import submit_run
from .workspace import Workspace, resolve

METHODS = ("greedy", "mean", "rank", "weights", "stacking")

Preds = dict[str, np.ndarray]


@dataclass
class Member:
    run: Run
    oof: Preds
    test: Preds
    cv: float


@dataclass
class EnsembleResult:
    method: str
    members: list[tuple[str, float, float]]  # (run id, member CV, weight)
    cv: float
    run: Run | None = None
    submission: Path | None = None
    holdout: float | None = None
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    reused: bool = False  # the same blend of the same runs was made before: that run is returned

    @property
    def best_member_cv(self) -> float:
        return self.members[0][1] if self.members else float("nan")


def check_compatible(runs: Sequence[Run], comp: Competition) -> None:
    """Refuse runs that cannot be blended, naming them and what differs."""
    if not runs:
        raise RunError(f"{comp.name}: no runs to ensemble; run 'kk baseline {comp.name}' or 'kk train' first")
    ref = runs[0]
    submitted = [t.name for t in comp.submitted_targets]
    for r in runs[1:]:
        if r.meta.get("fold_id") != ref.meta.get("fold_id"):
            raise RunError(f"cannot blend {ref.id} and {r.id}: they use different fold assignments "
                           f"({ref.meta.get('fold_id')} vs {r.meta.get('fold_id')}), so their OOF predictions "
                           "are not comparable; re-run one on the other's folds")
        for t in submitted:
            a, b = ref.targets.get(t, {}).get("classes"), r.targets.get(t, {}).get("classes")
            if a != b:
                raise RunError(f"cannot blend {ref.id} and {r.id}: target {t!r} has classes {a} vs {b}")
    ids_ref = ref.oof()[comp.id_column].astype(str).to_numpy()
    test_ref = ref.test()[comp.id_column].astype(str).to_numpy()
    for r in runs[1:]:
        ids = r.oof()[comp.id_column].astype(str).to_numpy()
        if len(ids) != len(ids_ref) or (ids != ids_ref).any():
            raise RunError(f"cannot blend {ref.id} and {r.id}: their OOF predictions cover different training "
                           f"rows ({len(ids_ref)} vs {len(ids)} rows or another order)")
        tids = r.test()[comp.id_column].astype(str).to_numpy()
        if len(tids) != len(test_ref) or (tids != test_ref).any():
            raise RunError(f"cannot blend {ref.id} and {r.id}: their test predictions cover different test ids")


def _members(runs: Sequence[Run], comp: Competition, data: CompetitionData) -> list[Member]:
    out = []
    ids = data.train[comp.id_column].astype(str).to_numpy()
    for r in runs:
        oof_df, test_df = r.oof(), r.test()
        if (oof_df[comp.id_column].astype(str).to_numpy() != ids).any():
            raise RunError(f"run {r.id} was made on other training data than {comp.name}'s current files")
        oof, test = {}, {}
        for t in comp.submitted_targets:
            classes = r.targets[t.name]["classes"]
            oof[t.name] = from_frame(oof_df, t.name, classes)
            test[t.name] = from_frame(test_df, t.name, classes)
            if np.isnan(oof[t.name]).any():
                raise RunError(f"run {r.id} has no OOF prediction for some rows (it ran a subset of folds); "
                               "merge its folds first ('kk merge') or leave it out")
        out.append(Member(r, oof, test, float(r.cv if r.cv is not None else np.nan)))
    return out


def _space(comp: Competition) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    return log_space(comp.metric)


def _blend(preds: Sequence[Preds], w: np.ndarray, comp: Competition) -> Preds:
    fwd, inv = _space(comp)
    out = {}
    for t in preds[0]:
        out[t] = inv(sum(wi * fwd(p[t]) for wi, p in zip(w, preds, strict=True)))
    return out


def _rank(p: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    if p.ndim == 2 and p.shape[1] == 2:  # binary: rank the positive class, keep columns complementary
        r1 = rankdata(p[:, 1]) / len(p)
        return np.column_stack([1 - r1, r1])
    r = rankdata(p, axis=0) / len(p)
    if p.ndim == 2:  # per-class ranks, renormalised into a distribution
        r = r / r.sum(axis=1, keepdims=True)
    return r


def ensemble(competition: str | Competition, runs: Sequence[str] | None = None, *, method: str = "greedy",
             workspace: Workspace | None = None, submit: bool = True, greedy_iterations: int = 40,
             new: bool = False, record: dict[str, Any] | None = None) -> EnsembleResult:
    """Blend the OOF predictions of ``runs`` (default: every complete run of the competition). The
    same blend of the same runs, made before, is reused unless ``new``. ``record`` adds entries to
    a new run's config."""
    t0 = time.perf_counter()
    if method not in METHODS:
        raise OptionError(f"unknown ensemble method {method!r}: expected {one_of(METHODS)}"
                          f"{did_you_mean(method, METHODS)}")
    ws, comp = resolve(competition, workspace)
    store = RunStore(ws, comp.name)
    metric = get_metric(comp.metric)
    skipped: list[str] = []
    if runs:
        chosen = [store.get(r) for r in runs]
        incomplete = [r.id for r in chosen if not r.complete]
        if incomplete:
            raise RunError(f"run {incomplete[0]} is incomplete (it crashed or is still running)")
    else:
        chosen = [r for r in store.ranked(comp.metric) if r.config.get("kind") != "ensemble"]
        partial = [r for r in chosen if r.partial]
        skipped = [f"{r.id} (only folds {r.meta.get('folds_done')}; kk merge it first)" for r in partial]
        chosen = [r for r in chosen if r not in partial]
        if chosen:  # all runs on the best run's folds; others are reported, not blended
            fold_id = chosen[0].meta.get("fold_id")
            skipped += [f"{r.id} (other folds)" for r in chosen if r.meta.get("fold_id") != fold_id]
            chosen = [r for r in chosen if r.meta.get("fold_id") == fold_id]
    check_compatible(chosen, comp)
    fp = fingerprint({"kind": "ensemble", "method": method, "members": sorted(r.id for r in chosen),
                      "greedy_iterations": greedy_iterations if method == "greedy" else None}, "runs")
    same = None if new else store.identical(fp)
    data = load_data(comp, ws)
    if same is not None:  # member runs never change: the same blend of them is the same run
        cfg = same.config
        result = EnsembleResult(method, [(m, float(same.scores.get("members", {}).get(m, np.nan)), float(w))
                                         for m, w in zip(cfg["members"], cfg["weights"], strict=True)],
                                float(same.scores["cv"]), skipped=skipped)
        result.run, result.reused = same, True
        if submit:
            result.submission, result.holdout = submit_run(data, ws, same)
        result.seconds = time.perf_counter() - t0
        return result
    members = sorted(_members(chosen, comp, data), key=lambda m: metric.sort_key(m.cv))
    fold_id = members[0].run.meta["fold_id"]
    folds_df = load_folds(ws, comp, fold_id)
    folds = Folds(fold_id, folds_df["fold"].to_numpy(np.int64), int(folds_df["fold"].max()) + 1)
    targets = {t.name: members[0].run.targets[t.name] for t in comp.submitted_targets}

    def score(p: Preds) -> float:
        return score_predictions(comp, data.train, p, targets)["cv"]

    oofs, tests = [m.oof for m in members], [m.test for m in members]
    if method == "stacking":
        w, oof, test = _stacking(oofs, tests, comp, data, folds, targets)
    else:
        if method == "rank":
            oofs = [{t: _rank(p) for t, p in o.items()} for o in oofs]
            tests = [{t: _rank(p) for t, p in o.items()} for o in tests]
        if method in ("mean", "rank"):
            w = np.full(len(members), 1 / len(members))
        elif method == "weights":
            w = _optimise_weights(oofs, comp, score, metric.greater_is_better)
        else:
            w = _greedy(oofs, comp, score, metric, greedy_iterations)
        oof, test = _blend(oofs, w, comp), _blend(tests, w, comp)
    cv = score(oof)
    result = EnsembleResult(method, [(m.run.id, m.cv, float(wi)) for m, wi in zip(members, w, strict=True)], cv,
                            skipped=skipped)
    config = {"models": [method], "method": method, "members": [m.run.id for m in members],
              "weights": [float(x) for x in w], "fingerprint": fp, **(record or {})}
    writer = store.create("ensemble", method, config)
    writer.save_predictions(to_frame(data.train[comp.id_column], comp.id_column, oof, targets),
                            to_frame(data.test[comp.id_column], comp.id_column, test, targets))
    fold_scores = [score_predictions(comp, data.train, oof, targets, rows=np.flatnonzero(folds.fold == f))["cv"]
                   for f in range(folds.k)]
    writer.save_scores({"cv": cv, "cv_std": float(np.std(fold_scores)), "folds": fold_scores,
                        "members": {m.run.id: m.cv for m in members}})
    result.run = writer.finish(comp, ws, fold_id=fold_id, targets=targets, timings={})
    gap = fold_gap(comp.metric, fold_scores, members[0].run.scores.get("folds") or [])
    if gap is not None and len(members) > 1:
        result.notes.append(
            f"the blend and its best member {members[0].run.id} are indistinguishable: gain {gap}; blending "
            "still averages out the members' noise" if gap.indistinguishable else
            f"the blend beats its best member {members[0].run.id} beyond the folds' noise: gain {gap}"
            if gap.diff > 0 else f"the blend is worse than its best member {members[0].run.id}: {gap}")
    ll = _logloss_gap(comp, data, folds, targets, oof, members[0].oof) if comp.metric != "logloss" else None
    if ll is not None and len(members) > 1:  # probabilities matter beyond the metric: say it in log loss too
        result.notes.append(f"in log loss, the blend {'beats' if ll.diff > 0 else 'does not beat'} its best member "
                            f"{'beyond' if not ll.indistinguishable else 'within'} the folds' noise: gain {ll}")
    if result.notes:  # kept with the run: kk run and kk runs can say what the blend gained
        result.run.update_scores(notes=result.notes)
    if submit:
        result.submission, result.holdout = submit_run(data, ws, result.run)
    result.seconds = time.perf_counter() - t0
    return result


def _optimise_weights(oofs: Sequence[Preds], comp: Competition, score: Callable[[Preds], float],
                      maximise: bool) -> np.ndarray:
    from scipy.optimize import minimize

    n = len(oofs)
    if n == 1:
        return np.ones(1)

    def weights(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max())
        return e / e.sum()

    def loss(z: np.ndarray) -> float:
        s = score(_blend(oofs, weights(z), comp))
        return -s if maximise else s

    starts = [np.zeros(n)] + [np.where(np.arange(n) == i, 2.0, 0.0) for i in range(n)]
    best = min((minimize(loss, z0, method="Nelder-Mead", options={"maxiter": 200 * n, "xatol": 1e-3,
                                                                  "fatol": 1e-7}) for z0 in starts),
               key=lambda r: r.fun)
    w = weights(best.x)
    w[w < 1e-4] = 0
    return w / w.sum()


def _greedy(oofs: Sequence[Preds], comp: Competition, score: Callable[[Preds], float], metric: Any,
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
            trial_scores.append(score(_blend(oofs, c / c.sum(), comp)))
        i = int(np.argmin([metric.sort_key(s) for s in trial_scores]))
        counts[i] += 1
        if metric.better(trial_scores[i], best_score):
            best_counts, best_score = counts.copy(), trial_scores[i]
    return best_counts / best_counts.sum()


def _stack_features(preds: Sequence[Preds], name: str, comp: Competition) -> np.ndarray:
    fwd, _ = _space(comp)
    cols = []
    for p in preds:
        a = fwd(p[name])
        if a.ndim == 2:
            a = np.log(np.clip(a, 1e-6, 1))  # log-probabilities: a linear model's natural scale
            cols.append(a[:, 1:] if a.shape[1] == 2 else a)
        else:
            cols.append(a[:, None])
    return np.hstack(cols)


def _stacking(oofs: Sequence[Preds], tests: Sequence[Preds], comp: Competition, data: CompetitionData,
              folds: Folds, targets: dict[str, Any]) -> tuple[np.ndarray, Preds, Preds]:
    """A logistic (classification) or ridge (regression) model on the members' OOF predictions.
    Its own OOF predictions come from an inner CV over the shared folds: honest."""
    from sklearn.linear_model import LogisticRegression, Ridge

    from .predictions import encode_target

    _, inv = _space(comp)
    fwd, _ = _space(comp)
    oof: Preds = {}
    test: Preds = {}
    coefs = np.zeros(len(oofs))
    for t in comp.submitted_targets:
        X, Xt = _stack_features(oofs, t.name, comp), _stack_features(tests, t.name, comp)
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


def _logloss_gap(comp: Competition, data: CompetitionData, folds: Folds, targets: dict[str, Any], blend: Preds,
                 best: Preds) -> Any:
    """Paired per-fold log-loss gain of the blend over its best member, on the first submitted
    classification target (None when there is none)."""
    from .predictions import encode_target

    names = [t.name for t in comp.targets if t.submit and targets[t.name].get("classes")]
    if not names:
        return None
    name, logloss = names[0], get_metric("logloss")
    y = encode_target(data.train[name], targets[name]["classes"])
    per_fold = [[logloss(y[rows], p[name][rows]) for rows in (np.flatnonzero(folds.fold == f) for f in range(folds.k))]
                for p in (blend, best)]
    return fold_gap("logloss", per_fold[0], per_fold[1])
