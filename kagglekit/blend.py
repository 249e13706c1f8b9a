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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .blend_methods import Preds, blend, rank, stacking, weights
from .data import CompetitionData, load_data
from .errors import OptionError, RunError, did_you_mean, one_of
from .folds import Folds, load_folds
from .metrics import get_metric
from .predictions import from_frame, score_predictions, to_frame
from .runs import Run, RunStore, fingerprint, fold_gap
from .spec import Competition
from .submissions import submit_run
from .workspace import Workspace, resolve

METHODS = ("greedy", "mean", "rank", "weights", "stacking")



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
    chosen, skipped = choose_members(store, comp, runs)
    check_compatible(chosen, comp)
    fp = fingerprint({"kind": "ensemble", "method": method, "members": sorted(r.id for r in chosen),
                      "greedy_iterations": greedy_iterations if method == "greedy" else None}, "runs")
    same = None if new else store.identical(fp)
    data = load_data(comp, ws)
    if same is not None:  # member runs never change: the same blend of them is the same run
        cfg = same.config
        result = EnsembleResult(method, [(m, float(same.scores.get("members", {}).get(m, np.nan)), float(w))
                                         for m, w in zip(cfg["members"], cfg["weights"], strict=True)],
                                float(same.scores["cv"]), run=same, skipped=skipped, reused=True)
    else:
        members = sorted(_members(chosen, comp, data), key=lambda m: get_metric(comp.metric).sort_key(m.cv))
        result = _blend_members(store, data, members, method, greedy_iterations, skipped,
                                {"fingerprint": fp, **(record or {})})
    if submit:
        assert result.run is not None
        result.submission, result.holdout = submit_run(data, ws, result.run)
    result.seconds = time.perf_counter() - t0
    return result


def choose_members(store: RunStore, comp: Competition, runs: Sequence[str] | None) -> tuple[list[Run], list[str]]:
    """The runs to blend, and those left out with why: the runs named (each must be complete),
    else every complete run over every fold on the best run's fold assignment (ensembles left out)."""
    if runs:
        chosen = [store.get(r) for r in runs]
        incomplete = [r.id for r in chosen if not r.complete]
        if incomplete:
            raise RunError(f"run {incomplete[0]} is incomplete (it crashed or is still running)")
        return chosen, []
    chosen = [r for r in store.ranked(comp.metric) if r.config.get("kind") != "ensemble"]
    skipped = [f"{r.id} (only folds {r.meta.get('folds_done')}; kk merge it first)" for r in chosen if r.partial]
    chosen = [r for r in chosen if not r.partial]
    if chosen:  # all runs on the best run's folds; others are reported, not blended
        fold_id = chosen[0].meta.get("fold_id")
        skipped += [f"{r.id} (other folds)" for r in chosen if r.meta.get("fold_id") != fold_id]
        chosen = [r for r in chosen if r.meta.get("fold_id") == fold_id]
    return chosen, skipped


def _blend_members(store: RunStore, data: CompetitionData, members: list[Member], method: str,
                   greedy_iterations: int, skipped: list[str], config: dict[str, Any]) -> EnsembleResult:
    """Weigh and blend ``members`` (best first), store the blend as a run and say what it gains."""
    comp = data.comp
    fold_id = members[0].run.meta["fold_id"]
    folds_df = load_folds(store.ws, comp, fold_id)
    folds = Folds(fold_id, folds_df["fold"].to_numpy(np.int64), int(folds_df["fold"].max()) + 1)
    targets = {t.name: members[0].run.targets[t.name] for t in comp.submitted_targets}

    def score(p: Preds) -> float:
        return score_predictions(comp, data.train, p, targets)["cv"]

    oofs, tests = [m.oof for m in members], [m.test for m in members]
    if method == "stacking":
        w, oof, test = stacking(oofs, tests, comp, data, folds, targets)
    else:
        if method == "rank":
            oofs = [{t: rank(p) for t, p in o.items()} for o in oofs]
            tests = [{t: rank(p) for t, p in o.items()} for o in tests]
        w = weights(method, oofs, comp, score, greedy_iterations)
        oof, test = blend(oofs, w, comp), blend(tests, w, comp)
    cv = score(oof)
    result = EnsembleResult(method, [(m.run.id, m.cv, float(wi)) for m, wi in zip(members, w, strict=True)], cv,
                            skipped=skipped)
    writer = store.create("ensemble", method, {"models": [method], "method": method,
                                               "members": [m.run.id for m in members],
                                               "weights": [float(x) for x in w], **config})
    writer.save_predictions(to_frame(data.train[comp.id_column], comp.id_column, oof, targets),
                            to_frame(data.test[comp.id_column], comp.id_column, test, targets))
    fold_scores = [score_predictions(comp, data.train, oof, targets, rows=np.flatnonzero(folds.fold == f))["cv"]
                   for f in range(folds.k)]
    writer.save_scores({"cv": cv, "cv_std": float(np.std(fold_scores)), "folds": fold_scores,
                        "members": {m.run.id: m.cv for m in members}})
    result.run = writer.finish(comp, store.ws, fold_id=fold_id, targets=targets, timings={})
    result.notes = _gain_notes(data, folds, targets, members, oof, fold_scores)
    if result.notes:  # kept with the run: kk run and kk runs can say what the blend gained
        result.run.update_scores(notes=result.notes)
    return result


def _gain_notes(data: CompetitionData, folds: Folds, targets: dict[str, Any], members: list[Member], oof: Preds,
                fold_scores: list[float]) -> list[str]:
    """What the blend gains over its best member, beyond the folds' noise or not: in the metric,
    and in log loss when the metric is another (probabilities matter beyond it)."""
    comp, best = data.comp, members[0]
    notes: list[str] = []
    if len(members) < 2:
        return notes
    gap = fold_gap(comp.metric, fold_scores, best.run.scores.get("folds") or [])
    if gap is not None:
        notes.append(
            f"the blend and its best member {best.run.id} are indistinguishable: gain {gap}; blending "
            "still averages out the members' noise" if gap.indistinguishable else
            f"the blend beats its best member {best.run.id} beyond the folds' noise: gain {gap}"
            if gap.diff > 0 else f"the blend is worse than its best member {best.run.id}: {gap}")
    ll = _logloss_gap(comp, data, folds, targets, oof, best.oof) if comp.metric != "logloss" else None
    if ll is not None:
        notes.append(f"in log loss, the blend {'beats' if ll.diff > 0 else 'does not beat'} its best member "
                     f"{'beyond' if not ll.indistinguishable else 'within'} the folds' noise: gain {ll}")
    return notes


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
