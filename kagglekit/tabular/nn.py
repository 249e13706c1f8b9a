"""The neural family for tables (``--model nn``, needs torch): fastai's tabular model.

Each categorical column gets an entity embedding (fastai's size rule, ``emb_size``) over its codes,
0 being the missing or unseen level; the continuous columns (numerics, ``<col>_na`` indicators,
date parts) are clipped to the training fold's range and standardised. Embeddings and continuous
inputs go through two hidden layers (linear, ReLU, batch norm, dropout) to one output per class, or
one standardised value for regression (fitted in the metric's space, log1p for RMSLE, like the
trees). Training is AdamW under a one-cycle schedule (``_onecycle``: torch's update, without the
compiler that creating a torch optimizer imports); after each epoch the validation fold's loss is
measured and the best epoch's weights are kept. Seeded and bounded to ``n_jobs`` threads.

Feature importance is permutation importance on up to 5,000 validation rows: how much the
validation loss grows when a column is shuffled.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import pandas as pd

from ..errors import OptionError
from ._base import TabularModel, auto_n_jobs, is_large, register_model
from ._onecycle import OneCycleAdamW


def emb_size(n_levels: int) -> int:
    """fastai's rule for an embedding's width: ``min(600, round(1.6 * n ** 0.56))``.

    >>> emb_size(3), emb_size(100), emb_size(100_000)
    (3, 21, 600)
    """
    return int(min(600, round(1.6 * n_levels**0.56)))


def torch_available() -> bool:
    """Whether torch is installed here (the nn family needs it; the others do not). Not imported:
    ``kk baseline`` asks this before it trains anything."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _network(cards: list[int], n_cont: int, n_out: int, layers: list[int], dropout: float, emb_dropout: float):
    import torch
    from torch import nn

    class TabularNet(nn.Module):
        """fastai's ``TabularModel``: embeddings + batch-normed continuous inputs, then ``layers``."""

        def __init__(self) -> None:
            super().__init__()
            self.embeds = nn.ModuleList([nn.Embedding(c, emb_size(c)) for c in cards])
            self.emb_drop = nn.Dropout(emb_dropout)
            self.bn_cont = nn.BatchNorm1d(n_cont) if n_cont else None
            sizes = [sum(emb_size(c) for c in cards) + n_cont, *layers]
            blocks: list[nn.Module] = []
            for a, b in zip(sizes[:-1], sizes[1:], strict=True):
                blocks += [nn.Linear(a, b, bias=False), nn.ReLU(inplace=True), nn.BatchNorm1d(b), nn.Dropout(dropout)]
            self.body = nn.Sequential(*blocks, nn.Linear(sizes[-1], n_out))

        def forward(self, x_cat: torch.Tensor, x_cont: torch.Tensor) -> torch.Tensor:
            parts = [self.emb_drop(torch.cat([e(x_cat[:, i]) for i, e in enumerate(self.embeds)], 1))] \
                if self.embeds else []
            if self.bn_cont is not None:
                parts.append(self.bn_cont(x_cont))
            return self.body(torch.cat(parts, 1))

    return TabularNet()


@register_model("nn")
class TabularNNModel(TabularModel):
    """fastai's tabular model in plain torch (see the module docstring). Parameters: ``layers``
    (hidden widths), ``dropout``, ``emb_dropout``, ``epochs``, ``lr`` (the one-cycle peak),
    ``weight_decay``, ``batch_size``. On a large table (``is_large``) the batch is 1,024 and the
    epochs 8; below 5,000 rows the batch is 64."""

    fold_cost = 5.7  # seconds a fold (TabularModel.fold_cost)
    fold_setup = "torch"  # ~2 s to import in a fold worker (TabularModel.fold_setup)
    defaults = {"layers": [200, 100], "dropout": 0.1, "emb_dropout": 0.0, "epochs": 20, "lr": 1e-2,
                "weight_decay": 1e-2, "batch_size": 256}

    def defaults_for(self, task: str, n_rows: int | None = None) -> dict[str, Any]:
        d = dict(self.defaults)
        if is_large(n_rows):
            d.update(batch_size=1024, epochs=8)
        elif n_rows is not None and n_rows < 5_000:
            d["batch_size"] = 64  # enough steps per epoch: on 300 rows, 64 gave RMSLE 0.215 where 128 gave 0.238
        return d

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_valid: pd.DataFrame | None = None,
            y_valid: np.ndarray | None = None, categorical: tuple[str, ...] = ()) -> TabularNNModel:
        if not torch_available():
            raise OptionError("--model nn needs torch, which is not installed here: pip install torch "
                              "(or leave nn out: --model rf,lgbm,linear)")
        import torch

        p = self.resolved_params()
        torch.manual_seed(self.seed)
        torch.set_num_threads(auto_n_jobs(X, self.n_jobs))
        self.cats_ = [c for c in X.columns if c in categorical]
        self.conts_ = [c for c in X.columns if c not in categorical]
        cont = X[self.conts_].to_numpy(np.float64)
        self.lo_, self.hi_ = cont.min(0), cont.max(0)
        clipped = np.clip(cont, self.lo_, self.hi_)
        self.mean_, self.std_ = clipped.mean(0), clipped.std(0) + 1e-6
        cards = [int(X[c].max()) + 1 for c in self.cats_]
        self.y_mean_, self.y_std_ = (float(np.mean(y)), float(np.std(y)) + 1e-9) if self.task == "regression" \
            else (0.0, 1.0)
        n_out = 1 if self.task == "regression" else max(self.n_classes, 2)
        self.net_ = _network(cards, len(self.conts_), n_out, list(p["layers"]), float(p["dropout"]),
                             float(p["emb_dropout"]))
        train, valid = self._tensors(X, y), (self._tensors(X_valid, y_valid) if X_valid is not None else None)
        self.history_ = self._train(train, valid, p)
        self.best_iteration_ = int(np.argmin([v for _, v in self.history_]) + 1) if valid else int(p["epochs"])
        self.feature_importances_ = self._importance(X_valid, y_valid) \
            if X_valid is not None and y_valid is not None else np.zeros(X.shape[1])
        return self

    def _tensors(self, X: pd.DataFrame, y: np.ndarray | None = None) -> tuple:
        import torch

        cards = np.asarray([m.num_embeddings for m in self.net_.embeds], np.int64)
        x_cat = X[self.cats_].to_numpy(np.int64) if self.cats_ else np.zeros((len(X), 0), np.int64)
        x_cat = np.where((x_cat >= 0) & (x_cat < cards), x_cat, 0)  # a level the fold never had: 0, unseen
        cont = (np.clip(X[self.conts_].to_numpy(np.float64), self.lo_, self.hi_) - self.mean_) / self.std_
        out = [torch.from_numpy(x_cat), torch.from_numpy(cont.astype(np.float32))]
        if y is not None:
            yy = (np.asarray(y, np.float64) - self.y_mean_) / self.y_std_
            out.append(torch.from_numpy(yy.astype(np.float32)) if self.task == "regression"
                       else torch.from_numpy(np.array(y, np.int64)))
        return tuple(out)

    def _loss(self, out, target):  # noqa: ANN001, ANN202
        import torch.nn.functional as F

        if self.task == "regression":
            return F.mse_loss(out.squeeze(1), target)
        return F.cross_entropy(out, target)

    def _train(self, train: tuple, valid: tuple | None, p: dict[str, Any]) -> list[tuple[int, float]]:
        """One-cycle AdamW; the validation loss after each epoch; the best epoch's weights kept."""
        import torch

        n, bs, epochs = len(train[0]), int(p["batch_size"]), int(p["epochs"])
        bs = min(bs, n)
        steps = max(1, n // bs)  # the last partial batch is dropped: batch norm needs more than one row
        opt = OneCycleAdamW(self.net_.parameters(), max_lr=float(p["lr"]), total=epochs * steps,
                            weight_decay=float(p["weight_decay"]), pct_start=0.25)
        gen = torch.Generator().manual_seed(self.seed)
        history: list[tuple[int, float]] = []
        best, best_state, start = np.inf, None, time.perf_counter()
        for epoch in range(epochs):
            self.net_.train()
            order = torch.randperm(n, generator=gen)
            for i in range(steps):
                idx = order[i * bs:(i + 1) * bs]
                loss = self._loss(self.net_(train[0][idx], train[1][idx]), train[2][idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            if valid is not None:
                v = self._valid_loss(valid)
                history.append((epoch, v))
                if v < best:
                    best, best_state = v, copy.deepcopy(self.net_.state_dict())
            if self.time_limit and time.perf_counter() - start > self.time_limit:
                break
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        return history

    def _forward(self, x_cat, x_cont):  # noqa: ANN001, ANN202
        import torch

        self.net_.eval()
        with torch.no_grad():
            return torch.cat([self.net_(x_cat[i:i + 8192], x_cont[i:i + 8192]) for i in range(0, len(x_cat), 8192)])

    def _valid_loss(self, valid: tuple) -> float:
        return float(self._loss(self._forward(valid[0], valid[1]), valid[2]))

    def _importance(self, X: pd.DataFrame, y: np.ndarray) -> np.ndarray:
        """Permutation importance: the validation loss's growth with each column shuffled."""
        rng = np.random.default_rng(self.seed)
        rows = rng.permutation(len(X))[:5000]
        Xs, ys = X.iloc[rows], y[rows]
        base = self._valid_loss(self._tensors(Xs, ys))
        out = []
        for col in X.columns:
            shuffled = Xs.copy()
            shuffled[col] = rng.permutation(shuffled[col].to_numpy())
            out.append(max(0.0, self._valid_loss(self._tensors(shuffled, ys)) - base))
        return np.asarray(out)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        import torch

        out = self._forward(*self._tensors(X))
        if self.task == "regression":
            return out.squeeze(1).double().numpy() * self.y_std_ + self.y_mean_
        return torch.softmax(out.double(), 1).numpy()[:, : max(self.n_classes, 2)]

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "lr": trial.suggest_float("lr", 1e-3, 3e-2, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "weight_decay": trial.suggest_float("weight_decay", 1e-4, 1e-1, log=True),
        }
