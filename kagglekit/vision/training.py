"""``kk train`` and ``kk merge``: k-fold fine-tuning of a timm CNN into a run of the run store.

Per fold (see :mod:`.fold`): for pretrained models the new head is first fitted on frozen
features (a linear probe), then every stage of progressive resizing is its own one-cycle schedule
with discriminative learning rates; the best epoch's weights predict the validation fold (OOF) and
the test set, with and without TTA. Each fold writes ``fold_<k>/preds.npz`` as soon as it
finishes, and a checkpoint after every epoch, so ``--resume`` continues an interrupted run and
``kk merge`` assembles folds trained on different machines.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import CompetitionData, load_data
from ..errors import OptionError, RunError, SpecError
from ..folds import Folds, get_folds
from ..machine import out_of_memory_message
from ..metrics import get_metric
from ..predictions import encode_target, score_predictions, target_info, to_frame
from ..runs import Run, RunStore, RunWriter, data_fingerprint, fingerprint, write_json
from ..spec import Competition
from ..submissions import submission_from_run
from ..workspace import Workspace, resolve
from .config import (
    TrainConfig,
    TrainResult,
    cache_side,
    config_of,
    default_epochs,
    default_size,
    machine_plan,
    make_heads,
    resolve_config,
)
from .fold import train_fold
from .model import Head


def assemble(writer_path: Path, data: CompetitionData, folds: Folds, heads: list[Head],
             fold_preds: dict[int, dict[str, Any]], unscored: frozenset[int] = frozenset()) -> dict[str, Any]:
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
    return {"variants": out, "scores": scores, "targets": targets, "best": "tta" if use_tta else "plain"}


def _finish_run(writer: RunWriter, data: CompetitionData, ws: Workspace, folds: Folds, heads: list[Head],
                fold_preds: dict[int, dict[str, Any]], cfg: TrainConfig, started: float,
                images_per_second: float, bad_train: frozenset[int] = frozenset(),
                bad_test: frozenset[int] = frozenset(),
                extra: dict[str, Any] | None = None) -> tuple[Run, dict[str, Any]]:
    comp = data.comp
    res = assemble(writer.path, data, folds, heads, fold_preds, bad_train)
    oof, test = res["variants"][res["best"]]
    if bad_test:  # an unreadable test image gets the training prior, not a guess from a black placeholder
        idx, good = sorted(bad_test), np.setdiff1d(np.arange(len(data.train)), sorted(bad_train))
        for h in heads:
            if h.classes:
                codes = encode_target(data.train[h.name], list(h.classes))[good]
                test[h.name][idx] = np.bincount(codes, minlength=len(h.classes)) / len(codes)
            else:
                test[h.name][idx] = float(data.train[h.name].iloc[good].mean())
    writer.save_predictions(to_frame(data.train[comp.id_column], comp.id_column, oof, res["targets"]),
                            to_frame(data.test[comp.id_column], comp.id_column, test, res["targets"]))
    history = [pd.read_csv(writer.path / f"fold_{f}" / "history.csv") for f in sorted(fold_preds)
               if (writer.path / f"fold_{f}" / "history.csv").is_file()]
    if history:
        pd.concat(history).to_csv(writer.path / "history.csv", index=False)
    from ..metrics import calibration, per_class
    from .plots import calibration_png, confusion_matrix_png, top_losses_png

    sub_heads = [h for h in heads if h.submit and h.classes]
    report: dict[str, Any] = {}
    if sub_heads:  # the submitted classification target: per-class scores, calibration, confusions, top losses
        h = sub_heads[0]
        rows = np.flatnonzero(~np.isnan(oof[h.name]).any(axis=1) & ~np.isin(np.arange(len(data.train)),
                                                                            sorted(bad_train)))
        classes = list(h.classes or ())
        y_idx = encode_target(data.train[h.name], classes)[rows]
        cal = calibration(y_idx, oof[h.name][rows])
        report = {"per_class": per_class(y_idx, oof[h.name][rows], classes),
                  "calibration": {k: cal[k] for k in ("ece", "confidence", "accuracy")},
                  "logloss": float(get_metric("logloss")(y_idx, oof[h.name][rows]))}
        calibration_png(cal["curve"], cal["ece"], writer.path / "calibration.png", f"{comp.name}: {h.name} (OOF)")
        confusion_matrix_png(y_idx, oof[h.name][rows].argmax(1), classes, writer.path / "confusion_matrix.png",
                             f"{comp.name}: {h.name} (OOF)")
        if "path" in data.train.columns:
            top_losses_png(data.train["path"].to_numpy()[rows], y_idx, oof[h.name][rows], classes,
                           writer.path / "top_losses.png")
    s = res["scores"]
    best = s[res["best"]]
    writer.save_scores({
        "cv": best["cv"], "cv_std": float(np.std(s[res["best"] + "_folds"])), "folds": s[res["best"] + "_folds"],
        "cv_no_tta": s["plain"]["cv"], "per_target": {k: v for k, v in best.items() if k != "cv"},
        "tta": cfg.tta, "tta_used": res["best"] == "tta", **report})
    run = writer.finish(comp, ws, fold_id=folds.id, targets=res["targets"],
                        timings={"train_s": round(time.time() - started, 2), "images_per_s": images_per_second},
                        extra={**(extra or {}), "folds_done": sorted(fold_preds), "arch": cfg.arch,
                               "skipped_images": {
                                   "train": [str(data.train["path"].iloc[i]) for i in sorted(bad_train)],
                                   "test": [str(data.test["path"].iloc[i]) for i in sorted(bad_test)]}})
    return run, res


def warn_duplicates(data: CompetitionData, folds: Folds) -> list[str]:
    """Warn about byte-identical images: training copies in different folds (an optimistic CV) and
    test images identical to training images (a leak). Returns the warnings."""
    from .._image_tables import duplicate_images

    train_paths = data.train["path"].tolist()
    where = {p: i for i, p in enumerate(train_paths)}
    within, leaks = duplicate_images(train_paths, data.test["path"].tolist())
    split = [(a, b) for a, b in within if folds.fold[where[a]] != folds.fold[where[b]]]
    messages = []
    if split:
        messages.append(f"{len(split)} training images are byte-identical copies of others in another fold (e.g. "
                        f"{split[0][0]} = {split[0][1]}): the CV is slightly optimistic; remove the copies")
    if leaks:
        messages.append(f"{len(leaks)} test images are byte-identical to training images (e.g. {leaks[0][0]} = "
                        f"{leaks[0][1]}): their labels are known")
    for m in messages:
        warnings.warn(m, stacklevel=3)
    return messages


def train(competition: str | Competition, config: TrainConfig | None = None, *, workspace: Workspace | None = None,
          resume: str | None = None, progress: bool = False, log: Callable[[dict[str, Any]], None] | None = None,
          submit: bool = True, new: bool = False, record: dict[str, Any] | None = None,
          **overrides: Any) -> TrainResult:
    """Fine-tune ``config.arch`` on every fold (or ``config.folds``) and store the run. With
    ``devices`` > 1, one DDP process per device does it (see :mod:`.launch`); under torchrun, every
    process calls this, and every process gets rank 0's result. A finished run with the same
    configuration on the same data and folds is returned instead of training again, unless ``new``.
    ``record`` adds entries to the new run's config."""
    t0 = time.perf_counter()
    ws, comp = resolve(competition, workspace)
    if comp.kind != "image":
        raise SpecError(f"{comp.name} is a tabular competition; use 'kk baseline {comp.name}' instead of train")
    store = RunStore(ws, comp.name)
    run_path = None
    if resume:
        run = store.get(resume, include_incomplete=True)
        if run.complete:
            raise RunError(f"run {resume} is already complete; nothing to resume")
        cfg = config_of(run.config)
        run_path = run.path
    else:
        cfg = resolve_config(comp, config, overrides)
    from . import distributed

    if cfg.devices > 1 and not distributed.launched():
        from .launch import launch

        machine_plan(cfg, cfg.devices)  # --devices 2 on a machine with one GPU: one line, before torchrun
        return launch(ws, comp, cfg, resume=resume, submit=submit, progress=progress, new=new, record=record)
    import torch

    from .lr_finder import auto_lr
    from .model import check_arch
    from .packed import choose_mode, open_images

    check_arch(cfg.arch)
    dist = distributed.init(cfg.device)
    data = load_data(comp, ws)
    if cfg.sizes is None:
        cfg.sizes = (default_size(data.train["path"].tolist()),)
    if cfg.epochs is None:  # by the training images of a fold (see default_epochs)
        cfg.epochs = default_epochs(round(len(data.train) * (comp.cv.k - 1) / comp.cv.k))
    run_plan = machine_plan(cfg, dist.world)  # device, workers, precision, batch size: kagglekit.machine
    cfg.batch_size = run_plan.batch_size  # the run records the batch it trained with
    torch.set_num_threads(run_plan.threads)
    folds = get_folds(data, ws)
    if dist.main:
        warn_duplicates(data, folds)
    run_folds = list(cfg.folds) if cfg.folds is not None else list(range(folds.k))
    bad = [f for f in run_folds if not 0 <= f < folds.k]
    if bad:
        raise OptionError(f"--folds: fold {bad[0]} does not exist; folds are 0..{folds.k - 1}")
    fp = fingerprint({"kind": "image", **{k: v for k, v in asdict(cfg).items() if k not in _NOT_RESULTS}},
                     data_fingerprint(comp, ws), folds.id)
    same = None if new or run_path else store.identical(fp)
    if same is not None:  # rank 0 writes the submission; every process gets its result
        full = len(same.meta.get("folds_done", [])) == folds.k
        return dist.broadcast(_result_of(same, data, ws, submit and full, t0) if dist.main else None)
    heads, y = make_heads(comp, data.train)
    if "path" not in data.test.columns:
        raise SpecError(f"{comp.spec_file}: [image] has no test_path/test_dir, so test images cannot be found")
    cache = ws.cache_dir / comp.name / "images"
    side = cache_side(cfg, comp)
    mode = choose_mode(cfg.cache, len(data.train) + len(data.test), side, copies=dist.world)
    images: Any = None
    for turn in ("main", "others"):  # rank 0 fills the cache; the others then read it
        if dist.main == (turn == "main"):
            images, bad_train = open_images(data.train["path"].tolist(), side, cache, mode=mode,
                                            skip_bad=cfg.skip_bad_images, progress=progress and dist.main)
            test_images, bad_test = open_images(data.test["path"].tolist(), side, cache, mode=mode,
                                                skip_bad=cfg.skip_bad_images, progress=progress and dist.main)
        dist.barrier()
    if dist.main:  # unreadable training images are out of training and of the scores; test ones get the prior
        writer = RunWriter(run_path) if run_path else store.create(
            "image", cfg.arch, {**asdict(cfg), "models": [cfg.arch], "fingerprint": fp, **(record or {})})
    writer = RunWriter(Path(dist.broadcast(str(writer.path) if dist.main else None)))
    lr = cfg.lr
    if lr == "auto":
        lr = dist.broadcast(auto_lr(cfg, data, heads, y, images, folds, writer.path) if dist.main else None)
    log = (log or (lambda row: None)) if dist.main else (lambda row: None)
    fold_preds: dict[int, dict[str, Any]] = {}
    seen_total, train_seconds = 0, 0.0
    test_idx = np.arange(len(data.test))
    for f, tr, va in folds.split(run_folds):
        tr = np.array([i for i in tr if i not in bad_train]) if bad_train else tr

        def counting_log(row: dict[str, Any]) -> None:
            nonlocal seen_total, train_seconds
            if row["phase"] != "probe":  # throughput is of training steps
                seen_total += int(round(row["images_per_s"] * row["seconds"]))
                train_seconds += row["seconds"]
            log(row)

        try:
            fold_preds[f] = train_fold(f, tr, va, test_idx, cfg=cfg, data=data, heads=heads, y=y, images=images,
                                       test_images=test_images, lr=float(lr), fold_dir=writer.path / f"fold_{f}",
                                       log=counting_log, progress=progress, dist=dist, run_plan=run_plan)
        except KeyboardInterrupt:  # every finished epoch is checkpointed: say how to go on
            raise KeyboardInterrupt(f"continue with: kk train {comp.name} --resume {writer.path.name}") from None
        except torch.OutOfMemoryError:
            raise RunError(out_of_memory_message(run_plan, cfg.arch, max(cfg.sizes), cfg.accum)) from None
    ips = seen_total / train_seconds if train_seconds else 0.0
    result = None
    if dist.main:
        write_json(writer.path / "lr.json", {"lr": float(lr)})
        run, res = _finish_run(writer, data, ws, folds, heads, fold_preds, cfg,
                               time.time() - (time.perf_counter() - t0), ips, bad_train, bad_test,
                               extra={"cache": mode, "devices": dist.world, "machine": {
                                   k: getattr(run_plan, k) for k in ("device", "precision", "workers", "channels_last",
                                                                     "batch_size")} | {
                                   "gpu": run_plan.gpu.name if run_plan.gpu else None}})
        scores = run.scores
        result = TrainResult(run, scores["cv"], scores.get("cv_no_tta") if cfg.tta else None, scores["folds"],
                             sorted(fold_preds), time.perf_counter() - t0, ips, per_target=scores.get("per_target", {}),
                             weights_source=str(next(iter(fold_preds.values()))["weights_source"]))
        if submit and len(fold_preds) == folds.k:
            result.submission = submission_from_run(data, ws, run)
            result.holdout = run.scores.get("holdout")
    return dist.broadcast(result)


_NOT_RESULTS = ("num_workers", "devices", "cache", "compile", "precision")  # settings that change speed, not the result


def _result_of(run: Run, data: CompetitionData, ws: Workspace, submit: bool, t0: float) -> TrainResult:
    """The result of a finished run, returned again (an identical run was asked for)."""
    s = run.scores
    result = TrainResult(run, s["cv"], s.get("cv_no_tta") if run.config.get("tta") else None, s["folds"],
                         list(run.meta.get("folds_done", [])), time.perf_counter() - t0,
                         float(run.meta.get("timings", {}).get("images_per_s", 0.0)),
                         per_target=s.get("per_target", {}), reused=True)
    if submit:
        result.submission = submission_from_run(data, ws, run)
        result.holdout = run.scores.get("holdout")
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
                                                                 *_NOT_RESULTS)}

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
    run, _ = _finish_run(writer, data, ws, folds, heads, fold_preds, cfg, time.time(), 0.0)
    s = run.scores
    result = TrainResult(run, s["cv"], s.get("cv_no_tta"), s["folds"], sorted(fold_preds), time.perf_counter() - t0,
                         0.0, per_target=s.get("per_target", {}))
    if submit and len(fold_preds) == folds.k:
        result.submission = submission_from_run(data, ws, run)
        result.holdout = run.scores.get("holdout")
    return result
