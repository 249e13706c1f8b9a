"""The training loop: one-cycle fitting with gradient accumulation, prediction with TTA and the
learning-rate finder. Written to be read top to bottom, nanoGPT-style."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..machine import Plan
from .distributed import Dist
from .model import Head, param_groups
from .schedule import OneCycle, valley


def torch_device(device: str, local_rank: int = 0) -> torch.device:
    """The torch device of a plan's ``device`` (cpu, cuda, mps); with DDP on GPUs, this process's
    GPU (its local rank)."""
    return torch.device("cuda", local_rank) if device == "cuda" else torch.device(device)


AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def head_loss(h: Head, out: torch.Tensor, t: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Head ``h``'s loss on its slice of ``out`` against its labels ``t``: cross-entropy for classes,
    MSE for (standardised) values, the mean over the images that have a label (an auxiliary target's
    missing label is NaN; a batch without any adds 0)."""
    z = out[:, h.start:h.start + h.size].float()
    known = ~torch.isnan(t)  # masked arithmetic, not indexing: no device sync in the step
    n = known.sum().clamp(min=1)
    if h.classes is None:
        return ((z[:, 0] - t.nan_to_num()) ** 2 * known).sum() / n
    each = F.cross_entropy(z, t.nan_to_num(nan=-100.0).long(), ignore_index=-100, label_smoothing=smoothing,
                           reduction="none")
    return each.sum() / n


@dataclass
class Learner:
    """A model, its heads and how to step it. ``accum`` micro-batches make one optimizer step."""

    model: Any  # a timm model (forward_features, forward_head, get_classifier)
    heads: list[Head]
    device: torch.device
    accum: int = 1
    label_smoothing: float = 0.0
    frozen_bn_stats: bool = False  # batch norm keeps its running statistics while training (fine-tuning)
    on_batch: Callable[[float], None] | None = None  # called with the running loss (progress bars)
    dist: Dist = Dist()  # this process's place among DDP processes
    compile: bool = False  # torch.compile the training forward and backward
    precision: str = "fp32"  # autocast dtype: fp32 (none), fp16 (with a gradient scaler) or bf16
    channels_last: bool = True  # NHWC memory format (see kagglekit.machine for when)
    layer_decay: float | None = None  # layer-wise learning-rate decay instead of one body rate
    mixup: Any = None  # a vision.mixing.Mixer: mixup / cutmix, the loss mixed over every target

    def __post_init__(self) -> None:
        # the machine's choices (kagglekit.machine.plan) arrive as plain values: nothing is asked here
        self.model.to(self.device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        self.amp_dtype = AMP_DTYPES.get(self.precision)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None
        self.net: Any = self.model  # what training steps call: the model, or its DDP or compiled wrapper
        self.opt: torch.optim.Optimizer | None = None  # of the phase being trained (checkpointed)
        self.sched: OneCycle | None = None
        self.ema: Any = None  # timm's ModelEmaV3 of the weights, once start_ema is called
        self.steps = 0  # optimizer steps since the EMA started (its warm-up)

    def start_ema(self, decay: float) -> None:
        """Keep an exponential moving average of the weights from now on (timm's ``ModelEmaV3``,
        with its warm-up: early steps average over few updates). Validation and predictions then use
        the averaged weights (:attr:`eval_model`)."""
        from timm.utils import ModelEmaV3

        self.ema, self.steps = ModelEmaV3(self.model, decay=decay, use_warmup=True), 0

    @property
    def eval_model(self) -> Any:
        """The weights that validate and predict: the EMA when there is one, else the model."""
        return self.ema.module if self.ema is not None else self.model

    def prepare_phase(self) -> None:
        """What the next phase's training steps call, once its trainable parameters are fixed: the
        model wrapped in DDP (which all-reduces the gradients of exactly those) when several
        processes train, then compiled with ``compile``. Predictions always use the plain model."""
        self.net = self.model
        if self.dist.active:
            from torch.nn.parallel import DistributedDataParallel

            cuda = self.device.type == "cuda"
            self.net = DistributedDataParallel(self.model, device_ids=[self.device.index] if cuda else None)
        if self.compile:
            self.net = torch.compile(self.net)

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _to(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _backward(self, loss: torch.Tensor) -> None:
        """Gradients of ``loss``; with fp16, of the loss scaled so that small gradients survive."""
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def _step(self, opt: torch.optim.Optimizer) -> None:
        """One optimizer step; with fp16 the scaler unscales the gradients first and skips a step
        whose gradients overflowed (then lowers its scale)."""
        if self.scaler:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()

    def loss(self, out: torch.Tensor, y: torch.Tensor, smoothing: float | None = None) -> torch.Tensor:
        """Weighted sum of per-target losses (each head's ``weight``, the spec's ``[[targets]]
        weight``): cross-entropy for classes, MSE for (standardised) values. ``smoothing``: label
        smoothing, by default the learner's (0 for held-out scores: log loss)."""
        return sum((h.weight * part for h, part in zip(self.heads, self.head_losses(out, y, smoothing), strict=True)),
                   out.new_zeros(()))

    def head_losses(self, out: torch.Tensor, y: torch.Tensor, smoothing: float | None = None) -> list[torch.Tensor]:
        """Each head's own loss, unweighted, the mean over the images that have its label (an
        auxiliary target's missing label is NaN; a batch without any adds 0)."""
        smoothing = self.label_smoothing if smoothing is None else smoothing
        return [head_loss(h, out, y[:, i], smoothing) for i, h in enumerate(self.heads)]

    def optimizer(self, lr: float, body_lr: float, weight_decay: float) -> torch.optim.Optimizer:
        groups = param_groups(self.model, lr, body_lr, weight_decay, self.layer_decay if lr != body_lr else None)
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99), eps=1e-5)

    def steps_per_epoch(self, loader: Any) -> int:
        return math.ceil(len(loader) / self.accum)

    def train_mode(self) -> None:
        """Training mode; with ``frozen_bn_stats`` batch-norm layers normalise with the running
        (pretrained) statistics, as the probe's features were computed, instead of those of each
        small batch: the fine-tuned features do not jump away from what the head was fitted on."""
        self.net.train()  # the model, and its DDP or compiled wrapper
        if self.frozen_bn_stats:
            for m in self.model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def train_epoch(self, loader: Any, opt: torch.optim.Optimizer, sched: Any,
                    on_batch: Callable[[float], None] | None = None) -> tuple[float, int]:
        """One pass over ``loader``. The loss of each micro-batch is divided by ``accum`` so that
        ``accum`` micro-batches make exactly the update of one large batch; with DDP each process
        holds its share of every batch, and gradients are all-reduced at the step's last micro-batch
        only. Returns (mean loss, images), over all processes."""
        self.train_mode()
        opt.zero_grad(set_to_none=True)
        total, seen, n = 0.0, 0, len(loader)
        for i, (x, y) in enumerate(loader):
            x, y = self._to(x, y)
            lam = 1.0
            if self.mixup is not None:  # pairs the batch with its reverse; the loss is mixed (vision.mixing)
                x, lam = self.mixup(x)
            stepping = (i + 1) % self.accum == 0 or i + 1 == n
            ddp = getattr(self.net, "_orig_mod", self.net)  # a compiled DDP model syncs through its original
            sync = ddp.no_sync() if ddp is not self.model and not stepping else nullcontext()
            with sync:
                with self._autocast():
                    out = self.net(x)
                    loss = self.loss(out, y) if lam == 1.0 else \
                        lam * self.loss(out, y) + (1.0 - lam) * self.loss(out, y.flip(0))
                self._backward(loss / self.accum)
            if stepping:
                self._step(opt)
                opt.zero_grad(set_to_none=True)
                if self.ema is not None:
                    self.steps += 1
                    self.ema.update(self.model, step=self.steps)
                if sched is not None:
                    sched.step()
            total += loss.item() * len(x)
            seen += len(x)
            if on_batch is not None:
                on_batch(total / seen)
        total, seen_all = self.dist.sum(total, seen)
        return total / max(seen_all, 1), int(seen_all)

    @torch.no_grad()
    def predict(self, loader: Any) -> np.ndarray:
        """Raw outputs of :attr:`eval_model` for every item of ``loader`` (in order)."""
        model = self.eval_model
        model.eval()
        outs = []
        for x, y in loader:
            x, _ = self._to(x, y)
            with self._autocast():
                outs.append(model(x).float().cpu())
        if not outs:  # no rows (a set without test images)
            return np.zeros((0, self.heads[-1].stop if self.heads else 0), np.float32)
        return torch.cat(outs).numpy()

    @torch.no_grad()
    def features(self, loader: Any, flip: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pre-logits features (what the classifier sees) of every item, with the body in eval
        mode; with ``flip`` the mirrored images are added too. With DDP, every process's rows
        (in no particular order). Returns (features, targets, image ids: the views of one image share
        an id, so that an inner cross-validation keeps them together)."""
        self.model.eval()
        feats, ys, ids, k = [], [], [], self.dist.rank * 2**40
        for x, y in loader:
            x, _ = self._to(x, y)
            for view in (x, torch.flip(x, dims=[3])) if flip else (x,):
                with self._autocast():
                    f = self.model.forward_head(self.model.forward_features(view), pre_logits=True)
                feats.append(f.float().flatten(1).cpu())
                ys.append(y)
                ids.append(torch.arange(k, k + len(x)))
            k += len(x)
        parts = self.dist.all_gather((torch.cat(feats), torch.cat(ys), torch.cat(ids)))
        return tuple(torch.cat([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]

    @torch.no_grad()
    def loss_of(self, out: np.ndarray, y: np.ndarray, per_head: bool = False) -> Any:
        """The held-out loss of raw outputs: log loss (no label smoothing) for classes; the weighted
        sum, or with ``per_head`` each head's own (a list)."""
        if per_head:
            return [float(v) for v in self.head_losses(torch.from_numpy(out), torch.from_numpy(y), smoothing=0.0)]
        return float(self.loss(torch.from_numpy(out), torch.from_numpy(y), smoothing=0.0))

    def fit_one_cycle(self, loader: Any, epochs: int, lr: float, body_lr: float, weight_decay: float,
                      on_epoch: Callable[[int, float, int, float], None], *, pct_start: float = 0.25,
                      div: float = 25.0, start_epoch: int = 0,
                      state: dict[str, Any] | None = None) -> tuple[torch.optim.Optimizer, OneCycle]:
        """``epochs`` epochs under fastai's one-cycle schedule (learning rate and momentum).
        ``on_epoch(epoch, train_loss, images, seconds)`` validates and checkpoints; ``state``
        restores optimizer and schedule when resuming at ``start_epoch``."""
        opt = self.optimizer(lr, body_lr, weight_decay)
        sched = OneCycle(opt, max(1, epochs * self.steps_per_epoch(loader)), pct_start=pct_start, div=div)
        if state is not None:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        self.opt, self.sched = opt, sched
        for epoch in range(start_epoch, epochs):
            t = time.perf_counter()
            train_loss, seen = self.train_epoch(loader, opt, sched, self.on_batch)
            on_epoch(epoch, train_loss, seen, time.perf_counter() - t)
        return opt, sched

    def lr_find(self, loader: Any, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
                weight_decay: float = 0.01) -> tuple[np.ndarray, np.ndarray, float]:
        """fastai's learning-rate finder: an exponential sweep from ``start_lr`` to ``end_lr``,
        smoothed loss, stop on divergence; model and optimiser are restored afterwards.
        Returns (lrs, smoothed losses, the 'valley' suggestion)."""
        saved = copy.deepcopy(self.model.state_dict())
        opt = self.optimizer(start_lr, start_lr, weight_decay)
        mult = (end_lr / start_lr) ** (1 / max(1, num_it - 1))
        lrs, losses = [], []
        avg, best, it = 0.0, math.inf, 0
        self.model.train()
        try:
            while it < num_it:
                for x, y in loader:
                    lr = start_lr * mult ** it
                    for g in opt.param_groups:
                        g["lr"] = lr
                    x, y = self._to(x, y)
                    with self._autocast():
                        loss = self.loss(self.model(x), y)
                    opt.zero_grad(set_to_none=True)
                    self._backward(loss)
                    self._step(opt)
                    avg = 0.98 * avg + 0.02 * loss.item()
                    smooth = avg / (1 - 0.98 ** (it + 1))
                    lrs.append(lr)
                    losses.append(smooth)
                    best = min(best, smooth)
                    it += 1
                    if it >= num_it or not math.isfinite(smooth) or smooth > 4 * best:
                        it = num_it
                        break
        finally:
            self.model.load_state_dict(saved)  # the sweep must leave no trace
        lrs_a, losses_a = np.array(lrs), np.array(losses)
        return lrs_a, losses_a, valley(lrs_a, losses_a)


def make_learner(model: Any, heads: list[Head], run_plan: Plan, dist: Dist | None = None, **kw: Any) -> Learner:
    """A Learner on the plan's device (this process's GPU under DDP), precision and memory format."""
    dist = dist or Dist()
    return Learner(model, heads, torch_device(run_plan.device, dist.local_rank), dist=dist,
                   precision=run_plan.precision, channels_last=run_plan.channels_last, **kw)
