"""Pretrained embeddings of a competition's images: what ``kk check`` compares train and test on."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data import CompetitionData
from ..workspace import Workspace
from .config import cache_side, machine_plan, resolve_config


def image_embeddings(data: CompetitionData, ws: Workspace, *, arch: str | None = None,
                     weights: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Pooled pre-logits features of every train and test image under the model's own evaluation
    transform, from local weights (``weights`` or ``KK_WEIGHTS_DIR``; ``arch`` defaults to the
    spec's ``[train] arch``). Returns (train, test, source of the weights)."""
    from .data import load_images
    from .learner import make_learner
    from .loaders import Loaders
    from .model import create_vision_model, model_stats, resize_policy

    comp = data.comp
    overrides: dict[str, Any] = {"pretrained": True, "weights": weights}
    if arch:
        overrides["arch"] = arch
    cfg = resolve_config(comp, None, overrides)
    cfg.sizes = (cfg.sizes or (224,))[-1:]
    model, source = create_vision_model(cfg.arch, 1, pretrained=True, weights=cfg.weights)
    run_plan = machine_plan(cfg)
    learner = make_learner(model, [], run_plan)
    side = cache_side(cfg, comp)
    cache = ws.cache_dir / comp.name / "images"
    resize = resize_policy("auto", cfg.arch, True)
    out = []
    for frame in (data.train, data.test):
        images = [im for im in load_images(frame["path"].tolist(), side, cache) if im is not None]  # none skipped
        loaders = Loaders(images, np.zeros((len(images), 1), np.float32), cfg, *model_stats(model), resize,
                          cfg.seed, plan=run_plan)
        feats, _, _ = learner.features(loaders(np.arange(len(images)), cfg.sizes[0], train=False))  # no gradients
        loaders.close()
        out.append(feats.numpy())
    return out[0], out[1], source
