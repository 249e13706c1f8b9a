"""Several devices with torch.distributed (DDP): one process per device, launched by torchrun.

``kk train --devices N`` (or ``kk.train(comp, devices=N)``) starts ``python -m torch.distributed.run
--standalone --nproc_per_node N -m kagglekit.vision.launch ...``; each process trains every fold on
its shard of each global batch (NCCL on GPUs, gloo on CPU), DDP all-reduces the gradients, the
predictions of every rank are gathered, and only rank 0 writes the run. The global batch
(``batch_size`` x ``accum``), the learning rate and the schedule mean what they mean in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Dist:
    """This process's place among the training processes (rank 0 of 1 without DDP)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj: Any) -> list[Any]:
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This rank's rows of ``idx`` for prediction: every ``world``-th row from ``rank``."""
        return idx[self.rank::self.world]

    def gather_rows(self, local: np.ndarray, n: int) -> np.ndarray:
        """The ``n`` rows of every rank's :meth:`shard` put back in their original order."""
        if not self.active:
            return local
        parts = self.all_gather(local)
        out = np.empty((n, *local.shape[1:]), local.dtype)
        for r, part in enumerate(parts):
            out[r::self.world] = part
        return out

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks."""
        if not self.active:
            return list(values)
        return [float(sum(v)) for v in zip(*self.all_gather(values), strict=True)]


def sync_batchnorm(world: int, device: str, has_batchnorm: bool, frozen_statistics: bool) -> bool:
    """Whether batch norm should normalise over the whole global batch (SyncBatchNorm) instead of
    each process's share: with several processes, a model with batch norm whose statistics train
    (from scratch, or ``frozen_bn_stats`` off). torch's SyncBatchNorm runs on GPUs only, so on CPUs
    (gloo) each process keeps normalising its own share."""
    return world > 1 and device == "cuda" and has_batchnorm and not frozen_statistics


def launched() -> bool:
    """Whether this process was started by torchrun (as one of several)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: str) -> Dist:
    """Join the process group torchrun set up (NCCL when training on GPUs, gloo otherwise) and
    return this process's place; on GPUs, process ``local_rank`` uses GPU ``local_rank``."""
    if not launched():
        return Dist()
    import torch
    import torch.distributed as dist

    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Dist(rank, world, local)


def shutdown() -> None:
    if launched():
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
