"""The anchors kk's fine-tuning is measured against, written the plain way (no kagglekit code):
timm's evaluation transform preloaded into memory, frozen features + logistic regression, and a
timm-style fine-tune loop (AdamW, linear warm-up then cosine, label smoothing, random flips,
channels_last, autocast where the device has it)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np


def preload(paths: list[str], arch: str, weights: Path):
    """Every photo through timm's own evaluation transform for ``arch`` (shorter side to size /
    crop_pct, centre crop, normalised), held in memory as one float tensor."""
    import timm
    import torch
    from PIL import Image
    from timm.data import create_transform, resolve_model_data_config

    model = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": str(weights)})
    tf = create_transform(**resolve_model_data_config(model), is_training=False)
    return torch.stack([tf(Image.open(p).convert("RGB")) for p in paths])


def frozen_features(x, arch: str, weights: Path, device: str = "cpu") -> np.ndarray:
    """Pooled ImageNet features of every photo (no head), in eval mode."""
    import timm
    import torch

    model = timm.create_model(arch, pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": str(weights)})
    model.eval().to(device)
    with torch.no_grad():
        return torch.cat([model(b.to(device)).float().cpu() for b in x.split(64)]).numpy()


def logistic_regression(feats: np.ndarray, y: np.ndarray, tr: np.ndarray, va: np.ndarray) -> np.ndarray:
    """Class probabilities of rows ``va`` from a multinomial logistic regression on standardised
    features, its C chosen by a 3-fold inner cross-validation of the log loss on rows ``tr``."""
    import warnings

    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=np.logspace(-4, 1, 11), cv=3, max_iter=3000,
                                                                 scoring="neg_log_loss", n_jobs=-1))
    with warnings.catch_warnings():  # scikit-learn 1.8's notices about its 1.10 defaults
        warnings.simplefilter("ignore", FutureWarning)
        return model.fit(feats[tr], y[tr]).predict_proba(feats[va])


class HandLoop:
    """A timm-style fine-tune of ``arch`` on preloaded tensors: pretrained body, new head (normal,
    std 0.01), AdamW
    (lr 3e-4, weight decay 0.05) with a linear warm-up over the first epoch's tenth then cosine
    decay, label smoothing 0.1, random horizontal flips, batch 32, channels_last; fp16 autocast with
    a gradient scaler or bf16 autocast when ``precision`` asks for it (on a GPU)."""

    def __init__(self, x, y: np.ndarray, tr: np.ndarray, arch: str, weights: Path, classes: int, epochs: int,
                 seed: int, device: str = "cpu", precision: str = "fp32", batch: int = 32, lr: float = 3e-4):
        import timm
        import torch

        torch.manual_seed(seed)
        model = timm.create_model(arch, pretrained=True, num_classes=classes,
                                  pretrained_cfg_overlay={"file": str(weights)})
        # the new head re-initialised small, as a careful hand-written loop would: timm's own init of
        # EfficientNet's classifier starts far off (0.74 accuracy on flowers fold 0 after 4 epochs)
        torch.nn.init.normal_(model.get_classifier().weight, std=0.01)
        torch.nn.init.zeros_(model.get_classifier().bias)
        self.device, self.batch = torch.device(device), batch
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self.xt, self.yt = x[tr], torch.from_numpy(y[tr]).long()
        self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
        steps = epochs * (len(tr) // batch)
        warm = max(1, steps // 10)

        def factor(s: int) -> float:
            return (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm)))

        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, factor)
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        self.scaler = torch.amp.GradScaler(self.device.type) if precision == "fp16" else None

    def epoch(self) -> float:
        """One epoch; returns its images/s."""
        import torch
        import torch.nn.functional as F

        self.model.train()
        order = torch.randperm(len(self.xt))
        seen, t = 0, time.perf_counter()
        for i in range(0, len(order) - self.batch + 1, self.batch):
            idx = order[i:i + self.batch]
            xb = self.xt[idx].clone()
            flip = torch.rand(len(idx)) < 0.5
            xb[flip] = xb[flip].flip(3)
            xb = xb.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            yb = self.yt[idx].to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
                loss = F.cross_entropy(self.model(xb), yb, label_smoothing=0.1)
            self.opt.zero_grad(set_to_none=True)
            if self.scaler:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
            else:
                loss.backward()
                self.opt.step()
            self.sched.step()
            seen += len(idx)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return seen / (time.perf_counter() - t)

    def predict(self, x) -> np.ndarray:
        import torch

        self.model.eval()
        with torch.no_grad(), torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            return torch.cat([self.model(b.to(self.device).contiguous(memory_format=torch.channels_last))
                              .float().softmax(1).cpu() for b in x.split(64)]).numpy()


def hand_fold(x, y: np.ndarray, tr: np.ndarray, va: np.ndarray, arch: str, weights: Path, classes: int,
              epochs: int, seed: int, **kw) -> tuple[np.ndarray, float]:
    """The hand loop on one fold: (class probabilities of rows ``va``, mean training images/s)."""
    loop = HandLoop(x, y, tr, arch, weights, classes, epochs, seed, **kw)
    rates = [loop.epoch() for _ in range(epochs)]
    return loop.predict(x[va]), float(np.mean(rates))
