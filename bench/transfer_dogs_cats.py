"""Transfer learning on real photos, offline: `kk train` with real ImageNet weights against a
hand-written minimal fine-tune loop and frozen features + logistic regression, on the same folds,
in one process.

Data: ../shared/data/dogs-vs-cats-small (500 real photos, labels in the file names). Weights:
timm's tf_efficientnet_lite0, written by ../shared/tools/pretrained_effnet_lite0.py (run here if
missing). The photos are laid out as Kaggle's Dogs vs. Cats Redux (train/cat.1.jpg, test/1.jpg,
sample_submission.csv) in a temporary folder; its test/ holds 20 of the photos renamed, only to
exercise the submission path (test predictions are not scored).

    python bench/transfer_dogs_cats.py [--folds 0,1,2,3,4] [--size 224]

Prints OOF accuracy, log loss, training images/s and wall time of each method.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, need_shared

ARCH = "tf_efficientnet_lite0"
HAND_EPOCHS = 2  # as many training epochs as kk's spec gives (kk's probe is one forward pass)
KK = "kk train (spec defaults: probe, 2 epochs, TTA 4)"
HAND = f"hand-written loop ({HAND_EPOCHS} epochs, flips)"


def kaggle_layout(photos: Path, root: Path) -> Path:
    """Kaggle's Redux layout over the real photos (symlinks): train/, test/1.jpg..., sample_submission.csv."""
    d = root / "dogs-vs-cats"
    (d / "test").mkdir(parents=True)
    (d / "train").symlink_to(photos)
    lines = ["id,label"]
    for i, f in enumerate(sorted(photos.iterdir())[::25], 1):
        (d / "test" / f"{i}.jpg").symlink_to(f)
        lines.append(f"{i},0.5")
    (d / "sample_submission.csv").write_text("\n".join(lines) + "\n")
    return root


def weights_file() -> Path:
    folder = Path(os.environ.get("KK_WEIGHTS_DIR", "~/.cache/kk-weights")).expanduser()
    path = folder / f"{ARCH}.safetensors"
    if not path.is_file():
        subprocess.run([sys.executable, str(REPO.parent / "shared" / "tools" / "pretrained_effnet_lite0.py"),
                        str(folder)], check=True, stdout=subprocess.DEVNULL)
    return path


def preload(paths: list[str], size: int) -> np.ndarray:
    """Every photo squished to size x size, uint8 (what a hand-written loop would hold in memory)."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
                     for p in paths])


def to_tensor(x: np.ndarray, mean, std):
    import torch

    t = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    return (t - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def hand_written(x: np.ndarray, y: np.ndarray, tr: np.ndarray, va: np.ndarray, weights: Path, epochs: int,
                 seed: int) -> tuple[np.ndarray, float]:
    """A minimal fine-tune: timm model with the pretrained body, its classifier re-initialised small
    (normal, std 0.01), AdamW 3e-4 with cosine decay over all weights, random horizontal flips,
    batch 32. Returns (P(dog) on the validation rows, training images/s)."""
    import timm
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    model = timm.create_model(ARCH, pretrained=True, num_classes=2, pretrained_cfg_overlay={"file": str(weights)})
    torch.nn.init.normal_(model.get_classifier().weight, std=0.01)
    torch.nn.init.zeros_(model.get_classifier().bias)
    cfg = model.pretrained_cfg
    xt, yt = to_tensor(x[tr], cfg["mean"], cfg["std"]), torch.from_numpy(y[tr]).long()
    steps = epochs * (len(tr) // 32)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    seen, seconds = 0, 0.0
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(tr))
        t = time.perf_counter()
        for i in range(0, len(tr) - 31, 32):
            idx = order[i:i + 32]
            xb = xt[idx]
            flip = torch.rand(len(idx)) < 0.5
            xb[flip] = xb[flip].flip(3)
            loss = F.cross_entropy(model(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen += len(idx)
        seconds += time.perf_counter() - t
    model.eval()
    with torch.no_grad():
        p = torch.cat([model(b).softmax(1)[:, 1] for b in to_tensor(x[va], cfg["mean"], cfg["std"]).split(64)])
    return p.numpy(), seen / seconds


def frozen_features(x: np.ndarray, weights: Path) -> np.ndarray:
    """Pooled ImageNet features of every photo (no head), in eval mode."""
    import timm
    import torch

    model = timm.create_model(ARCH, pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": str(weights)})
    model.eval()
    cfg = model.pretrained_cfg
    with torch.no_grad():
        return torch.cat([model(b) for b in to_tensor(x, cfg["mean"], cfg["std"]).split(64)]).numpy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    photos = need_shared("dogs-vs-cats-small") / "train"
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    import kagglekit as kk
    from kagglekit.data import load_data
    from kagglekit.folds import get_folds
    from kagglekit.workspace import Workspace

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    weights = weights_file()
    run_folds = [int(f) for f in args.folds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KK_DATA_DIR"] = str(kaggle_layout(photos, Path(tmp)))
        ws = Workspace.at(REPO)
        comp = ws.competition("dogs-vs-cats")
        data = load_data(comp, ws)
        folds = get_folds(data, ws)
        y = (data.train["label"].to_numpy() == "dog").astype(int)
        rows = np.flatnonzero(np.isin(folds.fold, run_folds))
        results = {}

        t = time.perf_counter()
        r = kk.train(comp, workspace=ws, weights=str(weights), sizes=(args.size,), folds=tuple(run_folds),
                     progress=True)
        oof = r.run.oof().set_index(comp.id_column).loc[data.train[comp.id_column], "label:dog"].to_numpy()
        results[KK] = (oof[rows], r.images_per_second, time.perf_counter() - t)
        print(f"kk run {r.run.id}: epochs {r.run.config['epochs']}, lr {r.run.config['lr']}, "
              f"weights {r.weights_source}", flush=True)

        t = time.perf_counter()
        x = preload(data.train["path"].tolist(), args.size)
        p = np.full(len(y), np.nan)
        rates = []
        for f in run_folds:
            tr, va = np.flatnonzero(folds.fold != f), np.flatnonzero(folds.fold == f)
            p[va], rate = hand_written(x, y, tr, va, weights, epochs=HAND_EPOCHS, seed=f)
            rates.append(rate)
            print(f"hand-written fold {f}: accuracy {((p[va] > 0.5) == y[va]).mean():.4f}", flush=True)
        results[HAND] = (p[rows], float(np.mean(rates)), time.perf_counter() - t)

        t = time.perf_counter()
        feats = frozen_features(x, weights)
        p = np.full(len(y), np.nan)
        for f in run_folds:
            tr, va = np.flatnonzero(folds.fold != f), np.flatnonzero(folds.fold == f)
            p[va] = LogisticRegression(max_iter=5000).fit(feats[tr], y[tr]).predict_proba(feats[va])[:, 1]
        results["frozen features + logistic regression"] = (p[rows], float("nan"), time.perf_counter() - t)

    print(f"\n{ARCH} at {args.size}px, ImageNet weights offline, {len(rows)} real photos, folds {args.folds}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'method':<48} {'OOF acc':>8} {'logloss':>8} {'train img/s':>12} {'wall s':>7}")
    for name, (prob, ips, wall) in results.items():
        acc = ((prob > 0.5) == y[rows]).mean()
        ll = log_loss(y[rows], np.clip(prob, 1e-6, 1 - 1e-6), labels=[0, 1])
        print(f"{name:<48} {acc:>8.4f} {ll:>8.4f} {ips:>12.1f} {wall:>7.1f}")
    kk_acc = ((results[KK][0] > 0.5) == y[rows]).mean()
    others = [((v[0] > 0.5) == y[rows]).mean() for k, v in results.items() if not k.startswith("kk")]
    kk_ips, hand_ips = results[KK][1], results[HAND][1]
    print(f"bar: kk OOF accuracy >= 0.99: {'met' if kk_acc >= 0.99 else 'NOT met'}; >= both others: "
          f"{'met' if kk_acc >= max(others) else 'NOT met'}; kk img/s >= 90% of hand-written "
          f"({kk_ips / hand_ips:.0%}): {'met' if kk_ips >= 0.9 * hand_ips else 'NOT met'}")


if __name__ == "__main__":
    main()
