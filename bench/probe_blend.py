"""The probe and a fine-tuned epoch of the same fold, alone and averaged, replayed on a finished run.

    python bench/probe_blend.py RUN [--out bench/results/probe_blend.jsonl]

``kk train`` keeps, per head, the epoch of lowest validation loss, the linear probe counting as one.
A fold whose heads kept different epochs holds both weights: the probe's (``best-<head>.pt`` of a
head that kept epoch 0) and a fine-tuned epoch's. Each fold's validation photos go through both
(timm's evaluation transform, as the floor's; no TTA), and every submitted head is scored three
ways: the probe, the fine-tuned epoch, and the mean of their probabilities. Pooled over the folds
that hold both; each way's accuracy and log loss per head, with the paired per-photo gap of the mean
against the better of the two. Folds where every head kept the same epoch are left out (said so).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from _common import SHARED
from _handloop import preload

HERE = Path(__file__).parent


def fold_weights(fold_dir: Path, heads: list[str]) -> tuple[Path, int, Path, int] | None:
    """(probe weights, 0, fine-tuned weights, its epoch) of a fold, or None when it holds no such pair."""
    h = pd.read_csv(fold_dir / "history.csv")
    kept = {name: int(h[f"valid_loss:{name}"].idxmin()) for name in heads}
    probe = [n for n, at in kept.items() if at == 0]
    tuned = sorted(((at, n) for n, at in kept.items() if at > 0), reverse=True)
    if not probe or not tuned:
        return None
    return fold_dir / f"best-{probe[0]}.pt", 0, fold_dir / f"best-{tuned[0][1]}.pt", tuned[0][0]


def predict(weights: Path, x, arch: str, n_out: int) -> np.ndarray:
    import torch

    from kagglekit.vision.model import create_vision_model

    model, _ = create_vision_model(arch, n_out, pretrained=False)
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    with torch.no_grad():
        return torch.cat([model(b).float() for b in x.split(64)]).numpy()


def replay(run: Path, weights_file: Path) -> dict:
    from kagglekit.data import load_data
    from kagglekit.vision.config import make_heads
    from kagglekit.vision.model import split_outputs
    from kagglekit.workspace import Workspace

    ws = Workspace.at(run.parents[2])
    comp = ws.competition(run.parent.name)
    data = load_data(comp, ws)
    heads, y = make_heads(comp, data.train)
    arch = json.loads((run / "config.json").read_text())["arch"]
    submitted = [h for h in heads if h.submit and h.classes]
    ways = ("probe", "fine-tuned", "mean")
    probs: dict[str, dict[str, list[np.ndarray]]] = {w: {h.name: [] for h in submitted} for w in ways}
    truth: dict[str, list[np.ndarray]] = {h.name: [] for h in submitted}
    used, skipped = [], []
    for fold_dir in sorted(run.glob("fold_*")):
        pair = fold_weights(fold_dir, [h.name for h in heads])
        if pair is None:
            skipped.append(fold_dir.name)
            continue
        va = np.load(fold_dir / "preds.npz")["valid_idx"]
        x = preload(data.train["path"].iloc[va].tolist(), arch, weights_file)
        out = {w: split_outputs(predict(p, x, arch, heads[-1].stop), heads)
               for w, p in (("probe", pair[0]), ("fine-tuned", pair[2]))}
        used.append({"fold": fold_dir.name, "fine-tuned epoch": pair[3]})
        for h in submitted:
            i = heads.index(h)
            truth[h.name].append(y[va, i].astype(int))
            probs["probe"][h.name].append(out["probe"][h.name])
            probs["fine-tuned"][h.name].append(out["fine-tuned"][h.name])
            probs["mean"][h.name].append((out["probe"][h.name] + out["fine-tuned"][h.name]) / 2)
        print(f"{fold_dir.name}: probe and epoch {pair[3]}", flush=True)
    return {"run": str(run), "set": comp.name, "folds": used, "skipped": skipped,
            "scores": _scores(probs, truth, submitted, ways)}


def _scores(probs, truth, submitted, ways) -> dict:
    out: dict = {}
    for h in submitted:
        if not truth[h.name]:
            continue
        yt = np.concatenate(truth[h.name])
        rows = {}
        right = {}
        for w in ways:
            p = np.concatenate(probs[w][h.name])
            right[w] = p.argmax(1) == yt
            loss = float(-np.mean(np.log(np.clip(p[np.arange(len(yt)), yt], 1e-15, 1))))
            rows[w] = {"accuracy": float(right[w].mean()), "log_loss": loss}
        best = max(("probe", "fine-tuned"), key=lambda w: right[w].mean())
        d = right["mean"].astype(float) - right[best]
        rows["mean vs " + best] = {"gap": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d))),
                                   "photos": int(len(d))}
        out[h.name] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--weights", type=Path, default=None, help="the arch's ImageNet weight file (timm's transform)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "probe_blend.jsonl")
    args = ap.parse_args()
    os.environ.setdefault("KK_DATA_DIR", str(SHARED))
    for run in args.runs:
        arch = json.loads((run / "config.json").read_text())["arch"]
        weights = args.weights or Path(os.environ.get("KK_WEIGHTS_DIR", "~/.cache/kk-weights")).expanduser() \
            / f"{arch}.safetensors"
        result = replay(run, weights)
        for name, rows in result["scores"].items():
            print(name, json.dumps(rows))
        with args.out.open("a") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
