"""``kk lr-find``: fastai's learning-rate finder on fold 0's training rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data import CompetitionData, load_data
from ..errors import KKError, SpecError
from ..folds import Folds, get_folds
from ..spec import Competition
from ..workspace import Workspace, resolve
from .config import (
    TrainConfig,
    cache_side,
    default_size,
    machine_plan,
    make_heads,
    resize_method,
    resolve_config,
    seed_everything,
)
from .loaders import Loaders
from .model import Head, create_vision_model, model_stats, resize_policy, set_body_trainable


def auto_lr(cfg: TrainConfig, data: CompetitionData, heads: list[Head], y: np.ndarray, images: list[np.ndarray],
             folds: Folds, out_dir: Path) -> float:
    lrs, losses, suggestion, _ = lr_find_arrays(cfg, data, heads, y, images, folds)
    from .plots import lr_find_png

    lr_find_png(lrs, losses, suggestion, out_dir / "lr_find.png", cfg.arch)
    return suggestion


def lr_find_arrays(cfg: TrainConfig, data: CompetitionData, heads: list[Head], y: np.ndarray,
                   images: list[np.ndarray], folds: Folds) -> tuple[np.ndarray, np.ndarray, float, str]:
    """Run the learning-rate finder on fold 0's training rows at the first size."""
    from .learner import make_learner

    seed_everything(cfg.seed)
    model, source = create_vision_model(cfg.arch, heads[-1].stop, pretrained=cfg.pretrained, weights=cfg.weights)
    if source != "random init":
        set_body_trainable(model, False)  # as fine_tune's first phase trains: body frozen
    mean, std = model_stats(model)
    run_plan = machine_plan(cfg, n_train=int((folds.fold != 0).sum()))  # the batch kk train would use
    learner = make_learner(model, heads, run_plan)
    resize = resize_policy(resize_method(cfg, data.comp), cfg.arch, source != "random init")
    assert cfg.sizes is not None
    loaders = Loaders(images, y, cfg, mean, std, resize, cfg.seed, plan=run_plan)
    loader = loaders(np.flatnonzero(folds.fold != 0), cfg.sizes[0], train=True)
    lrs, losses, suggestion = learner.lr_find(loader, weight_decay=cfg.weight_decay)
    loaders.close()
    return lrs, losses, suggestion, source


def lr_find(competition: str | Competition, config: TrainConfig | None = None, *, workspace: Workspace | None = None,
            **overrides: Any) -> tuple[float, Path]:
    """``kk lr-find``: the suggestion and the path of the loss-vs-lr plot."""
    from datetime import datetime

    from .data import load_images
    from .plots import lr_find_png

    ws, comp = resolve(competition, workspace)
    if comp.kind != "image":
        raise SpecError(f"{comp.name} is a tabular competition: the learning-rate finder is for 'kk train'")
    cfg = resolve_config(comp, config, overrides)
    data = load_data(comp, ws)
    if cfg.sizes is None:
        cfg.sizes = (default_size(data.train["path"].tolist()),)
    folds = get_folds(data, ws)
    heads, y = make_heads(comp, data.train)
    images = load_images(data.train["path"].tolist(), cache_side(cfg, comp), ws.cache_dir / comp.name / "images",
                         skip_bad=cfg.skip_bad_images)
    readable = [im for im in images if im is not None]
    if len(readable) < len(images):
        raise KKError("unreadable images were skipped; the learning-rate finder needs them all")
    lrs, losses, suggestion, _ = lr_find_arrays(cfg, data, heads, y, readable, folds)
    out = ws.runs_dir(comp.name) / "lr-find" / f"{datetime.now():%Y%m%d-%H%M%S}-{cfg.arch}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    lr_find_png(lrs, losses, suggestion, out, cfg.arch)
    return suggestion, out
