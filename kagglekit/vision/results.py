"""A run's results from its folds' predictions: assembled into OOF and test predictions (plain or
TTA, whichever scores better), scored, reported per class with plots, and written to the run
store. ``kk merge`` puts together the folds of runs trained separately the same way."""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import CompetitionData, load_data
from ..errors import RunError
from ..folds import Folds, get_folds
from ..metrics import get_metric
from ..predictions import encode_target, score_predictions, target_info, to_frame
from ..runs import Run, RunStore, RunWriter
from ..spec import Competition
from ..submissions import submit_run
from ..trainconfig import SPEED_ONLY, TrainConfig
from ..workspace import Workspace, resolve
from .config import TrainResult, config_of, make_heads
from .model import Head

Preds = dict[str, np.ndarray]


@dataclass
class Assembled:
    """A run's folds put together: (OOF, test) predictions per variant (plain, and TTA when it ran),
    their scores (``<variant>`` overall, ``<variant>_folds`` per fold), the targets, and the
    variant kept (TTA when it does not hurt the OOF score)."""

    variants: dict[str, tuple[Preds, Preds]]
    scores: dict[str, Any]
    targets: dict[str, dict[str, Any]]
    best: str

    @property
    def kept(self) -> tuple[Preds, Preds]:
        return self.variants[self.best]


def assemble(data: CompetitionData, folds: Folds, heads: list[Head], fold_preds: dict[int, dict[str, Any]],
             unscored: frozenset[int] = frozenset()) -> Assembled:
    """OOF (NaN for folds not run) and fold-averaged test predictions, with and without TTA.
    Rows in ``unscored`` (training images that could not be read) are left out of every score."""
    comp = data.comp
    n, m = len(data.train), len(data.test)
    has_tta = all(f"oof_tta:{heads[0].name}" in p for p in fold_preds.values())
    out: dict[str, Any] = {}
    for variant in ("plain", "tta") if has_tta else ("plain",):
        key = "" if variant == "plain" else "_tta"
        oof, test = {}, {}
        for h in heads:
            shape = (n, len(h.classes)) if h.classes else (n,)
            o = np.full(shape, np.nan)
            t = np.zeros((m, len(h.classes)) if h.classes else (m,))
            for p in fold_preds.values():
                o[p["valid_idx"]] = p[f"oof{key}:{h.name}"]
                t += p[f"test{key}:{h.name}"] / len(fold_preds)
            oof[h.name], test[h.name] = o, t
        out[variant] = (oof, test)
    targets = target_info(comp, data.train)
    keep = ~np.isin(np.arange(n), sorted(unscored))
    rows = np.flatnonzero(np.isin(folds.fold, sorted(fold_preds)) & keep)
    scores: dict[str, Any] = {}
    for variant, (oof, _) in out.items():
        scores[variant] = score_predictions(comp, data.train, oof, targets, rows=rows)
        scores[variant + "_folds"] = [
            score_predictions(comp, data.train, oof, targets, rows=np.flatnonzero((folds.fold == f) & keep))["cv"]
            for f in sorted(fold_preds)]
    # TTA is kept when it does not hurt the OOF score: views the model never trained on can move it
    # away (dogs vs cats: a linear probe fitted on plain and mirrored photos, accuracy 0.992 plain,
    # 0.990 with random-crop TTA views). Choosing between two variants on all OOF rows is a far
    # smaller selection than choosing the best epoch per fold.
    metric = get_metric(comp.metric)
    use_tta = has_tta and not metric.better(scores["plain"]["cv"], scores["tta"]["cv"])
    return Assembled(out, scores, targets, "tta" if use_tta else "plain")


def class_report(folder: Path, data: CompetitionData, heads: list[Head], oof: dict[str, np.ndarray],
                 bad_train: frozenset[int] = frozenset()) -> dict[str, Any]:
    """For the submitted classification target: per-class precision and recall, calibration and
    OOF log loss (returned, for scores.json), and the calibration, confusion-matrix and top-losses
    plots (written to ``folder``). Empty for regression."""
    from ..metrics import calibration, per_class
    from .plots import calibration_png, confusion_matrix_png, top_losses_png

    comp = data.comp
    sub_heads = [h for h in heads if h.submit and h.classes]
    if not sub_heads:
        return {}
    h = sub_heads[0]
    rows = np.flatnonzero(~np.isnan(oof[h.name]).any(axis=1) & ~np.isin(np.arange(len(data.train)),
                                                                        sorted(bad_train)))
    classes = list(h.classes or ())
    y_idx = encode_target(data.train[h.name], classes)[rows]
    cal = calibration(y_idx, oof[h.name][rows])
    calibration_png(cal["curve"], cal["ece"], folder / "calibration.png", f"{comp.name}: {h.name} (OOF)")
    confusion_matrix_png(y_idx, oof[h.name][rows].argmax(1), classes, folder / "confusion_matrix.png",
                         f"{comp.name}: {h.name} (OOF)")
    if "path" in data.train.columns:
        top_losses_png(data.train["path"].to_numpy()[rows], y_idx, oof[h.name][rows], classes,
                       folder / "top_losses.png")
    return {"per_class": per_class(y_idx, oof[h.name][rows], classes),
            "calibration": {k: cal[k] for k in ("ece", "confidence", "accuracy")},
            "logloss": float(get_metric("logloss")(y_idx, oof[h.name][rows]))}


def finish_run(writer: RunWriter, data: CompetitionData, ws: Workspace, folds: Folds, heads: list[Head],
               fold_preds: dict[int, dict[str, Any]], cfg: TrainConfig, started: float,
               images_per_second: float, bad_train: frozenset[int] = frozenset(),
               bad_test: frozenset[int] = frozenset(),
               extra: dict[str, Any] | None = None) -> Run:
    """Put the folds' predictions together into the run: OOF and test predictions (the better of
    plain and TTA), history, scores and the class report; then mark it finished."""
    comp = data.comp
    res = assemble(data, folds, heads, fold_preds, bad_train)
    oof, test = res.kept
    if bad_test:  # an unreadable test image gets the training prior, not a guess from a black placeholder
        idx, good = sorted(bad_test), np.setdiff1d(np.arange(len(data.train)), sorted(bad_train))
        for h in heads:
            if h.classes:
                codes = encode_target(data.train[h.name], list(h.classes))[good]
                codes = codes[codes >= 0]  # an auxiliary target's missing labels do not count
                test[h.name][idx] = np.bincount(codes, minlength=len(h.classes)) / len(codes)
            else:
                test[h.name][idx] = float(data.train[h.name].iloc[good].mean())
    writer.save_predictions(to_frame(data.train[comp.id_column], comp.id_column, oof, res.targets),
                            to_frame(data.test[comp.id_column], comp.id_column, test, res.targets))
    history = [pd.read_csv(writer.path / f"fold_{f}" / "history.csv") for f in sorted(fold_preds)
               if (writer.path / f"fold_{f}" / "history.csv").is_file()]
    if history:
        pd.concat(history).to_csv(writer.path / "history.csv", index=False)
    report = class_report(writer.path, data, heads, oof, bad_train)
    s = res.scores
    best = s[res.best]
    writer.save_scores({
        "cv": best["cv"], "cv_std": float(np.std(s[res.best + "_folds"])), "folds": s[res.best + "_folds"],
        "cv_no_tta": s["plain"]["cv"], "per_target": {k: v for k, v in best.items() if k != "cv"},
        "tta": cfg.tta, "tta_used": res.best == "tta", **report})
    run = writer.finish(comp, ws, fold_id=folds.id, targets=res.targets,
                        timings={"train_s": round(time.time() - started, 2), "images_per_s": images_per_second},
                        extra={**(extra or {}), "folds_done": sorted(fold_preds), "arch": cfg.arch,
                               "skipped_images": {
                                   "train": [str(data.train["path"].iloc[i]) for i in sorted(bad_train)],
                                   "test": [str(data.test["path"].iloc[i]) for i in sorted(bad_test)]}})
    return run


NOT_RESULTS = SPEED_ONLY  # settings that change speed, not the result (TrainConfig's speed_only fields)


def result_of(run: Run, data: CompetitionData, ws: Workspace, submit: bool, t0: float) -> TrainResult:
    """The result of a finished run, returned again (an identical run was asked for)."""
    s = run.scores
    result = TrainResult(run, s["cv"], s.get("cv_no_tta") if run.config.get("tta") else None, s["folds"],
                         list(run.meta.get("folds_done", [])), time.perf_counter() - t0,
                         float(run.meta.get("timings", {}).get("images_per_s", 0.0)),
                         per_target=s.get("per_target", {}), reused=True)
    if submit:
        result.submission, result.holdout = submit_run(data, ws, run)
    return result


def merge(competition: str | Competition, run_ids: list[str], *, workspace: Workspace | None = None,
          submit: bool = True) -> TrainResult:
    """``kk merge``: assemble the folds of runs trained separately (same config but ``folds``)."""
    t0 = time.perf_counter()
    ws, comp = resolve(competition, workspace)
    store = RunStore(ws, comp.name)
    runs = [store.get(r) for r in run_ids]
    if len(runs) < 2:
        raise RunError("kk merge needs at least two runs")

    def key(r: Run) -> dict[str, Any]:
        return {k: v for k, v in r.config.items() if k not in ("folds", "device", "fingerprint", "stage_key", "stage",
                                                                 *NOT_RESULTS)}

    for r in runs[1:]:
        if key(r) != key(runs[0]):
            diff = sorted(k for k in set(key(r)) | set(key(runs[0])) if key(r).get(k) != key(runs[0]).get(k))
            raise RunError(f"cannot merge {runs[0].id} and {r.id}: their configs differ in {', '.join(diff)}")
        if r.meta.get("fold_id") != runs[0].meta.get("fold_id"):
            raise RunError(f"cannot merge {runs[0].id} and {r.id}: they use different fold assignments")
    data = load_data(comp, ws)
    folds = get_folds(data, ws)
    if runs[0].meta.get("fold_id") != folds.id:
        raise RunError(f"runs were trained on fold assignment {runs[0].meta.get('fold_id')}, the data now gives "
                       f"{folds.id}")
    fold_preds: dict[int, dict[str, Any]] = {}
    for r in runs:
        for f in r.meta.get("folds_done", []):
            if f in fold_preds:
                raise RunError(f"fold {f} is in more than one of the runs; merge runs with disjoint --folds")
            fold_preds[f] = dict(np.load(r.path / f"fold_{f}" / "preds.npz", allow_pickle=False))
    cfg = config_of(runs[0].config)
    cfg.folds = tuple(sorted(fold_preds))
    heads, _ = make_heads(comp, data.train)
    writer = store.create("image", f"{cfg.arch}-merged", {**asdict(cfg), "models": [cfg.arch],
                                                           "merged_from": [r.id for r in runs]})

    for r in runs:
        for f in r.meta.get("folds_done", []):
            shutil.copytree(r.path / f"fold_{f}", writer.path / f"fold_{f}")
    run = finish_run(writer, data, ws, folds, heads, fold_preds, cfg, time.time(), 0.0)
    s = run.scores
    result = TrainResult(run, s["cv"], s.get("cv_no_tta"), s["folds"], sorted(fold_preds), time.perf_counter() - t0,
                         0.0, per_target=s.get("per_target", {}))
    if submit and len(fold_preds) == folds.k:
        result.submission, result.holdout = submit_run(data, ws, run)
    return result
