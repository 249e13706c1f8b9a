"""AdamW under a one-cycle schedule, in plain tensor arithmetic, for the tabular network.

The same update as ``torch.optim.AdamW`` stepped by ``torch.optim.lr_scheduler.OneCycleLR`` (cosine
warm-up from ``max_lr / 25`` over ``pct_start`` of the steps, cosine decay to ``max_lr / 25e4``, and
Adam's first beta cycled from 0.95 down to 0.85 and back), checked against them in the tests.
Why not torch's own: creating any ``torch.optim`` optimizer imports torch's compiler (``torch._dynamo``),
1.2 to 1.7 s a process on this machine's 2 cores, more than the network trains on a 1,000-row
table; ``kk baseline`` pays it once per run. Here nothing beyond ``torch`` itself is imported.
Each operation of the update is one ``torch._foreach`` call over every tensor (the same arithmetic
as a loop over them, bit for bit): on a small table the step's cost is Python's calls, and the fit
takes 0.84-0.96 of the loop's time (``bench/nn_optimizer.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def one_cycle(step: int, total: int, max_lr: float, pct_start: float = 0.25, div: float = 25.0,
              final_div: float = 1e4, momentum: tuple[float, float] = (0.85, 0.95)) -> tuple[float, float]:
    """The learning rate and Adam's first beta at optimizer step ``step`` (0-based) of ``total``,
    as ``OneCycleLR`` sets them (``anneal_strategy="cos"``, ``cycle_momentum=True``).

    >>> [round(x, 4) for x in one_cycle(0, 100, 1e-2)], [round(x, 4) for x in one_cycle(24, 100, 1e-2)]
    ([0.0004, 0.95], [0.01, 0.85])
    """
    initial, lowest = max_lr / div, max_lr / div / final_div
    end_up = float(pct_start * total) - 1
    if step <= end_up:
        pct, lr_ends, beta_ends = step / end_up, (initial, max_lr), (momentum[1], momentum[0])
    else:
        pct, lr_ends, beta_ends = (step - end_up) / (total - 1 - end_up), (max_lr, lowest), momentum

    def cos(start: float, end: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    return cos(*lr_ends), cos(*beta_ends)


class OneCycleAdamW:
    """``torch.optim.AdamW`` (``betas[1]``, ``eps``, decoupled ``weight_decay``) with the learning
    rate and first beta of :func:`one_cycle` over ``total`` steps. ``step()`` after ``backward()``."""

    def __init__(self, params: Iterable[Any], *, max_lr: float, total: int, weight_decay: float = 1e-2,
                 pct_start: float = 0.25, beta2: float = 0.999, eps: float = 1e-8):
        import torch

        self.params = [p for p in params if p.requires_grad]
        self.max_lr, self.total, self.pct_start = max_lr, total, pct_start
        self.weight_decay, self.beta2, self.eps = weight_decay, beta2, eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        import torch

        lr, beta1 = one_cycle(min(self.steps, self.total - 1), self.total, self.max_lr, self.pct_start)
        self.steps += 1
        correction1, correction2 = 1 - beta1**self.steps, math.sqrt(1 - self.beta2**self.steps)
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params, grads = [self.params[i] for i in live], [self.params[i].grad for i in live]
        m, v = [self.exp_avg[i] for i in live], [self.exp_avg_sq[i] for i in live]
        with torch.no_grad():  # each op over every tensor in one call: the same arithmetic, a few calls a step
            torch._foreach_mul_(params, 1 - lr * self.weight_decay)
            torch._foreach_lerp_(m, grads, 1 - beta1)
            torch._foreach_mul_(v, self.beta2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - self.beta2)
            denom = torch._foreach_sqrt(v)
            torch._foreach_div_(denom, correction2)
            torch._foreach_add_(denom, self.eps)
            torch._foreach_addcdiv_(params, m, denom, value=-lr / correction1)
