"""The linear probe: the classifier fitted alone on frozen features before fine-tuning (LP-FT,
Kumar et al. 2022), each head's regularisation chosen by an inner cross-validation.

A classifier of one linear layer holds independent problems, one a head (its rows of the layer), so
each head is fitted on its own: one L-BFGS over all of them shares one step budget and moves at the
pace of the hardest, so a submitted head's probe, and the C its inner CV chooses, would change when
an auxiliary head joins (``tests/test_regularisation.py``; on real features:
``bench/probe_heads.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .learner import head_loss

PROBE_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # the linear probe's C, chosen by inner cross-validation


def fit_head(learner: Any, feats: torch.Tensor, y: torch.Tensor, l2: float | list[float] | None = None,
             max_iter: int = 200, head: Any = None) -> float:
    """Fit the classifier alone on frozen features to the optimum of each head's loss (weighted) +
    ``l2`` x ||W||^2 (full batch, L-BFGS; scikit-learn's multinomial LogisticRegression with C=1 when
    ``l2`` is None, C=c with ``l2`` = 1 / (2 n c)); a list: one ``l2`` a head. One linear layer:
    each head's rows on their own; another classifier: all of it at once, with one ``l2``. Seconds
    instead of an epoch through the body, and the fine-tuning that follows starts from the best head
    the features allow. ``head``: fit this copy instead of the model's own classifier. Returns the
    final training loss (the weighted sum)."""
    head = learner.model.get_classifier() if head is None else head
    heads = learner.heads
    l2s = l2 if isinstance(l2, list) else [1.0 / (2 * len(feats)) if l2 is None else l2] * len(heads)
    feats, y = feats.to(learner.device), y.to(learner.device)
    if isinstance(head, torch.nn.Linear):
        for i, (h, v) in enumerate(zip(heads, l2s, strict=True)):
            _fit_rows(head, h, feats, y[:, i], v, max_iter)
    else:
        if len(set(l2s)) > 1:
            raise ValueError("one l2 a head needs a classifier of one linear layer")
        weights = [p for n, p in head.named_parameters() if n.endswith("weight")]
        head.train()
        _lbfgs(head.parameters(), lambda: learner.loss(head(feats), y, smoothing=0.0)
               + l2s[0] * sum((w ** 2).sum() for w in weights), max_iter)
    with torch.no_grad():
        return float(learner.loss(head(feats), y, smoothing=0.0))


def _fit_rows(layer: torch.nn.Linear, h: Any, feats: torch.Tensor, t: torch.Tensor, l2: float, max_iter: int) -> None:
    """Head ``h``'s rows of one linear layer fitted on their own (a logistic regression: the plain
    loss; label smoothing is fine-tuning's), written back into the layer."""
    w = layer.weight[h.start:h.stop].detach().clone().requires_grad_()
    b = layer.bias[h.start:h.stop].detach().clone().requires_grad_() if layer.bias is not None else None
    alone = replace(h, start=0)
    _lbfgs([w] + ([b] if b is not None else []),
           lambda: h.weight * head_loss(alone, F.linear(feats, w, b), t, 0.0) + l2 * (w ** 2).sum(), max_iter)
    with torch.no_grad():
        layer.weight[h.start:h.stop] = w
        if b is not None:
            layer.bias[h.start:h.stop] = b


def _lbfgs(params: Iterable[torch.Tensor], objective: Callable[[], torch.Tensor], max_iter: int) -> None:
    opt = torch.optim.LBFGS(list(params), lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = objective()
        loss.backward()
        return loss

    opt.step(closure)


def choose_c(learner: Any, feats: torch.Tensor, y: torch.Tensor, ids: torch.Tensor,
             grid: tuple[float, ...] = PROBE_C_GRID, k: int = 3) -> tuple[list[float], dict[float, np.ndarray]]:
    """The probe's inverse regularisation C (scikit-learn's meaning) with the lowest held-out loss
    in a ``k``-fold cross-validation over the training images (an image's views stay together):
    C=1 fits 800 flower photos to a training loss of 0.005 and is over-confident on new ones.
    Each head gets its own C when the classifier is one linear layer (the heads are then
    independent problems: fashion-products' subCategory wants C=0.3, its baseColour 0.03, and
    one shared C cost the probe 0.006 accuracy on subCategory); else one C for all.
    Returns (C of each head, held-out loss of each head for each C)."""
    fold = ids % k
    losses: dict[float, np.ndarray] = {}
    for c in grid:
        total = np.zeros(len(learner.heads))
        for f in range(k):
            tr, va = fold != f, fold == f
            head = copy.deepcopy(learner.model.get_classifier())
            fit_head(learner, feats[tr], y[tr], l2=1.0 / (2 * int(tr.sum()) * c), head=head)
            with torch.no_grad():
                parts = learner.head_losses(head(feats[va].to(learner.device)), y[va].to(learner.device),
                                            smoothing=0.0)
            total += np.array([float(p) for p in parts]) * int(va.sum())
        losses[c] = total / len(feats)
    if isinstance(learner.model.get_classifier(), torch.nn.Linear):
        return [min(grid, key=lambda c: losses[c][i]) for i in range(len(learner.heads))], losses
    w = np.array([h.weight for h in learner.heads])
    return [min(grid, key=lambda c: float(w @ losses[c]))] * len(learner.heads), losses
