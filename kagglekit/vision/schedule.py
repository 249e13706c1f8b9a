"""Learning-rate schedules: fastai's one-cycle schedule (stepped per optimizer step) and the
learning-rate finder's "valley" suggestion."""

from __future__ import annotations

import math

import numpy as np
import torch


def _cos(start: float, end: float, t: float) -> float:
    return start + (1 - math.cos(math.pi * t)) * (end - start) / 2


class OneCycle:
    """fastai's ``fit_one_cycle`` schedule, stepped once per optimizer step.

    Each parameter group's learning rate rises from max/``div`` to its max over the first
    ``pct_start`` of the steps and anneals to max/``div_final`` (cosine both ways); Adam's beta1
    (momentum) moves the other way, 0.95 -> 0.85 -> 0.95. Groups keep their own maxima
    (discriminative learning rates). The state is one integer, so checkpoints hold no code.
    """

    def __init__(self, opt: torch.optim.Optimizer, total_steps: int, *, pct_start: float = 0.25,
                 div: float = 25.0, div_final: float = 1e5, moms: tuple[float, float, float] = (0.95, 0.85, 0.95)):
        self.opt, self.total, self.pct, self.div, self.div_final, self.moms = \
            opt, max(1, total_steps), pct_start, div, div_final, moms
        self.max_lrs = [g["lr"] for g in opt.param_groups]
        self.step_count = 0
        self._apply()

    def factors(self, step: int) -> tuple[float, float]:
        """(learning-rate factor of the max, momentum) at ``step``."""
        pos = min(step / self.total, 1.0)
        lo, mid, hi = self.moms
        if pos < self.pct:
            t = pos / self.pct
            return _cos(1 / self.div, 1.0, t), _cos(lo, mid, t)
        t = (pos - self.pct) / (1 - self.pct) if self.pct < 1 else 1.0
        return _cos(1.0, 1 / self.div_final, t), _cos(mid, hi, t)

    def _apply(self) -> None:
        factor, mom = self.factors(self.step_count)
        for g, max_lr in zip(self.opt.param_groups, self.max_lrs, strict=True):
            g["lr"] = max_lr * factor
            if "betas" in g:
                g["betas"] = (mom, g["betas"][1])

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def state_dict(self) -> dict[str, int]:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step_count = int(state["step_count"])
        self._apply()


def valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fastai's ``valley``: the longest stretch of decreasing loss; a learning rate two thirds of the
    way down it (roughly where the loss falls fastest).

    The plateau before the loss starts to fall (within 1% of the first loss) is left out: with kk's
    zero-initialised head the sweep starts exactly at ln C and drifts down by rounding alone, which
    fastai's rule counts as 'decreasing' and so suggested 6.7e-5 on dogs vs cats, where the loss
    only falls from 1e-3 to 1e-1."""
    below = np.flatnonzero(np.asarray(losses) < 0.99 * losses[0]) if len(losses) else np.array([], int)
    skip = max(0, int(below[0]) - 1) if len(below) else 0
    if skip and len(losses) - skip >= 3:
        lrs, losses = lrs[skip:], losses[skip:]
    n = len(losses)
    if n < 3:
        return float(lrs[0]) if n else 1e-3
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
        if lds[max_end] < lds[i]:
            max_end = i
            max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[min(idx, n - 1)])
