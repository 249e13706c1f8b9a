"""One training process of ``kk train``: k-fold fine-tuning of a timm CNN into a run of the run store.

:func:`train_here` reads as its steps: :func:`prepare` (data, the defaults that depend on it, the
machine's plan, folds, the run's identity), the reuse of an identical finished run,
:func:`open_cache` (pre-resized images), :func:`fit_folds` and the run's results
(:mod:`.results`). Under DDP every process runs it, each on its share of every batch;
:func:`kagglekit.vision.launch.train` decides how many processes there are.

Per fold (see :mod:`.fold`): for pretrained models the new head is first fitted on frozen
features (a linear probe), then every stage of progressive resizing is its own one-cycle schedule
with discriminative learning rates; the kept epoch's weights predict the validation fold (OOF) and
the test set, with and without TTA. Each fold writes ``fold_<k>/preds.npz`` as soon as it
finishes, and a checkpoint after every epoch, so ``--resume`` continues an interrupted run and
``kk merge`` assembles folds trained on different machines.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data import CompetitionData, load_data
from ..errors import OptionError, RunError, SpecError
from ..folds import Folds, get_folds
from ..machine import Plan, out_of_memory_message
from ..runs import RunStore, RunWriter, data_fingerprint, fingerprint, write_json
from ..spec import Competition
from ..submissions import check_submission_format, submit_run
from ..trainconfig import TrainConfig
from ..workspace import Workspace
from .config import TrainResult, cache_side, default_epochs, default_size, machine_plan, make_heads
from .distributed import Dist
from .fold import train_fold
from .model import Head
from .results import NOT_RESULTS, finish_run, result_of

Log = Callable[[dict[str, Any]], None]


@dataclass
class Prepared:
    """What a run trains on, and how this machine runs it."""

    data: CompetitionData
    folds: Folds
    run_folds: list[int]
    plan: Plan
    heads: list[Head]
    y: np.ndarray
    fingerprint: str


@dataclass
class CachedImages:
    """The pre-resized images (in memory or streamed from a packed file) and the unreadable ones."""

    train: Any
    test: Any
    bad_train: frozenset[int]
    bad_test: frozenset[int]
    mode: str


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


def prepare(ws: Workspace, comp: Competition, cfg: TrainConfig, dist: Dist) -> Prepared:
    """Load the data, fill in the settings that depend on it (image size, epochs) and on the machine
    (batch size, threads), check the folds asked for, and compute the run's identity."""
    import torch

    data = load_data(comp, ws)
    if "path" not in data.test.columns:
        raise SpecError(f"{comp.spec_file}: [image] has no test_path/test_dir, so test images cannot be found")
    if cfg.sizes is None:
        cfg.sizes = (default_size(data.train["path"].tolist()),)
    n_train = round(len(data.train) * (comp.cv.k - 1) / comp.cv.k)  # the training images of a fold
    if cfg.epochs is None:  # see default_epochs
        cfg.epochs = default_epochs(n_train)
    plan = machine_plan(cfg, dist.world // cfg.nnodes, n_train)  # this machine's processes: kagglekit.machine
    if plan.batch_size % dist.world:  # the global batch splits evenly over every machine's processes
        plan = replace(plan, batch_size=-(-plan.batch_size // dist.world) * dist.world)
    cfg.batch_size = plan.batch_size  # the run records the batch it trained with
    torch.set_num_threads(plan.threads)
    folds = get_folds(data, ws)
    if dist.main:
        warn_duplicates(data, folds)
    run_folds = list(cfg.folds) if cfg.folds is not None else list(range(folds.k))
    bad = [f for f in run_folds if not 0 <= f < folds.k]
    if bad:
        raise OptionError(f"--folds: fold {bad[0]} does not exist; folds are 0..{folds.k - 1}")
    fp = fingerprint({"kind": "image", **{k: v for k, v in asdict(cfg).items() if k not in NOT_RESULTS}},
                     data_fingerprint(comp, ws), folds.id)
    heads, y = make_heads(comp, data.train)
    return Prepared(data, folds, run_folds, plan, heads, y, fp)


def open_cache(ws: Workspace, comp: Competition, cfg: TrainConfig, data: CompetitionData, dist: Dist,
               progress: bool) -> CachedImages:
    """The training and test images resized once for the run's sizes: each machine's first process
    (local rank 0) fills its cache, the other processes then read it."""
    from .packed import choose_mode, open_images

    cache = ws.cache_dir / comp.name / "images"
    side = cache_side(cfg, comp)
    mode = choose_mode(cfg.cache, len(data.train) + len(data.test), side, copies=dist.world)
    opened: tuple[Any, ...] = ()
    for turn in ("main", "others"):
        if (dist.local_rank == 0) == (turn == "main"):
            opened = tuple(open_images(getattr(data, part)["path"].tolist(), side, cache, mode=mode,
                                       skip_bad=cfg.skip_bad_images, progress=progress and dist.main)
                           for part in ("train", "test"))
        dist.barrier()
    (train, bad_train), (test, bad_test) = opened
    return CachedImages(train, test, bad_train, bad_test, mode)


def fit_folds(prep: Prepared, images: CachedImages, cfg: TrainConfig, lr: float, folder: Path, *, log: Log,
              progress: bool, dist: Dist, resume_hint: str) -> tuple[dict[int, dict[str, Any]], float]:
    """Train every fold asked for; returns each fold's predictions and the training throughput
    (img/s of the training steps, the probe left out)."""
    import torch

    fold_preds: dict[int, dict[str, Any]] = {}
    seen, seconds = 0, 0.0
    test_idx = np.arange(len(prep.data.test))

    def counting_log(row: dict[str, Any]) -> None:
        nonlocal seen, seconds
        if row["phase"] != "probe":  # throughput is of training steps
            seen += int(round(row["images_per_s"] * row["seconds"]))
            seconds += row["seconds"]
        log(row)

    for f, tr, va in prep.folds.split(prep.run_folds):
        tr = np.array([i for i in tr if i not in images.bad_train]) if images.bad_train else tr
        try:
            fold_preds[f] = train_fold(f, tr, va, test_idx, cfg=cfg, data=prep.data, heads=prep.heads, y=prep.y,
                                       images=images.train, test_images=images.test, lr=lr,
                                       fold_dir=folder / f"fold_{f}", log=counting_log, progress=progress,
                                       dist=dist, run_plan=prep.plan)
        except KeyboardInterrupt:  # every finished epoch is checkpointed: say how to go on
            raise KeyboardInterrupt(f"continue with: {resume_hint}") from None
        except torch.OutOfMemoryError:
            raise RunError(out_of_memory_message(prep.plan, cfg.arch, max(cfg.sizes or (0,)), cfg.accum)) from None
    return fold_preds, seen / seconds if seconds else 0.0


def train_here(ws: Workspace, comp: Competition, cfg: TrainConfig, *, run_path: Path | None = None,
               progress: bool = False, log: Log | None = None, submit: bool = True, new: bool = False,
               record: dict[str, Any] | None = None, t0: float | None = None) -> TrainResult:
    """Train ``cfg`` in this process (one of several under torchrun) and store the run, or continue
    the run at ``run_path``. A finished run with the same identity is returned instead, unless
    ``new``. Every process gets rank 0's result."""
    from . import distributed
    from .lr_finder import auto_lr
    from .model import check_arch

    t0 = time.perf_counter() if t0 is None else t0
    check_arch(cfg.arch)
    dist = distributed.init(cfg.device)
    prep = prepare(ws, comp, cfg, dist)
    if submit:
        check_submission_format(prep.data)
    same = None if new or run_path else dist.broadcast(  # rank 0's store decides, for every process
        RunStore(ws, comp.name).identical(prep.fingerprint) if dist.main else None)
    if same is not None:  # rank 0 writes the submission; every process gets its result
        return dist.broadcast(result_of(same, prep.data, ws, submit and not same.partial, t0) if dist.main else None)
    images = open_cache(ws, comp, cfg, prep.data, dist, progress)
    if dist.main:
        writer = RunWriter(run_path) if run_path else RunStore(ws, comp.name).create(
            "image", cfg.arch, {**asdict(cfg), "models": [cfg.arch], "fingerprint": prep.fingerprint,
                                **(record or {})})
    writer = RunWriter(Path(dist.broadcast(str(writer.path) if dist.main else None)))
    lr = cfg.lr
    if lr == "auto":
        lr = dist.broadcast(auto_lr(cfg, prep.data, prep.heads, prep.y, images.train, prep.folds, writer.path)
                            if dist.main else None)
    fold_preds, ips = fit_folds(prep, images, cfg, float(lr), writer.path,
                                log=(log or (lambda row: None)) if dist.main else (lambda row: None),
                                progress=progress, dist=dist,
                                resume_hint=f"kk train {comp.name} --resume {writer.path.name}")
    result = None
    if dist.main:
        write_json(writer.path / "lr.json", {"lr": float(lr)})
        machine = {k: getattr(prep.plan, k) for k in ("device", "precision", "workers", "channels_last", "batch_size")}
        run = finish_run(writer, prep.data, ws, prep.folds, prep.heads, fold_preds, cfg,
                            time.time() - (time.perf_counter() - t0), ips, images.bad_train, images.bad_test,
                            extra={"cache": images.mode, "devices": dist.world,
                                   "machine": machine | {"gpu": prep.plan.gpu.name if prep.plan.gpu else None}})
        s = run.scores
        result = TrainResult(run, s["cv"], s.get("cv_no_tta") if cfg.tta else None, s["folds"], sorted(fold_preds),
                             time.perf_counter() - t0, ips, per_target=s.get("per_target", {}),
                             weights_source=str(next(iter(fold_preds.values()))["weights_source"]))
        if submit and len(fold_preds) == prep.folds.k:
            result.submission, result.holdout = submit_run(prep.data, ws, run)
    return dist.broadcast(result)
