"""DataLoaders over the cached images at a given size, and test-time augmentation.

Every image's random augmentation is drawn from a seed of its own (the loader's seed, the epoch and
the image's row), so a run augments the same way whatever the number of DataLoader workers or DDP
processes: two processes with half the batch each see exactly the batches one process sees.

A loader's worker processes are stopped by :func:`stop_workers` as soon as it is done with (a prediction's
at once, a phase's training and validation loaders at the phase's end), not by the garbage collector.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..machine import Plan, default_batch_size
from .config import TrainConfig
from .distributed import Dist
from .model import Head, split_outputs


class ShardedBatches:
    """Batches of a shuffled epoch, ``batch_size`` rows each, of which this rank takes every
    ``world``-th (DistributedSampler's split, within each global batch). Yields lists of (position,
    epoch) keys; the epoch counts up at every pass. A last short batch is topped up from the start
    of the epoch's order so every rank gets the same number of rows."""

    def __init__(self, n: int, batch_size: int, *, seed: int, drop_last: bool, dist: Dist):
        self.n, self.batch_size, self.seed, self.drop_last, self.dist = n, batch_size, seed, drop_last, dist
        self.epoch = 0

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        import torch

        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n, generator=g).numpy()
        epoch, self.epoch = self.epoch, self.epoch + 1
        for b in range(len(self)):
            batch = order[b * self.batch_size:(b + 1) * self.batch_size]
            if len(batch) % self.dist.world:
                batch = np.concatenate([batch, np.resize(order, self.dist.world - len(batch) % self.dist.world)])
            yield [(int(k), epoch) for k in batch[self.dist.rank::self.dist.world]]


class InOrder:
    """Batches of rows 0..n-1 in order (validation, test, TTA), as (position, 0) keys."""

    def __init__(self, n: int, batch_size: int):
        self.n, self.batch_size = n, batch_size

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for s in range(0, self.n, self.batch_size):
            yield [(k, 0) for k in range(s, min(s + self.batch_size, self.n))]


class Loaders:
    """Builds DataLoaders over the cached images (a list in memory, or a packed file streamed from
    disk) at a given size. With DDP each rank's loader holds its share of every batch."""

    def __init__(self, images: Sequence[np.ndarray], y: np.ndarray | None, cfg: TrainConfig, mean: tuple,
                 std: tuple, resize: tuple[str, float], seed: int, dist: Dist | None = None,
                 plan: Plan | None = None):
        """``resize``: (method, crop_pct) for validation and test images, from ``resize_policy``;
        ``plan``: the machine's DataLoader workers and pinned memory (none without a plan)."""
        self.images, self.y, self.cfg, self.mean, self.std, self.seed = images, y, cfg, mean, std, seed
        self.resize, self.crop_pct = resize
        self.dist = dist or Dist()
        self.workers, self.pin_memory = (plan.workers, plan.pin_memory) if plan else (0, False)
        self.batch_size = cfg.batch_size or (plan.batch_size if plan else default_batch_size(None))
        self.calls = 0
        self.opened: list[Any] = []  # the loaders with worker processes handed out and not yet closed

    def __call__(self, idx: np.ndarray, size: int, *, train: bool, tta: bool = False, mirror: bool = False):
        """A loader over rows ``idx``: training augmentations (``train``), TTA's milder random ones
        (``tta``), or the plain validation transform, mirrored with ``mirror``. With DDP a training
        loader yields this rank's share of each global batch, any other loader this rank's rows
        (``dist.shard(idx)``): put the predictions together with :meth:`predict`."""
        import torch

        from .data import ImageDataset, build_transforms

        self.calls += 1  # each loader draws its own augmentations, the same ones in every identical run
        tf = build_transforms(size, self.mean, self.std, train=train or tta, resize=self.resize, crop_pct=self.crop_pct,
                              flip=self.cfg.flip, mirror=mirror, policy=self.cfg.policy if train else "basic",
                              strength=self.cfg.aug if train else min(self.cfg.aug, 0.5),
                              seed=self.seed * 1000 + self.calls)
        rows = np.asarray(idx) if train else self.dist.shard(np.asarray(idx))
        ds: Any = ImageDataset(self.images, rows, None if self.y is None else self.y[rows], tf,
                          seed=self.seed * 1000 + self.calls)
        if train:
            batches: Any = ShardedBatches(len(rows), self.batch_size, seed=self.seed,
                                          drop_last=len(rows) > self.batch_size, dist=self.dist)
        else:
            batches = InOrder(len(rows), self.batch_size * 2)
        # the batch sampler yields lists of (row, epoch) keys, which ImageDataset takes (map-style)
        loader = torch.utils.data.DataLoader(ds, batch_sampler=batches, num_workers=self.workers,
                                             persistent_workers=self.workers > 0, pin_memory=self.pin_memory)
        if self.workers > 0:
            self.opened.append(loader)
        return loader

    def predict(self, learner: Any, idx: np.ndarray, size: int, **kw: Any) -> np.ndarray:
        """Raw outputs for rows ``idx`` in order: each rank predicts its share, then they are gathered."""
        loader = self(idx, size, train=False, **kw)
        try:
            raw = learner.predict(loader)
        finally:
            self.close(loader)
        return self.dist.gather_rows(raw, len(idx))

    def close(self, *loaders: Any) -> None:
        """Stop the worker processes of ``loaders`` (of every loader handed out, when none is named)."""
        for loader in loaders or list(self.opened):
            stop_workers(loader)
            self.opened = [o for o in self.opened if o is not loader]


def stop_workers(loader: Any) -> None:
    """Stop a DataLoader's worker processes now, and wait until the threads that fed them indices
    have ended. Left to the garbage collector, those threads end while the next loader forks its
    workers, and before Python 3.12 a fork while another thread ends can hang the child for ever
    (CPython gh-112275; seen once in kk's tests, a prediction's worker that never started)."""
    it = getattr(loader, "_iterator", None)  # a persistent loader's workers (torch's private state)
    if it is None or not hasattr(it, "_shutdown_workers"):
        return
    queues = list(getattr(it, "_index_queues", ()))
    it._shutdown_workers()
    for q in queues:
        feeder = getattr(q, "_thread", None)  # multiprocessing.Queue's feeder thread, started by its first put
        if feeder is not None:
            feeder.join(timeout=10)
    loader._iterator = None


def tta_predict(learner: Any, loaders: Loaders, idx: np.ndarray, size: int, n: int,
                 heads: list[Head]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Plain predictions and, with ``n`` > 0, fastai's TTA: 0.75 x mean of ``n`` augmented passes
    + 0.25 x the plain pass (probabilities, or values for regression). When flips are on, the
    first augmented pass is the mirror image (deterministic: the view the probe was also fitted
    on), the others random crops and flips."""
    plain = split_outputs(loaders.predict(learner, idx, size), heads)
    if n <= 0:
        return plain, None
    mirrored = int(loaders.cfg.flip)
    augmented = [split_outputs(loaders.predict(learner, idx, size, mirror=True), heads) for _ in range(mirrored)]
    augmented += [split_outputs(loaders.predict(learner, idx, size, tta=True), heads) for _ in range(n - mirrored)]
    tta = {k: 0.75 * np.mean([a[k] for a in augmented], axis=0) + 0.25 * plain[k] for k in plain}
    return plain, tta
