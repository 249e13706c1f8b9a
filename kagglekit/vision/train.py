"""``kk train``: k-fold fine-tuning of a timm CNN into a run of the run store.

Per fold: (pretrained models) one frozen epoch training the head, then every stage of
progressive resizing as its own one-cycle schedule with discriminative learning rates; the best
epoch's weights are kept and predict the validation fold (OOF) and the test set, with and without
TTA. Each fold writes its predictions to ``fold_<k>/preds.npz`` as soon as it finishes, and a
checkpoint after every epoch, so ``--resume`` continues an interrupted run and ``kk merge``
assembles folds trained on different machines.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import CompetitionData, load_data
from ..errors import KKError, RunError, SpecError
from ..folds import Folds, get_folds
from ..runs import (
    Run,
    RunStore,
    RunWriter,
    encode_target,
    score_predictions,
    target_info,
    to_frame,
    write_json,
)
from ..spec import Competition
from ..submissions import submission_from_run
from ..workspace import Workspace
from .model import Head, create_vision_model, model_stats, set_body_trainable, split_outputs


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as the run's config)."""

    arch: str = "resnet18"
    epochs: int = 5
    sizes: tuple[int, ...] | None = None  # None: the images' own size, at most 224 (never up-sampled)
    batch_size: int = 32
    accum: int = 1
    lr: float | str = 2e-3  # or "auto": the learning-rate finder's suggestion
    lr_mult: float = 100.0  # body learning rate = lr / lr_mult after unfreezing (pretrained models)
    weight_decay: float = 0.01
    freeze_epochs: int = 0  # fastai's frozen epochs (head and norm layers), after the probe
    probe: bool = True  # pretrained: fit the new head on frozen features first (LP-FT)
    frozen_bn_stats: bool = True  # pretrained: batch norm keeps its ImageNet statistics while fine-tuning
    tta: int = 0
    pretrained: bool | str = "auto"
    weights: str | None = None
    folds: tuple[int, ...] | None = None
    seed: int = 42
    device: str = "auto"
    num_workers: int | None = None
    resize: str | None = None  # squish | crop | pad; default from the spec
    flip: bool = True
    aug: float = 1.0  # augmentation strength
    label_smoothing: float = 0.0
    skip_bad_images: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.lr, str) and self.lr != "auto":
            try:
                self.lr = float(self.lr)
            except ValueError:
                raise SpecError(f"--lr: expected a number or 'auto', found {self.lr!r}") from None
        if self.accum < 1 or self.batch_size < 1 or self.epochs < 1:
            raise SpecError("--accum, --batch-size and --epochs must be at least 1")
        if self.sizes is not None:
            if not self.sizes:
                raise SpecError("--sizes: give at least one image size, e.g. 128 or 128,224")
            self.sizes = tuple(int(s) for s in self.sizes)
        if self.folds is not None:
            self.folds = tuple(int(f) for f in self.folds)


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


def _seed_everything(seed: int) -> None:
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


def default_workers() -> int:
    """DataLoader worker processes: none on a 2-core machine (the model needs both cores),
    otherwise up to 4."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if cores <= 2 else min(4, cores - 1)


def make_heads(comp: Competition, train: pd.DataFrame) -> tuple[list[Head], np.ndarray]:
    """One slice of the model's outputs per target, and the (n, targets) target matrix."""
    info = target_info(comp, train)
    heads, cols, start = [], [], 0
    for t in comp.targets:
        if t.task == "multilabel":
            raise SpecError(f"{comp.spec_file}: target {t.name!r} is multilabel, not yet supported by kk train")
        classes = info[t.name]["classes"]
        y = encode_target(train[t.name], classes).astype(np.float32)
        if classes is None:
            mean, std = float(y.mean()), float(y.std() or 1.0)
            heads.append(Head(t.name, start, 1, None, mean, std, t.submit))
            y = (y - mean) / std
            start += 1
        else:
            heads.append(Head(t.name, start, len(classes), tuple(classes), submit=t.submit))
            start += len(classes)
        cols.append(y)
    return heads, np.column_stack(cols).astype(np.float32)


class _Loaders:
    """Builds DataLoaders over the in-memory images at a given size."""

    def __init__(self, images: list[np.ndarray], y: np.ndarray | None, cfg: TrainConfig, mean: tuple, std: tuple,
                 resize: str, seed: int):
        self.images, self.y, self.cfg, self.mean, self.std, self.resize, self.seed = \
            images, y, cfg, mean, std, resize, seed
        self.calls = 0

    def __call__(self, idx: np.ndarray, size: int, *, train: bool, tta: bool = False):
        import torch

        from .data import ImageDataset, build_transforms

        self.calls += 1  # each loader draws its own augmentations, the same ones in every identical run
        tf = build_transforms(size, self.mean, self.std, train=train or tta, resize=self.resize, flip=self.cfg.flip,
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


def _phases(cfg: TrainConfig, pretrained: bool) -> list[tuple[str, int, int]]:
    """(kind, size, epochs) per one-cycle phase: a frozen epoch first for pretrained models, then
    the progressive-resizing stages, epochs split across them."""
    assert cfg.sizes is not None
    n = len(cfg.sizes)
    per = [cfg.epochs // n + (1 if i < cfg.epochs % n else 0) for i in range(n)]
    phases = []
    if pretrained and cfg.probe:
        phases.append(("probe", cfg.sizes[0], 1))
    if pretrained and cfg.freeze_epochs > 0:
        phases.append(("frozen", cfg.sizes[0], cfg.freeze_epochs))
    return phases + [("stage", s, e) for s, e in zip(cfg.sizes, per, strict=True) if e > 0]


def _schedule(kind: str, pretrained: bool) -> dict[str, float]:
    """fastai's one-cycle settings: ``fine_tune`` trains the head with pct_start 0.99, then the whole
    model with pct_start 0.3 and div 5; ``fit_one_cycle`` from scratch uses 0.25 and 25."""
    if kind == "frozen":
        return {"pct_start": 0.99, "div": 25.0}
    return {"pct_start": 0.3, "div": 5.0} if pretrained else {"pct_start": 0.25, "div": 25.0}


def _tta_predict(learner: Any, loaders: _Loaders, idx: np.ndarray, size: int, n: int,
                 heads: list[Head]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Plain predictions and, with ``n`` > 0, fastai's TTA: 0.75 x mean of ``n`` augmented passes
    + 0.25 x the plain pass (probabilities, or values for regression)."""
    plain = split_outputs(learner.predict(loaders(idx, size, train=False)), heads)
    if n <= 0:
        return plain, None
    augmented = [split_outputs(learner.predict(loaders(idx, size, train=False, tta=True)), heads)
                 for _ in range(n)]
    tta = {k: 0.75 * np.mean([a[k] for a in augmented], axis=0) + 0.25 * plain[k] for k in plain}
    return plain, tta


def train_fold(fold: int, tr: np.ndarray, va: np.ndarray, test_idx: np.ndarray, *, cfg: TrainConfig,
               data: CompetitionData, heads: list[Head], y: np.ndarray, images: list[np.ndarray],
               test_images: list[np.ndarray], lr: float, fold_dir: Path,
               log: Callable[[dict[str, Any]], None], progress: bool) -> dict[str, Any]:
    """Train one fold (resuming from its last checkpoint when there is one); returns its predictions."""
    import torch

    from .learner import Learner, resolve_device

    done = fold_dir / "preds.npz"
    if done.is_file():
        return dict(np.load(done, allow_pickle=False))
    fold_dir.mkdir(parents=True, exist_ok=True)
    _seed_everything(cfg.seed + fold)
    comp = data.comp
    model, source = create_vision_model(cfg.arch, heads[-1].stop, pretrained=cfg.pretrained, weights=cfg.weights)
    pretrained = source != "random init"
    mean, std = model_stats(model)
    learner = Learner(model, heads, resolve_device(cfg.device), cfg.accum, cfg.label_smoothing,
                      frozen_bn_stats=pretrained and cfg.frozen_bn_stats)
    resize = cfg.resize or (comp.image.resize if comp.image else "squish")
    loaders = _Loaders(images, y, cfg, mean, std, resize, cfg.seed + fold)
    targets = {h.name: {"classes": list(h.classes) if h.classes else None} for h in heads}
    last_path, best_path = fold_dir / "last.pt", fold_dir / "best.pt"
    # plain tensors and numbers only: loading a checkpoint never runs code (runs travel for kk merge)
    state = torch.load(last_path, weights_only=True) if last_path.is_file() else None
    if state is not None:
        model.load_state_dict(state["model"])
    best = state["best"] if state else None
    best_size = state.get("best_size", cfg.sizes[-1]) if state else cfg.sizes[-1]
    history: list[dict[str, Any]] = state["history"] if state else []
    metric = _fold_metric(comp)
    for pi, (kind, size, epochs) in enumerate(_phases(cfg, pretrained)):
        if state is not None and pi < state["phase"]:
            continue
        resume_here = state is not None and pi == state["phase"]
        start_epoch = state["epoch"] + 1 if resume_here else 0
        if start_epoch >= epochs:
            continue
        set_body_trainable(model, kind not in ("frozen", "probe"))
        train_loader = loaders(tr, size, train=True)
        valid_loader = loaders(va, size, train=False)
        phase_lr = lr if kind == "frozen" or not pretrained else lr / 2
        body_lr = phase_lr / cfg.lr_mult if pretrained and kind != "frozen" else phase_lr
        bar = _bar(progress, len(train_loader), f"fold {fold} {kind} {size}px")
        learner.on_batch = None if bar is None else (
            lambda loss, bar=bar: (bar.update(1), bar.set_postfix(loss=f"{loss:.4f}")))

        def on_epoch(epoch: int, train_loss: float, seen: int, seconds: float, *, kind=kind, size=size,
                     pi=pi, bar=bar, valid_loader=valid_loader) -> None:
            nonlocal best, best_size
            raw = learner.predict(valid_loader)
            preds = split_outputs(raw, heads)
            scores = score_predictions(comp, _rows(data.train, va), preds, targets)
            row = {"fold": fold, "phase": kind, "size": size, "epoch": epoch, "train_loss": float(train_loss),
                   "valid_loss": learner.loss_of(raw, y[va]), **{k: float(v) for k, v in scores.items()},
                   "images_per_s": seen / seconds, "seconds": seconds}
            history.append(row)
            if best is None or metric.better(scores["cv"], best):
                best, best_size = scores["cv"], size  # predictions later use the size it was validated at
                torch.save(model.state_dict(), best_path)
            torch.save({"model": model.state_dict(), "optimizer": learner.opt.state_dict() if learner.opt else {},
                        "scheduler": learner.sched.state_dict() if learner.sched else {}, "phase": pi, "epoch": epoch, "best": best,
                        "best_size": best_size, "history": history}, last_path.with_suffix(".tmp"))
            os.replace(last_path.with_suffix(".tmp"), last_path)
            log(row)  # after the checkpoint: an interruption here loses nothing
            if bar is not None:
                bar.reset()

        if kind == "probe":  # the head fitted on frozen features: seconds, not an epoch
            t = time.perf_counter()
            feats, targets_ = learner.features(loaders(tr, size, train=False), flip=cfg.flip)
            learner.opt, learner.sched = None, None
            on_epoch(0, learner.fit_head(feats, targets_), len(feats), time.perf_counter() - t)
        else:
            learner.fit_one_cycle(train_loader, epochs, phase_lr, body_lr, cfg.weight_decay, on_epoch,
                                  **_schedule(kind, pretrained), start_epoch=start_epoch,
                                  state=state if resume_here else None)
        if bar is not None:
            bar.close()
        state = None
    model.load_state_dict(torch.load(best_path, weights_only=True))
    final = best_size
    oof, oof_tta = _tta_predict(learner, loaders, va, final, cfg.tta, heads)
    test_loaders = _Loaders(test_images, None, cfg, mean, std, resize, cfg.seed + fold)
    test, test_tta = _tta_predict(learner, test_loaders, test_idx, final, cfg.tta, heads)
    out: dict[str, Any] = {"valid_idx": va, "weights_source": np.array(source), "best_size": np.array(final),
                           "best_score": np.array(best)}
    for h in heads:
        out[f"oof:{h.name}"], out[f"test:{h.name}"] = oof[h.name], test[h.name]
        if oof_tta is not None:
            out[f"oof_tta:{h.name}"], out[f"test_tta:{h.name}"] = oof_tta[h.name], test_tta[h.name]
    pd.DataFrame(history).to_csv(fold_dir / "history.csv", index=False)
    np.savez(fold_dir / ".preds.tmp.npz", **out)
    os.replace(fold_dir / ".preds.tmp.npz", done)
    last_path.unlink(missing_ok=True)  # the finished fold keeps best.pt only
    return out


def _rows(train: pd.DataFrame, idx: np.ndarray) -> pd.DataFrame:
    return train.iloc[idx].reset_index(drop=True)


def _fold_metric(comp: Competition):
    from ..metrics import get_metric

    return get_metric(comp.metric)


def _bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True, disable=None)


def assemble(writer_path: Path, data: CompetitionData, folds: Folds, heads: list[Head],
             fold_preds: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """OOF (NaN for folds not run) and fold-averaged test predictions, with and without TTA."""
    comp = data.comp
    n, m = len(data.train), len(data.test)
    has_tta = all(f"oof_tta:{heads[0].name}" in p for p in fold_preds.values())
    out: dict[str, Any] = {}
    for variant in ("plain", "tta") if has_tta else ("plain",):
        key = "" if variant == "plain" else "_tta"
        oof, test = {}, {}
        for h in heads:
            shape = (n, len(h.classes)) if h.classes else (n,)
            o = np.full(shape, np.nan)
            t = np.zeros((m, len(h.classes)) if h.classes else (m,))
            for p in fold_preds.values():
                o[p["valid_idx"]] = p[f"oof{key}:{h.name}"]
                t += p[f"test{key}:{h.name}"] / len(fold_preds)
            oof[h.name], test[h.name] = o, t
        out[variant] = (oof, test)
    targets = target_info(comp, data.train)
    rows = np.flatnonzero(np.isin(folds.fold, sorted(fold_preds)))
    scores = {}
    for variant, (oof, _) in out.items():
        scores[variant] = score_predictions(comp, data.train, oof, targets, rows=rows)
        scores[variant + "_folds"] = [
            score_predictions(comp, data.train, oof, targets, rows=np.flatnonzero(folds.fold == f))["cv"]
            for f in sorted(fold_preds)]
    return {"variants": out, "scores": scores, "targets": targets, "best": "tta" if has_tta else "plain"}


def _finish_run(writer: RunWriter, data: CompetitionData, ws: Workspace, folds: Folds, heads: list[Head],
                fold_preds: dict[int, dict[str, Any]], cfg: TrainConfig, started: float,
                images_per_second: float) -> tuple[Run, dict[str, Any]]:
    comp = data.comp
    res = assemble(writer.path, data, folds, heads, fold_preds)
    oof, test = res["variants"][res["best"]]
    writer.save_predictions(to_frame(data.train[comp.id_column], comp.id_column, oof, res["targets"]),
                            to_frame(data.test[comp.id_column], comp.id_column, test, res["targets"]))
    s = res["scores"]
    best = s[res["best"]]
    writer.save_scores({
        "cv": best["cv"], "cv_std": float(np.std(s[res["best"] + "_folds"])), "folds": s[res["best"] + "_folds"],
        "cv_no_tta": s["plain"]["cv"], "per_target": {k: v for k, v in best.items() if k != "cv"},
        "tta": cfg.tta})
    history = [pd.read_csv(writer.path / f"fold_{f}" / "history.csv") for f in sorted(fold_preds)
               if (writer.path / f"fold_{f}" / "history.csv").is_file()]
    if history:
        pd.concat(history).to_csv(writer.path / "history.csv", index=False)
    from .plots import confusion_matrix_png, top_losses_png

    sub_heads = [h for h in heads if h.submit and h.classes]
    if sub_heads:
        h = sub_heads[0]
        rows = np.flatnonzero(~np.isnan(oof[h.name]).any(axis=1))
        y_idx = encode_target(data.train[h.name], list(h.classes))[rows]
        confusion_matrix_png(y_idx, oof[h.name][rows].argmax(1), list(h.classes), writer.path / "confusion_matrix.png",
                             f"{comp.name}: {h.name} (OOF)")
        if "path" in data.train.columns:
            top_losses_png(data.train["path"].to_numpy()[rows], y_idx, oof[h.name][rows], list(h.classes),
                           writer.path / "top_losses.png")
    run = writer.finish(comp, ws, fold_id=folds.id, targets=res["targets"],
                        timings={"train_s": round(time.time() - started, 2), "images_per_s": images_per_second},
                        extra={"folds_done": sorted(fold_preds), "arch": cfg.arch})
    return run, res


def train(competition: str | Competition, config: TrainConfig | None = None, *, workspace: Workspace | None = None,
          resume: str | None = None, progress: bool = False, log: Callable[[dict[str, Any]], None] | None = None,
          submit: bool = True, **overrides: Any) -> TrainResult:
    """Fine-tune ``config.arch`` on every fold (or ``config.folds``) and store the run."""
    t0 = time.perf_counter()
    ws = workspace or Workspace.for_competition(competition)
    comp = competition if isinstance(competition, Competition) else ws.competition(competition)
    if comp.kind != "image":
        raise SpecError(f"{comp.name} is a tabular competition; use 'kk baseline {comp.name}' instead of train")
    store = RunStore(ws, comp.name)
    if resume:
        run = store.get(resume)
        if run.complete:
            raise RunError(f"run {resume} is already complete; nothing to resume")
        cfg = TrainConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in run.config.items()
                             if k in TrainConfig.__dataclass_fields__})
        writer = RunWriter(run.path)
    else:
        cfg = resolve_config(comp, config, overrides)
        writer = None
    import torch

    from .data import load_images
    from .model import check_arch

    check_arch(cfg.arch)
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))
    data = load_data(comp, ws)
    if cfg.sizes is None:
        cfg.sizes = (default_size(data.train["path"].tolist()),)
    folds = get_folds(data, ws)
    run_folds = list(cfg.folds) if cfg.folds is not None else list(range(folds.k))
    bad = [f for f in run_folds if not 0 <= f < folds.k]
    if bad:
        raise SpecError(f"--folds: fold {bad[0]} does not exist; folds are 0..{folds.k - 1}")
    heads, y = make_heads(comp, data.train)
    if "path" not in data.test.columns:
        raise SpecError(f"{comp.spec_file}: [image] has no test_path/test_dir, so test images cannot be found")
    cache = ws.cache_dir / comp.name / "images"
    images = load_images(data.train["path"].tolist(), max(cfg.sizes), cache, skip_bad=cfg.skip_bad_images,
                         progress=progress)
    test_images = load_images(data.test["path"].tolist(), max(cfg.sizes), cache, skip_bad=cfg.skip_bad_images,
                              progress=progress)
    blank = np.zeros((max(cfg.sizes), max(cfg.sizes), 3), np.uint8)
    bad_train = {i for i, im in enumerate(images) if im is None}
    images = [blank if im is None else im for im in images]
    test_images = [blank if im is None else im for im in test_images]
    if writer is None:
        writer = store.create("image", cfg.arch, {**asdict(cfg), "models": [cfg.arch]})
    lr = cfg.lr
    if lr == "auto":
        lr = _auto_lr(cfg, data, heads, y, images, folds, writer.path)
    log = log or (lambda row: None)
    fold_preds: dict[int, dict[str, Any]] = {}
    seen_total, train_seconds = 0, 0.0
    test_idx = np.arange(len(data.test))
    for f, tr, va in folds.split(run_folds):
        tr = np.array([i for i in tr if i not in bad_train]) if bad_train else tr

        def counting_log(row: dict[str, Any]) -> None:
            nonlocal seen_total, train_seconds
            if row["phase"] != "probe":  # throughput is of training steps
                seen_total += int(round(row["images_per_s"] * row["seconds"]))
                train_seconds += row["seconds"]
            log(row)

        fold_preds[f] = train_fold(f, tr, va, test_idx, cfg=cfg, data=data, heads=heads, y=y, images=images,
                                   test_images=test_images, lr=float(lr), fold_dir=writer.path / f"fold_{f}",
                                   log=counting_log, progress=progress)
    ips = seen_total / train_seconds if train_seconds else 0.0
    write_json(writer.path / "lr.json", {"lr": float(lr)})
    run, res = _finish_run(writer, data, ws, folds, heads, fold_preds, cfg, time.time() - (time.perf_counter() - t0),
                           ips)
    scores = run.scores
    result = TrainResult(run, scores["cv"], scores.get("cv_no_tta") if cfg.tta else None, scores["folds"],
                         sorted(fold_preds), time.perf_counter() - t0, ips, per_target=scores.get("per_target", {}),
                         weights_source=str(next(iter(fold_preds.values()))["weights_source"]))
    if submit and len(fold_preds) == folds.k:
        result.submission = submission_from_run(data, ws, run)
        result.holdout = run.scores.get("holdout")
    return result


def _auto_lr(cfg: TrainConfig, data: CompetitionData, heads: list[Head], y: np.ndarray, images: list[np.ndarray],
             folds: Folds, out_dir: Path) -> float:
    lrs, losses, suggestion, _ = lr_find_arrays(cfg, data, heads, y, images, folds)
    from .plots import lr_find_png

    lr_find_png(lrs, losses, suggestion, out_dir / "lr_find.png", cfg.arch)
    return suggestion


def lr_find_arrays(cfg: TrainConfig, data: CompetitionData, heads: list[Head], y: np.ndarray,
                   images: list[np.ndarray], folds: Folds) -> tuple[np.ndarray, np.ndarray, float, str]:
    """Run the learning-rate finder on fold 0's training rows at the first size."""
    from .learner import Learner, resolve_device

    _seed_everything(cfg.seed)
    model, source = create_vision_model(cfg.arch, heads[-1].stop, pretrained=cfg.pretrained, weights=cfg.weights)
    if source != "random init":
        set_body_trainable(model, False)  # as fine_tune's first phase trains: body frozen
    mean, std = model_stats(model)
    learner = Learner(model, heads, resolve_device(cfg.device), 1)
    resize = cfg.resize or (data.comp.image.resize if data.comp.image else "squish")
    loader = _Loaders(images, y, cfg, mean, std, resize, cfg.seed)(np.flatnonzero(folds.fold != 0), cfg.sizes[0],
                                                                   train=True)
    lrs, losses, suggestion = learner.lr_find(loader, weight_decay=cfg.weight_decay)
    return lrs, losses, suggestion, source


def lr_find(competition: str | Competition, config: TrainConfig | None = None, *, workspace: Workspace | None = None,
            **overrides: Any) -> tuple[float, Path]:
    """``kk lr-find``: the suggestion and the path of the loss-vs-lr plot."""
    from datetime import datetime

    from .data import load_images
    from .plots import lr_find_png

    ws = workspace or Workspace.for_competition(competition)
    comp = competition if isinstance(competition, Competition) else ws.competition(competition)
    if comp.kind != "image":
        raise SpecError(f"{comp.name} is a tabular competition: the learning-rate finder is for 'kk train'")
    cfg = resolve_config(comp, config, overrides)
    data = load_data(comp, ws)
    if cfg.sizes is None:
        cfg.sizes = (default_size(data.train["path"].tolist()),)
    folds = get_folds(data, ws)
    heads, y = make_heads(comp, data.train)
    images = load_images(data.train["path"].tolist(), max(cfg.sizes), ws.cache_dir / comp.name / "images",
                         skip_bad=cfg.skip_bad_images)
    if any(im is None for im in images):
        raise KKError("unreadable images were skipped; the learning-rate finder needs them all")
    lrs, losses, suggestion, _ = lr_find_arrays(cfg, data, heads, y, images, folds)
    out = ws.runs_dir(comp.name) / "lr-find" / f"{datetime.now():%Y%m%d-%H%M%S}-{cfg.arch}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    lr_find_png(lrs, losses, suggestion, out, cfg.arch)
    return suggestion, out


def merge(competition: str, run_ids: list[str], *, workspace: Workspace | None = None,
          submit: bool = True) -> TrainResult:
    """``kk merge``: assemble the folds of runs trained separately (same config but ``folds``)."""
    t0 = time.perf_counter()
    ws = workspace or Workspace.find()
    comp = ws.competition(competition)
    store = RunStore(ws, comp.name)
    runs = [store.get(r) for r in run_ids]
    if len(runs) < 2:
        raise RunError("kk merge needs at least two runs")

    def key(r: Run) -> dict[str, Any]:
        return {k: v for k, v in r.config.items() if k not in ("folds", "device", "num_workers")}

    for r in runs[1:]:
        if key(r) != key(runs[0]):
            diff = sorted(k for k in set(key(r)) | set(key(runs[0])) if key(r).get(k) != key(runs[0]).get(k))
            raise RunError(f"cannot merge {runs[0].id} and {r.id}: their configs differ in {', '.join(diff)}")
        if r.meta.get("fold_id") != runs[0].meta.get("fold_id"):
            raise RunError(f"cannot merge {runs[0].id} and {r.id}: they use different fold assignments")
    data = load_data(comp, ws)
    folds = get_folds(data, ws)
    if runs[0].meta.get("fold_id") != folds.id:
        raise RunError(f"runs were trained on fold assignment {runs[0].meta.get('fold_id')}, the data now gives "
                       f"{folds.id}")
    fold_preds: dict[int, dict[str, Any]] = {}
    for r in runs:
        for f in r.meta.get("folds_done", []):
            if f in fold_preds:
                raise RunError(f"fold {f} is in more than one of the runs; merge runs with disjoint --folds")
            fold_preds[f] = dict(np.load(r.path / f"fold_{f}" / "preds.npz", allow_pickle=False))
    cfg = TrainConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in runs[0].config.items()
                         if k in TrainConfig.__dataclass_fields__})
    cfg.folds = tuple(sorted(fold_preds))
    heads, _ = make_heads(comp, data.train)
    writer = store.create("image", f"{cfg.arch}-merged", {**asdict(cfg), "models": [cfg.arch],
                                                           "merged_from": [r.id for r in runs]})
    import shutil

    for r in runs:
        for f in r.meta.get("folds_done", []):
            shutil.copytree(r.path / f"fold_{f}", writer.path / f"fold_{f}")
    run, _ = _finish_run(writer, data, ws, folds, heads, fold_preds, cfg, time.time(), 0.0)
    s = run.scores
    result = TrainResult(run, s["cv"], s.get("cv_no_tta"), s["folds"], sorted(fold_preds), time.perf_counter() - t0,
                         0.0, per_target=s.get("per_target", {}))
    if submit and len(fold_preds) == folds.k:
        result.submission = submission_from_run(data, ws, run)
        result.holdout = run.scores.get("holdout")
    return result


def search_space(trial: Any, max_epochs: int = 6) -> dict[str, Any]:
    """What ``kk tune`` searches for an image model: learning rate, epochs, augmentation strength."""
    return {"lr": trial.suggest_float("lr", 1e-4, 3e-2, log=True),
            "epochs": trial.suggest_int("epochs", 1, max_epochs),
            "aug": trial.suggest_float("aug", 0.0, 1.5)}
