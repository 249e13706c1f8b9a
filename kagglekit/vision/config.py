"""``kk train``'s configuration: how the TrainConfig (``kagglekit.trainconfig``) is resolved from the
competition's ``[train]`` table and flags, the default image size, the heads, and the phases of
fastai's fine-tuning."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, SpecError
from ..machine import Plan
from ..predictions import encode_target, target_info
from ..runs import Run
from ..spec import Competition
from ..trainconfig import TrainConfig
from .model import Head


@dataclass
class TrainResult:
    run: Run
    cv: float
    cv_no_tta: float | None
    fold_scores: list[float]
    folds_done: list[int]
    seconds: float
    images_per_second: float
    submission: Path | None = None
    holdout: float | None = None
    per_target: dict[str, float] = field(default_factory=dict)
    weights_source: str = ""
    reused: bool = False  # an identical finished run was returned instead of training again
    written_here: bool = True  # False on nodes other than node 0 of a --nnodes run: node 0 wrote the run

    def __repr__(self) -> str:  # a notebook's cell output: the summary, not a dataclass dump
        tta = f" (no TTA {self.cv_no_tta:.4f})" if self.cv_no_tta is not None else ""
        return (f"<TrainResult {self.run.id}: CV {self.cv:.4f}{tta} over folds {self.folds_done}, "
                f"{self.images_per_second:.1f} img/s, {self.seconds:.0f}s; submission {self.submission}>")


def config_of(run_config: dict[str, Any]) -> TrainConfig:
    """The TrainConfig a run was made with, from its config.json (lists back to tuples; entries
    that are not TrainConfig's, such as the fingerprint, left out)."""
    values: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in run_config.items()
                              if k in TrainConfig.__dataclass_fields__}
    return TrainConfig(**values)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_config(comp: Competition, config: TrainConfig | None, overrides: dict[str, Any]) -> TrainConfig:
    """The run's configuration: an explicit ``config`` as given, else TrainConfig's defaults under
    the competition's ``[train]`` table; ``overrides`` (flags, recipe stages) on top of either."""
    base = asdict(config) if config is not None else {**asdict(TrainConfig()), **comp.train}
    values = {**base, **overrides}
    for k in ("sizes", "folds"):
        if isinstance(values.get(k), list):
            values[k] = tuple(values[k])
    return TrainConfig(**values)


def default_size(paths: list[str], cap: int = 224, sample: int = 200) -> int:
    """The training size when none is given: the median shorter side of (up to ``sample`` of) the
    training images, at most ``cap``. 28-px digits train at 28 px, not up-sampled to 224; photos
    train at 224, the size ImageNet weights were trained at. Reads file headers only."""
    from PIL import Image

    step = max(1, len(paths) // sample)
    sides = []
    for p in paths[::step]:
        try:
            with Image.open(p) as im:
                sides.append(min(im.size))
        except OSError:
            continue
    return int(min(cap, np.median(sides))) if sides else cap


def resize_method(cfg: TrainConfig, comp: Competition) -> str:
    """The resize method asked for: the flag, else the spec's ``[image] resize``, else auto."""
    return cfg.resize or (comp.image.resize if comp.image else "auto")


def cache_side(cfg: TrainConfig, comp: Competition) -> int:
    """Shorter side of the cached images: the largest size, or more when a pretrained model's
    centre crop needs the margin around it (224 / 0.875 = 256)."""
    from .model import resize_policy

    assert cfg.sizes is not None
    _, crop_pct = resize_policy(resize_method(cfg, comp), cfg.arch, cfg.pretrained is not False)
    return max(max(cfg.sizes), round(max(cfg.sizes) / crop_pct))


def machine_plan(cfg: TrainConfig, processes: int = 1, n_train: int | None = None) -> Plan:
    """How this machine runs ``cfg`` (device, workers, precision, batch size...): kagglekit.machine's
    rules applied to what this machine reports and to ``n_train`` (a fold's training images), the
    flags given kept."""
    from ..machine import plan, read_machine

    return plan(read_machine(), device=cfg.device, processes=processes, workers=cfg.num_workers,
                precision=cfg.precision, batch_size=cfg.batch_size, size=max(cfg.sizes or (224,)), n_train=n_train)


def make_heads(comp: Competition, train: pd.DataFrame) -> tuple[list[Head], np.ndarray]:
    """One slice of the model's outputs per target, and the (n, targets) target matrix. A regression
    is fitted standardised; under RMSLE in log1p space first, as the tabular families fit it. An
    auxiliary target's missing label is NaN: its head's loss leaves that image out."""
    info = target_info(comp, train)
    heads, cols, start = [], [], 0
    for t in comp.targets:
        if t.task == "multilabel":
            raise SpecError(f"{comp.spec_file}: target {t.name!r} is multilabel, not yet supported by kk train")
        classes = info[t.name]["classes"]
        y = encode_target(train[t.name], classes).astype(np.float32)
        y[train[t.name].isna().to_numpy()] = np.nan  # an auxiliary label left out of its head's loss
        if classes is None:
            log = comp.metric == "rmsle"
            if log and (y < 0).any():
                raise DataError(f"{comp.name}: target {t.name!r} has negative values, which RMSLE cannot score")
            y = np.log1p(y) if log else y
            mean, std = float(np.nanmean(y)), float(np.nanstd(y) or 1.0)
            heads.append(Head(t.name, start, 1, None, mean, std, t.submit, t.weight, log))
            y = (y - mean) / std
            start += 1
        else:
            heads.append(Head(t.name, start, len(classes), tuple(classes), submit=t.submit, weight=t.weight))
            start += len(classes)
        cols.append(y)
    return heads, np.column_stack(cols).astype(np.float32)


def default_epochs(n_train: int) -> int:
    """Fine-tuning epochs after the probe when none are given, by the training images of a fold:
    small sets stay probe-first, larger sets train longer. Evidence (bench/transfer_dogs_cats.py,
    bench/transfer_flowers.py, tf_efficientnet_lite0 at 224 px): 400 dogs and cats a fold, where the
    probe alone is at 0.99, 1 epoch (0.992 OOF accuracy; 2 epochs 0.990); 800 flower photos a fold,
    where it is at 0.91, 4 epochs."""
    if n_train < 600:
        return 1
    return int(min(10, max(2, round(n_train / 200))))


def phases(cfg: TrainConfig, pretrained: bool) -> list[tuple[str, int, int]]:
    """(kind, size, epochs) per one-cycle phase: a frozen epoch first for pretrained models, then
    the progressive-resizing stages, epochs split across them."""
    assert cfg.sizes is not None and cfg.epochs is not None
    n = len(cfg.sizes)
    per = [cfg.epochs // n + (1 if i < cfg.epochs % n else 0) for i in range(n)]
    phases = []
    if pretrained and cfg.probe:
        phases.append(("probe", cfg.sizes[0], 1))
    if pretrained and cfg.freeze_epochs > 0:
        phases.append(("frozen", cfg.sizes[0], cfg.freeze_epochs))
    return phases + [("stage", s, e) for s, e in zip(cfg.sizes, per, strict=True) if e > 0]


def schedule(kind: str, pretrained: bool) -> dict[str, float]:
    """fastai's one-cycle settings: ``fine_tune`` trains the head with pct_start 0.99, then the whole
    model with pct_start 0.3 and div 5; ``fit_one_cycle`` from scratch uses 0.25 and 25."""
    if kind == "frozen":
        return {"pct_start": 0.99, "div": 25.0}
    return {"pct_start": 0.3, "div": 5.0} if pretrained else {"pct_start": 0.25, "div": 25.0}


def search_space(trial: Any, max_epochs: int = 6) -> dict[str, Any]:
    """What ``kk tune`` searches for an image model: learning rate, epochs, augmentation strength."""
    return {"lr": trial.suggest_float("lr", 1e-4, 3e-2, log=True),
            "epochs": trial.suggest_int("epochs", 1, max_epochs),
            "aug": trial.suggest_float("aug", 0.0, 1.5)}
