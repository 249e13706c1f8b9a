"""One fold of ``kk train``: its phases (probe, frozen epochs, progressive-resizing stages), a
checkpoint after every epoch, and its predictions with and without TTA."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import CompetitionData
from ..errors import RunError
from ..machine import Plan
from ..metrics import get_metric
from ..predictions import score_predictions
from .config import TrainConfig, machine_plan, phases, resize_method, schedule, seed_everything
from .distributed import Dist, sync_batchnorm
from .loaders import Loaders, tta_predict
from .model import (
    Head,
    create_vision_model,
    model_stats,
    resize_policy,
    set_body_trainable,
    split_outputs,
)


class Checkpointer:
    """A fold's checkpoints: the weights of each kept epoch (``best.pt``; with several heads kept
    by their own loss, ``best-<head>.pt`` a head) with the size it was validated at, and
    ``last.pt`` (everything resume needs, as plain tensors and numbers: ``torch.load(weights_only=True)``
    reads it and runs no code). Every DDP process keeps the same account of the kept epochs; only
    rank 0 (``write``) writes the files.

    ``keep``: ``loss`` keeps the epoch (the probe counts as one) with the lowest validation loss,
    ``metric`` the best by the competition's metric, ``last`` the last epoch (a fixed schedule, no
    choice at all). The best of several accuracies on a fold's few photos flatters the OOF score;
    the loss is a smoother, harder-to-flatter yardstick. With several heads, ``loss`` keeps each
    head's own best epoch: their summed loss is ruled by the hardest head (on fashion-products,
    baseColour's 44 colours), which over-fits first and would hold the others back."""

    def __init__(self, fold_dir: Path, metric_name: str, default_size: int, *, heads: Sequence[str] = ("",),
                 write: bool = True, keep: str = "loss"):
        import torch

        self.write, self.keep, self.dir = write, keep, fold_dir
        self.last = fold_dir / "last.pt"
        self.groups = [[h] for h in heads] if keep == "loss" and len(heads) > 1 else [list(heads)]
        self.metric = get_metric(metric_name)
        self.state = None
        if self.last.is_file():
            try:  # plain tensors and numbers only: a crafted file runs no code here
                self.state = torch.load(self.last, weights_only=True)
            except Exception as e:  # pickle.UnpicklingError for code, RuntimeError for a damaged file
                raise RunError(f"{self.last}: not a plain kagglekit checkpoint ({type(e).__name__}); refusing to "
                               "load it (it was not written by kk train, or is damaged): move it aside to "
                               "restart this fold") from None
        s = self.state or {}
        # per group: the kept epoch's history row ("at"), score, loss and size; None before the first epoch
        # a last.pt from before per-head keep: its one kept epoch (best.pt)
        legacy: list[dict[str, Any] | None] | None = None
        if s.get("best") is not None and len(self.groups) == 1:
            legacy = [{"at": -1, "cv": s["best"], "loss": s["best_loss"], "size": s.get("best_size", default_size)}]
        self.kept: list[dict[str, Any] | None] = s.get("kept") or legacy or [None] * len(self.groups)
        self.default_size = default_size
        self.history: list[dict[str, Any]] = s.get("history", [])

    def path(self, group: int) -> Path:
        return self.dir / ("best.pt" if len(self.groups) == 1 else f"best-{self.groups[group][0]}.pt")

    def _loss_key(self, group: int) -> str:
        return "valid_loss" if len(self.groups) == 1 else f"valid_loss:{self.groups[group][0]}"

    def choices(self) -> list[tuple[Path, int, list[str]]]:
        """(weights file, size, heads) of each distinct kept epoch: what predicts which heads."""
        by_epoch: dict[Any, tuple[Path, int, list[str]]] = {}
        for g, k in enumerate(self.kept):
            at = None if k is None else k["at"]
            size = self.default_size if k is None else k["size"]
            path, _, heads = by_epoch.setdefault(at, (self.path(g), size, []))
            heads.extend(self.groups[g])
        return list(by_epoch.values())

    def resume_point(self, phase: int) -> tuple[int, dict[str, Any] | None] | None:
        """(first epoch, optimizer state) of ``phase``; None when it already finished."""
        if self.state is None:
            return 0, None
        if phase < self.state["phase"]:
            return None
        if phase == self.state["phase"]:
            return self.state["epoch"] + 1, self.state
        return 0, None

    def _better(self, row: dict[str, Any], group: int) -> bool:
        kept = self.kept[group]
        if kept is None or self.keep == "last":
            return True
        if self.keep == "loss":
            return row[self._loss_key(group)] < kept["loss"]
        return self.metric.better(row["cv"], kept["cv"])

    def epoch_end(self, learner: Any, row: dict[str, Any], phase: int) -> None:
        """Record an epoch; its validated weights (``learner.eval_model``: the average, with an EMA)
        are saved for each group of heads that keeps it (predictions later use the size it was
        validated at)."""
        import torch

        self.history.append(row)
        kept = [g for g in range(len(self.groups)) if self._better(row, g)]
        for g in kept:
            self.kept[g] = {"at": len(self.history) - 1, "cv": row["cv"], "loss": row[self._loss_key(g)],
                            "size": row["size"]}
        if not self.write:
            return
        for g in kept:
            torch.save(learner.eval_model.state_dict(), self.path(g))
        tmp = self.last.with_suffix(".tmp")
        ema = {"ema": learner.ema.module.state_dict(), "ema_steps": learner.steps} if learner.ema is not None else {}
        torch.save({"model": learner.model.state_dict(), "optimizer": learner.opt.state_dict() if learner.opt else {},
                    "scheduler": learner.sched.state_dict() if learner.sched else {}, "phase": phase,
                    "epoch": row["epoch"], "kept": self.kept, "history": self.history, **ema}, tmp)
        os.replace(tmp, self.last)


def _bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True, disable=None)


def _show_loss(bar: Any) -> Callable[[float], None]:
    def on_batch(loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")

    return on_batch


def make_mixup(cfg: TrainConfig, heads: list[Head]) -> Any:
    """Mixup and/or cutmix when asked for (:class:`~kagglekit.vision.mixing.Mixer`): the loss of every
    head, classes and values alike, is mixed with the weight of the mixed images."""
    if not (cfg.mixup or cfg.cutmix):
        return None
    from .mixing import Mixer

    return Mixer(mixup=cfg.mixup, cutmix=cfg.cutmix, seed=cfg.seed)


@dataclass
class FoldContext:
    """What every phase of a fold trains with: the fold's rows, the model and its learner, the
    loaders, the checkpointer, and where epochs are logged."""

    fold: int
    tr: np.ndarray
    va: np.ndarray
    cfg: TrainConfig
    data: CompetitionData
    heads: list[Head]
    y: np.ndarray
    lr: float
    model: Any
    learner: Any
    loaders: Loaders
    ckpt: Checkpointer
    pretrained: bool
    dist: Dist
    log: Callable[[dict[str, Any]], None]
    progress: bool


def train_fold(fold: int, tr: np.ndarray, va: np.ndarray, test_idx: np.ndarray, *, cfg: TrainConfig,
               data: CompetitionData, heads: list[Head], y: np.ndarray, images: Sequence[np.ndarray],
               test_images: Sequence[np.ndarray], lr: float, fold_dir: Path,
               log: Callable[[dict[str, Any]], None], progress: bool, dist: Dist | None = None,
               run_plan: Plan | None = None) -> dict[str, Any]:
    """Train one fold (resuming from its last checkpoint when there is one); returns its predictions.
    With DDP (``dist``) every process runs this, on its share of each batch. ``run_plan``: how this
    machine trains (device, precision, workers...), by default :func:`.config.machine_plan`."""
    from .learner import make_learner

    dist = dist or Dist()
    run_plan = run_plan or machine_plan(cfg, dist.world)
    done = fold_dir / "preds.npz"
    if done.is_file():
        return dict(np.load(done, allow_pickle=False))
    fold_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed + fold)
    assert cfg.sizes is not None
    model, source = create_vision_model(cfg.arch, heads[-1].stop, pretrained=cfg.pretrained, weights=cfg.weights,
                                        drop_path_rate=cfg.drop_path)
    pretrained = source != "random init"
    import torch

    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if sync_batchnorm(dist.world, run_plan.device, has_bn, pretrained and cfg.frozen_bn_stats):
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # statistics over the global batch
    mean, std = model_stats(model)
    learner = make_learner(model, heads, run_plan, dist, accum=cfg.accum, label_smoothing=cfg.label_smoothing,
                           frozen_bn_stats=pretrained and cfg.frozen_bn_stats, compile=cfg.compile,
                           layer_decay=cfg.layer_decay, mixup=make_mixup(cfg, heads))
    resize = resize_policy(resize_method(cfg, data.comp), cfg.arch, pretrained)
    ctx = FoldContext(fold, tr, va, cfg, data, heads, y, lr, model, learner,
                      Loaders(images, y, cfg, mean, std, resize, cfg.seed + fold, dist, run_plan),
                      Checkpointer(fold_dir, data.comp.metric, cfg.sizes[-1], heads=[h.name for h in heads],
                                   write=dist.main, keep=cfg.keep),
                      pretrained, dist, log, progress)
    _resume(ctx)
    for pi, (kind, size, epochs) in enumerate(phases(cfg, pretrained)):
        point = ctx.ckpt.resume_point(pi)
        if point is not None and point[0] < epochs:
            _run_phase(ctx, pi, kind, size, epochs, point)
    dist.barrier()  # rank 0 has written best.pt
    test_loaders = Loaders(test_images, None, cfg, mean, std, resize, cfg.seed + fold, dist, run_plan)
    return _predict_fold(learner, model, ctx.ckpt, ctx.loaders, test_loaders, va, test_idx, cfg.tta, heads, source,
                         fold_dir, write=dist.main)


def _resume(ctx: FoldContext) -> None:
    """Load the last checkpoint's weights, and the weight average so far with its step count."""
    state = ctx.ckpt.state
    if state is None:
        return
    ctx.model.load_state_dict(state["model"])
    if state.get("ema"):
        ctx.learner.start_ema(ctx.cfg.ema)
        ctx.learner.ema.module.load_state_dict(state["ema"])
        ctx.learner.steps = int(state.get("ema_steps", 0))


def _run_phase(ctx: FoldContext, pi: int, kind: str, size: int, epochs: int, point: tuple[int, Any]) -> None:
    """One phase: the linear probe (the head fitted on frozen features), frozen epochs, or a stage
    of fine-tuning at one image size with its own one-cycle schedule."""
    cfg, learner = ctx.cfg, ctx.learner
    start_epoch, state = point
    set_body_trainable(ctx.model, kind not in ("frozen", "probe"))
    if kind != "probe":
        learner.prepare_phase()
    if kind == "stage" and cfg.ema and learner.ema is None:  # the average starts with fine-tuning
        learner.start_ema(cfg.ema)
    train_loader = ctx.loaders(ctx.tr, size, train=True)
    bar = _bar(ctx.progress and ctx.dist.main, len(train_loader), f"fold {ctx.fold} {kind} {size}px")
    learner.on_batch = None if bar is None else _show_loss(bar)
    on_epoch = _epoch_end(ctx, pi, kind, size, ctx.loaders(ctx.va, size, train=False), bar)
    if kind == "probe":  # the head fitted on frozen features: seconds, not an epoch
        t = time.perf_counter()
        feats, feat_y, ids = learner.features(ctx.loaders(ctx.tr, size, train=False), flip=cfg.flip)
        learner.opt, learner.sched = None, None
        from .probe import choose_c, fit_head  # torch: imported when a fold trains, not with kagglekit

        auto = cfg.probe_c == "auto"
        cs = choose_c(learner, feats, feat_y, ids)[0] if auto else [float(cfg.probe_c)] * len(ctx.heads)
        loss = fit_head(learner, feats, feat_y, l2=[1.0 / (2 * len(feats) * c) for c in cs])
        head = ctx.model.get_classifier()
        head.load_state_dict(ctx.dist.broadcast(head.state_dict()))  # every process: rank 0's head
        shown = {"probe_c": cs[0]} if len(cs) == 1 else {f"probe_c:{h.name}": c
                                                          for h, c in zip(ctx.heads, cs, strict=True)}
        on_epoch(0, loss, len(feats), time.perf_counter() - t, **shown)
    else:
        phase_lr = ctx.lr if kind == "frozen" or not ctx.pretrained else ctx.lr / 2
        body_lr = phase_lr / cfg.lr_mult if ctx.pretrained and kind != "frozen" else phase_lr
        learner.fit_one_cycle(train_loader, epochs, phase_lr, body_lr, cfg.weight_decay, on_epoch,
                              **schedule(kind, ctx.pretrained), start_epoch=start_epoch, state=state)
    ctx.loaders.close()  # the phase's loaders: their workers stop before the next phase forks its own
    if bar is not None:
        bar.close()


def _epoch_end(ctx: FoldContext, pi: int, kind: str, size: int, valid_loader: Any, bar: Any) -> Callable[..., None]:
    """What ends every epoch: validate, checkpoint (keeping the epoch by the rule), then log."""
    comp, va = ctx.data.comp, ctx.va
    valid_rows = ctx.data.train.iloc[va].reset_index(drop=True)
    targets = {h.name: {"classes": list(h.classes) if h.classes else None} for h in ctx.heads}

    def head_losses(raw: np.ndarray) -> dict[str, float]:  # each head's own, for keeping epochs by head
        if len(ctx.heads) == 1:
            return {}
        losses = ctx.learner.loss_of(raw, ctx.y[va], per_head=True)
        return {f"valid_loss:{h.name}": loss for h, loss in zip(ctx.heads, losses, strict=True)}

    def on_epoch(epoch: int, train_loss: float, seen: int, seconds: float, **extra: float) -> None:
        raw = ctx.dist.gather_rows(ctx.learner.predict(valid_loader), len(va))
        scores = score_predictions(comp, valid_rows, split_outputs(raw, ctx.heads), targets)
        row = {"fold": ctx.fold, "phase": kind, "size": size, "epoch": epoch, "train_loss": float(train_loss),
               "valid_loss": ctx.learner.loss_of(raw, ctx.y[va]), **head_losses(raw),
               **{k: float(v) for k, v in scores.items()},
               "images_per_s": seen / seconds, "seconds": seconds, **extra}
        ctx.ckpt.epoch_end(ctx.learner, row, pi)
        ctx.log(row)  # after the checkpoint: an interruption here loses nothing
        if bar is not None:
            bar.reset()

    return on_epoch


def _predict_fold(learner: Any, model: Any, ckpt: Checkpointer, loaders: Loaders, test_loaders: Loaders,
                  va: np.ndarray, test_idx: np.ndarray, tta: int, heads: list[Head], source: str,
                  fold_dir: Path, write: bool = True) -> dict[str, Any]:
    """Each kept epoch's weights predict its heads on the validation fold and the test set, at the
    size that epoch was validated at; written atomically to ``preds.npz``, which marks the fold done."""
    import torch

    out: dict[str, Any] = {"valid_idx": va, "weights_source": np.array(source)}
    for path, size, names in ckpt.choices():
        model.load_state_dict(torch.load(path, weights_only=True))  # the kept epoch's (averaged) weights
        learner.ema = None  # predictions from exactly those
        oof, oof_tta = tta_predict(learner, loaders, va, size, tta, heads)
        test, test_tta = tta_predict(learner, test_loaders, test_idx, size, tta, heads)
        out.setdefault("best_size", np.array(size))  # the first head's
        for name in names:
            out[f"oof:{name}"], out[f"test:{name}"], out[f"size:{name}"] = oof[name], test[name], np.array(size)
            if oof_tta is not None and test_tta is not None:
                out[f"oof_tta:{name}"], out[f"test_tta:{name}"] = oof_tta[name], test_tta[name]
    if not write:
        return out
    pd.DataFrame(ckpt.history).to_csv(fold_dir / "history.csv", index=False)
    np.savez(fold_dir / ".preds.tmp.npz", **out)
    os.replace(fold_dir / ".preds.tmp.npz", fold_dir / "preds.npz")
    ckpt.last.unlink(missing_ok=True)  # the finished fold keeps its kept epochs' weights only
    return out
