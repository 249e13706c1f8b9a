"""DataLoaders over the in-memory images at a given size, and test-time augmentation."""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import TrainConfig, default_workers
from .model import Head, split_outputs


class Loaders:
    """Builds DataLoaders over the in-memory images at a given size."""

    def __init__(self, images: list[np.ndarray], y: np.ndarray | None, cfg: TrainConfig, mean: tuple, std: tuple,
                 resize: tuple[str, float], seed: int):
        """``resize``: (method, crop_pct) for validation and test images, from ``resize_policy``."""
        self.images, self.y, self.cfg, self.mean, self.std, self.seed = images, y, cfg, mean, std, seed
        self.resize, self.crop_pct = resize
        self.calls = 0

    def __call__(self, idx: np.ndarray, size: int, *, train: bool, tta: bool = False, mirror: bool = False):
        """A loader over rows ``idx``: training augmentations (``train``), TTA's milder random ones
        (``tta``), or the plain validation transform, mirrored with ``mirror``."""
        import torch

        from .data import ImageDataset, build_transforms

        self.calls += 1  # each loader draws its own augmentations, the same ones in every identical run
        tf = build_transforms(size, self.mean, self.std, train=train or tta, resize=self.resize, crop_pct=self.crop_pct,
                              flip=self.cfg.flip, mirror=mirror,
                              strength=self.cfg.aug if train else min(self.cfg.aug, 0.5),
                              seed=self.seed * 1000 + self.calls)
        ds = ImageDataset([self.images[i] for i in idx], None if self.y is None else self.y[idx], tf)
        workers = self.cfg.num_workers if self.cfg.num_workers is not None else default_workers()
        g = torch.Generator()
        g.manual_seed(self.seed)
        return torch.utils.data.DataLoader(
            ds, batch_size=self.cfg.batch_size if train else self.cfg.batch_size * 2, shuffle=train,
            drop_last=train and len(ds) > self.cfg.batch_size, num_workers=workers, generator=g,
            persistent_workers=workers > 0, pin_memory=False)


def tta_predict(learner: Any, loaders: Loaders, idx: np.ndarray, size: int, n: int,
                 heads: list[Head]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Plain predictions and, with ``n`` > 0, fastai's TTA: 0.75 x mean of ``n`` augmented passes
    + 0.25 x the plain pass (probabilities, or values for regression). When flips are on, the
    first augmented pass is the mirror image (deterministic: the view the probe was also fitted
    on), the others random crops and flips."""
    plain = split_outputs(learner.predict(loaders(idx, size, train=False)), heads)
    if n <= 0:
        return plain, None
    mirrored = int(loaders.cfg.flip)
    augmented = [split_outputs(learner.predict(loaders(idx, size, train=False, mirror=True)), heads)
                 for _ in range(mirrored)]
    augmented += [split_outputs(learner.predict(loaders(idx, size, train=False, tta=True)), heads)
                  for _ in range(n - mirrored)]
    tta = {k: 0.75 * np.mean([a[k] for a in augmented], axis=0) + 0.25 * plain[k] for k in plain}
    return plain, tta
