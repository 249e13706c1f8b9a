"""Mixup and cutmix over every target (classes and values alike).

Each batch is paired with its reverse, as timm's ``Mixup`` pairs it; the images are blended
(mixup) or a box of one pasted into the other (cutmix, timm's ``cutmix_bbox_and_lam``, the mixing
weight corrected to the box's real area). The loss is mixed instead of the labels:
``lam * loss(out, y) + (1 - lam) * loss(out, y.flip(0))``. For a classification head this is
exactly timm's soft-target cross-entropy (cross-entropy is linear in the target), label smoothing
included; it also mixes a regression head (mean squared error against the two values) and any
number of heads at once, which soft targets cannot.
"""

from __future__ import annotations

import numpy as np
import torch


class Mixer:
    """Mixup (``mixup`` > 0: Beta(mixup, mixup) weights) and/or cutmix (``cutmix`` > 0), one of the two
    per batch (each half the time when both are asked for), applied with probability ``prob``."""

    def __init__(self, *, mixup: float = 0.0, cutmix: float = 0.0, prob: float = 1.0, seed: int = 0):
        self.mixup = mixup
        self.cutmix = cutmix
        self.prob = prob
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The mixed batch (``x`` is changed in place) and the weight of its own labels."""
        if self._rng.random() >= self.prob or len(x) < 2:
            return x, 1.0
        use_cutmix = self.cutmix > 0 and (self.mixup <= 0 or self._rng.random() < 0.5)
        alpha = self.cutmix if use_cutmix else self.mixup
        lam = float(self._rng.beta(alpha, alpha))
        if use_cutmix:
            from timm.data.mixup import cutmix_bbox_and_lam

            (yl, yh, xl, xh), lam = cutmix_bbox_and_lam(x.shape, lam, correct_lam=True)
            x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]
        else:
            other = x.flip(0).mul_(1.0 - lam)  # a copy, taken before x is scaled in place
            x.mul_(lam).add_(other)
        return x, lam
