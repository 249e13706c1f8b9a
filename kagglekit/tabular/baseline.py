"""The tabular baseline: each registered model trained on the competition's shared folds.

Per model this produces one run in the run store (OOF predictions for every training row, test
predictions averaged over folds, per-fold and overall scores, feature importance as CSV and PNG),
then a validated submission from the best model by CV.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import CompetitionData, load_data
from ..errors import OptionError, SpecError
from ..folds import Folds, get_folds
from ..metrics import get_metric
from ..predictions import to_frame
from ..runs import Run, RunStore, data_fingerprint, fingerprint, fold_gap
from ..spec import Competition
from ..submissions import check_submission_format, submit_run
from ..workspace import Workspace, resolve
from ._base import is_large
from .crossval import CVPredictions, cross_validate
from .features import TabularFeatures, build_features
from .hooks import hook_digest
from .models import create_model, default_models, missing_extra
from .preprocess import ColumnPlan


@dataclass
class ModelResult:
    model: str
    run: Run
    cv: float
    cv_std: float
    fold_scores: list[float]
    seconds: float
    params: dict[str, Any]
    reused: bool = False  # an identical finished run (same config, data and folds) was reused


@dataclass
class BaselineResult:
    competition: str
    metric: str
    results: list[ModelResult]
    plan: ColumnPlan
    seconds: float = 0.0
    submission: Path | None = None
    holdout: float | None = None
    fold_id: str = ""
    notes: list[str] = field(default_factory=list)
    chosen: str = ""  # what the submission holds: the greedy ensemble of the models, or the one model
    first_submission: Path | None = None  # large tables: the first family's, written before the others train

    @property
    def best(self) -> ModelResult:
        m = get_metric(self.metric)
        return min(self.results, key=lambda r: m.sort_key(r.cv))

    def __repr__(self) -> str:  # a notebook's cell output: the CLI's table in words, not a dataclass dump
        models = ", ".join(f"{r.model}{'*' if r is self.best else ''} {r.cv:.4f} ± {r.cv_std:.4f}"
                           for r in self.results)
        return (f"<BaselineResult {self.competition} ({self.metric}): {models}; submission "
                f"{self.chosen or '-'} -> {self.submission}>")

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td>{html.escape(r.model)}{' *' if r is self.best else ''}</td><td>{r.cv:.4f}</td>"
                       f"<td>{r.cv_std:.4f}</td><td>{' '.join(f'{x:.3f}' for x in r.fold_scores)}</td>"
                       f"<td>{html.escape(r.run.id)}</td></tr>" for r in self.results)
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        sub = f"<p>submission ({html.escape(self.chosen)}): {html.escape(str(self.submission))}</p>" \
            if self.submission else ""
        return (f"<b>{html.escape(self.competition)}</b> ({html.escape(self.metric)})<table><tr><th>model</th>"
                f"<th>CV</th><th>± std</th><th>folds</th><th>run</th></tr>{rows}</table>{notes}{sub}")


def parse_overrides(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``["lgbm.num_leaves=63", "rf.n_estimators=500"]`` -> ``{"lgbm": {"num_leaves": 63}, ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        model, dot, param = key.partition(".")
        if not sep or not dot or not model or not param:
            raise OptionError(f"--param {item!r}: expected MODEL.NAME=VALUE, e.g. lgbm.num_leaves=63")
        out.setdefault(model, {})[param] = _literal(value)
    return out


def _literal(value: str) -> Any:
    low = value.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def save_importance(importance: pd.Series, folder: Path, title: str) -> None:
    importance.rename("importance").rename_axis("feature").reset_index().to_csv(folder / "importance.csv",
                                                                               index=False)
    from matplotlib.figure import Figure  # not pyplot: a notebook's backend is left alone

    top = importance.head(30)[::-1]
    fig = Figure(figsize=(7, 0.28 * len(top) + 1.2))
    ax = fig.subplots()
    ax.barh(top.index.astype(str), top.to_numpy(), color="#3b75af")
    ax.set_title(title)
    ax.set_xlabel("importance (mean over folds)")
    fig.tight_layout()
    fig.savefig(folder / "importance.png", dpi=110)


def baseline(competition: str | Competition, *, models: tuple[str, ...] | None = None, k: int | None = None,
             seed: int = 42, params: dict[str, dict[str, Any]] | None = None, time_budget: float | None = None,
             workspace: Workspace | None = None, progress: bool = False, submit: bool = True,
             n_jobs: int | None = None, new: bool = False, record: dict[str, Any] | None = None,
             bags: int = 1, repeats: int | None = None) -> BaselineResult:
    """Cross-validate each model (default: every installed family, ``default_models()``) on the shared
    folds, store one run per model and write the submission: the greedy ensemble of the models (or
    the one model). ``params`` overrides model parameters: ``{"lgbm": {...}}``.
    A model whose identical run (same configuration, data and folds) is already finished is not
    trained again: that run is reused, unless ``new``. ``record`` adds entries to each new run's
    config (``kk run`` records its stage there). ``bags`` averages that many seeds per fold;
    ``repeats`` (default: the spec's ``[cv] repeats``) is repeated k-fold (:func:`fit_predict_cv`).

    Both default to 1, chosen on the tabular suite's held-out folds (``bench/tabular_suite.py``, 6
    real tables, ``bench/results/tabular_suite.jsonl.gz``): 3 bags gained beyond noise on bike sharing
    alone (RMSLE 0.2969 vs 0.2976) and 3 repeats nowhere, each for 1.3-2.9x the time."""
    t0 = time.perf_counter()
    ws, comp = resolve(competition, workspace)
    comp, params = _check_request(comp, k, params, bags, repeats)
    repeats = comp.cv.repeats
    data = load_data(comp, ws)
    check_submission_format(data, submit)
    models, skipped = _models(models, params, len(data.train))
    resolved = _resolved(comp, models, params, len(data.train))
    folds, feats = get_folds(data, ws), build_features(data)
    store, dkey = RunStore(ws, comp.name), data_fingerprint(comp, ws)
    per_fold_limit = time_budget / (len(models) * folds.k) if time_budget else None
    bar = _progress(progress, len(models) * folds.k * repeats * len(comp.submitted_targets))
    done, todo = {}, {}
    for model in models:  # an identical finished run is reused; the others are trained
        config = _run_config(comp, feats, model, resolved[model], params.get(model) or {}, seed, time_budget, bags)
        fp = fingerprint({"kind": "tabular", **config}, dkey, folds.id)
        same = None if new else store.identical(fp)
        done.update({model: _reused(model, same, resolved[model])} if same is not None else {})
        todo.update({model: (config, fp)} if same is None else {})
    if bar is not None:
        bar.update(len(done) * folds.k * repeats * len(comp.submitted_targets))
        bar.set_description(", ".join(todo))
    first: Path | None = None
    for model, cv in cross_validate(feats, data, folds, list(todo), params=params, seed=seed,
                                    time_limit=per_fold_limit and per_fold_limit / (bags * repeats), n_jobs=n_jobs,
                                    bags=bags, repeats=repeats,
                                    on_fold=(lambda _f: bar.update(1)) if bar is not None else None):
        seconds = cv.seconds  # its folds' fit time (/ the workers fitting them side by side)
        config, fp = todo[model]
        run = _store_run(store, data, folds, model, cv, seconds, {**config, "fingerprint": fp, **(record or {})})
        done[model] = ModelResult(model, run, cv.scores["cv"], float(np.std(cv.fold_scores)), cv.fold_scores,
                                  seconds, resolved[model])
        first = _family_done(list(done.values()), data, ws, submit and len(models) > 1, bar) or first
    results = [done[m] for m in models]
    if bar is not None:
        bar.close()
    result = BaselineResult(comp.name, comp.metric, results, feats.plan, fold_id=folds.id, first_submission=first,
                            notes=skipped)
    _warn_perfect(result, comp)
    if submit:
        _submit(result, data, ws, new)
    result.seconds = time.perf_counter() - t0
    return result


def _resolved(comp: Competition, models: tuple[str, ...], params: dict[str, dict[str, Any]],
              n_rows: int) -> dict[str, dict[str, Any]]:
    """What each model really uses on this table: a regression forest takes max_features 0.5, not
    "sqrt"; a large table takes each family's large-table settings (``_base.is_large``)."""
    task = "classification" if comp.submitted_targets[0].is_classification else "regression"
    return {m: create_model(m, task=task, params=params.get(m), n_rows=n_rows).resolved_params() for m in models}


def _family_done(results: list[ModelResult], data: CompetitionData, ws: Workspace, submit: bool,
                      bar: Any) -> Path | None:
    """A family has finished: a progress line says how it did and, on a large table, the first
    family's submission is written at once, so a user holds one within minutes while the others train."""
    r = results[-1]
    if bar is not None:
        bar.write(f"{r.model}: CV {r.cv:.4f} ± {r.cv_std:.4f} in {'reused' if r.reused else f'{r.seconds:.0f}s'}")
    if len(results) > 1 or not submit or not is_large(len(data.train)):
        return None
    path, _ = submit_run(data, ws, r.run)
    if bar is not None and path is not None:
        bar.write(f"first submission ({r.model}): {path}; the blend follows when every family is done")
    return path


def _run_config(comp: Competition, feats: TabularFeatures, model: str, resolved: dict[str, Any],
                given: dict[str, Any], seed: int, time_budget: float | None, bags: int) -> dict[str, Any]:
    """What a model's run is made of (its identity: an identical finished run is reused). Bags and
    repeats are recorded only when not 1, so the identities of earlier runs are unchanged."""
    return {"models": [model], "params": resolved, "given_params": given, "seed": seed,
            "features": list(feats.plan.used), "dropped": feats.plan.dropped,
            "date_columns": list(comp.tabular.date_columns), "feature_hook": hook_digest(comp),
            "target_transform": "log1p" if comp.metric == "rmsle" else None, "time_budget": time_budget,
            **({"bags": bags} if bags != 1 else {}), **({"repeats": comp.cv.repeats} if comp.cv.repeats != 1 else {})}


def _check_request(comp: Competition, k: int | None, params: dict[str, dict[str, Any]] | None,
                   bags: int = 1, repeats: int | None = None) -> tuple[Competition, dict[str, dict[str, Any]]]:
    """The competition with ``k`` folds and ``repeats`` when given, and the checked parameter overrides."""
    if comp.kind != "tabular":
        raise SpecError(f"{comp.name} is an image competition; use 'kk train {comp.name}' instead of baseline")
    if bags < 1:
        raise OptionError(f"--bags: expected a number of seeds per fold of at least 1, found {bags}")
    if repeats is not None and not 1 <= repeats <= 20:
        raise OptionError(f"--repeats: expected a number of CV repeats from 1 to 20, found {repeats}")
    if repeats is not None and repeats != comp.cv.repeats:
        comp = replace(comp, cv=replace(comp.cv, repeats=repeats))
    if k is not None and k < 2:
        raise OptionError(f"--k: expected a number of CV folds of at least 2, found {k} (e.g. --k 5)")
    if k is not None and k != comp.cv.k:
        comp = replace(comp, cv=replace(comp.cv, k=k))
    return comp, params or {}


def _models(models: tuple[str, ...] | None, params: dict[str, dict[str, Any]],
            n_rows: int) -> tuple[tuple[str, ...], list[str]]:
    """The families to run (given, else ``default_models`` for this table's size), checked against
    the parameter overrides, and a note for each default family this machine cannot run."""
    skipped = []
    if not models:
        models = default_models(n_rows)
        skipped = [f"{m} left out: not installed here ({missing_extra(m)})"
                   for m in default_models(n_rows, installed=False) if m not in models]
    for name in params:
        if name not in models:
            raise OptionError(f"--param {name}.…: model {name!r} is not among the models run ({', '.join(models)})")
    return models, skipped


def _reused(model: str, run: Run, params: dict[str, Any]) -> ModelResult:
    s = run.scores
    return ModelResult(model, run, s["cv"], float(s.get("cv_std", np.std(s["folds"]))), s["folds"],
                       float(run.meta.get("timings", {}).get("fit_s", 0.0)), params, reused=True)


def _store_run(store: RunStore, data: CompetitionData, folds: Folds, model: str, cv: CVPredictions, seconds: float,
               config: dict[str, Any]) -> Run:
    """One model's cross-validation as a run: predictions, scores, feature importance (CSV, PNG)."""
    comp = data.comp
    writer = store.create("tabular", model, config)
    writer.save_predictions(to_frame(data.train[comp.id_column], comp.id_column, cv.oof, cv.targets),
                            to_frame(data.test[comp.id_column], comp.id_column, cv.test, cv.targets))
    writer.save_scores({"cv": cv.scores["cv"], "cv_std": float(np.std(cv.fold_scores)), "folds": cv.fold_scores,
                        "per_target": {k_: v for k_, v in cv.scores.items() if k_ != "cv"},
                        "best_iterations": cv.best_iterations,
                        **({"repeat_cv": cv.repeat_scores} if cv.repeat_scores else {})})
    save_importance(cv.importance, writer.path, f"{comp.name}: {model} feature importance")
    return writer.finish(comp, store.ws, fold_id=folds.id, targets=cv.targets, timings={"fit_s": round(seconds, 3)})


def _warn_perfect(result: BaselineResult, comp: Competition) -> None:
    m = get_metric(comp.metric)
    perfect = [r.model for r in result.results if (r.cv >= 1 - 1e-9 if m.greater_is_better else r.cv <= 1e-9)]
    if perfect:
        result.notes.insert(0, f"suspicious: {', '.join(perfect)} scored a perfect CV ({comp.metric} "
                               f"{result.best.cv:.4f}): a target leak is the likely "
                               f"cause (a column that is the target, or tied to it); run 'kk check {comp.name}'")


def _submit(result: BaselineResult, data: CompetitionData, ws: Workspace, new: bool) -> None:
    """The submission: with several models, the greedy (Caruana) ensemble of their OOF predictions;
    with one, that model. On the tabular suite's held-out folds (``bench/tabular_suite.py``, 6 real
    tables) the greedy ensemble was never behind the mean blend of the models the CV could not tell
    apart (the earlier rule) and ahead beyond noise on 2 tables; the notes still say which models
    the CV can tell apart."""
    indistinguishable(result)  # its notes
    if len(result.results) > 1:
        from ..blend import ensemble

        blend = ensemble(data.comp, [r.run.id for r in result.results], method="greedy", workspace=ws, new=new)
        assert blend.run is not None
        weights = ", ".join(f"{_model_of(result, rid)} {w:.2f}" for rid, _, w in blend.members if w > 0)
        result.chosen = f"greedy ensemble: {weights} ({blend.run.id})"
        result.submission, result.holdout = blend.submission, blend.holdout
    else:
        result.chosen = result.best.model
        result.submission, result.holdout = submit_run(data, ws, result.best.run)


def _model_of(result: BaselineResult, run_id: str) -> str:
    return next((r.model for r in result.results if r.run.id == run_id), run_id)


def indistinguishable(result: BaselineResult) -> list[ModelResult]:
    """The models within two standard errors of the best one's per-fold scores (paired, same folds);
    notes on every comparison go to ``result.notes``."""
    best, ties = result.best, []
    for r in result.results:
        gap = None if r is best else fold_gap(result.metric, best.fold_scores, r.fold_scores)
        if gap is None:
            continue
        if gap.indistinguishable:
            ties.append(r)
            result.notes.append(f"{best.model} and {r.model} are indistinguishable: {r.model} trails by {gap}, "
                                "within two standard errors; which one the CV crowns is fold-sampling luck")
        else:
            result.notes.append(f"{best.model} beats {r.model} beyond the folds' noise: by {gap}")
    return ties


def _progress(enabled: bool, total: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="fold", leave=False, dynamic_ncols=True, disable=None)  # off when piped
