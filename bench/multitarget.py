"""Several targets a photo, on the real photo sets: ``kk new`` + ``kk train`` unedited against the floor.

    python bench/multitarget.py [--sets fashion-products,faces-age] [--arch tf_efficientnet_lite0]
        [--data ../shared/data] [--out bench/results/multitarget.jsonl] [--skip-kk]
        [--sizes 128] [--epochs 3]   # kk train's flags, to fit a CPU; its defaults when left out
        [--aux]                      # the auxiliary targets kk new lists, switched on
        [--solo TARGET]              # one model for TARGET: the other targets' loss weights at 1e-6

For each set: a fresh workspace whose spec is what ``kk new`` writes (every submitted column a
target, its task and metric guessed), then ``kagglekit.train`` with kk's defaults and the arch's
real ImageNet weights (``KK_WEIGHTS_DIR``; ``../shared/tools/pretrained_effnet_lite.py``). Its
out-of-fold score per submitted target is compared on the same 5 folds with **the floor**: frozen
ImageNet features of the same weights (timm's evaluation transform) + a linear model per target,
logistic regression (C by inner CV of the log loss) for a class target, ridge (alpha by inner CV)
for a number target. The submission kk wrote is validated against the sample submission. One JSON
line per set and method is appended to ``--out``; wall times include everything each method does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, SHARED
from _handloop import frozen_features, logistic_regression, preload

ARCH = "tf_efficientnet_lite0"


def floor(comp, data, folds, arch: str, weights: Path, device: str) -> tuple[dict[str, float], float]:
    """The frozen-feature floor's OOF score per submitted target, and its wall seconds."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from kagglekit.metrics import get_metric, log_space

    t0 = time.perf_counter()
    feats = frozen_features(preload(data.train["path"].tolist(), arch, weights), arch, weights, device)
    scores = {}
    for t in comp.submitted_targets:
        y_raw = data.train[t.name]
        if t.is_classification:
            classes = sorted(y_raw.astype(str).unique())
            y = y_raw.astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
            oof = np.zeros((len(y), len(classes)))
            for _, tr, va in folds.split():
                proba = logistic_regression(feats, y, tr, va)
                seen = np.unique(y[tr])
                oof[np.ix_(va, seen)] = proba
            scores[t.name] = float(get_metric(comp.metric)(y, oof))
        else:
            to_space, from_space = log_space(comp.metric)
            y = to_space(y_raw.to_numpy(dtype=float))
            oof = np.zeros(len(y))
            for _, tr, va in folds.split():
                model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
                oof[va] = model.fit(feats[tr], y[tr]).predict(feats[va])
            scores[t.name] = float(get_metric(comp.metric)(y_raw.to_numpy(dtype=float), from_space(oof)))
    return scores, time.perf_counter() - t0


def emit(row: dict, out: Path) -> None:
    """Print ``row`` and append it to ``out``, with the commit of the kk that made it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    row = {**row, "kk": head.stdout.strip() or "unknown"}
    print(json.dumps(row), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")


def run_set(name: str, args, weights: Path, device: str) -> None:
    import kagglekit as kk
    from kagglekit.data import load_data
    from kagglekit.folds import get_folds
    from kagglekit.scaffold import new_competition
    from kagglekit.submissions import read_submission, validate_submission
    from kagglekit.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix=f"kk_mt_{name}_"))
    (root / "competitions").mkdir()
    os.environ["KK_DATA_DIR"] = str(args.data)
    ws = Workspace.at(root)
    new_competition(name, ws)  # the spec as kk new writes it, unedited (but for --aux)
    if args.aux:  # uncomment the auxiliary targets kk new lists (submit = false)
        spec = root / "competitions" / name / "competition.toml"
        spec.write_text(re.sub(r"(?m)^# (\[\[targets\]\]|name = |task = |submit = )", r"\1", spec.read_text()))
    if args.solo:  # the same spec, targets and folds; only TARGET's loss steers the backbone
        spec = root / "competitions" / name / "competition.toml"
        spec.write_text(re.sub(r'(?m)^(name = "(?!' + re.escape(args.solo) + r'")[^"]*"\ntask = "[a-z]+")$',
                               r"\1\nweight = 1e-6", spec.read_text()))
    comp = ws.competition(name)
    if args.solo and [t.name for t in comp.targets if t.weight == 1.0] != [args.solo]:
        sys.exit(f"--solo {args.solo}: not one of {name}'s targets {[t.name for t in comp.targets]}")
    data = load_data(comp, ws)
    folds = get_folds(data, ws)
    print(f"{name}: targets {[(t.name, t.task, t.submit) for t in comp.targets]}, metric {comp.metric}, "
          f"folds {comp.cv.kind}", flush=True)
    f_scores = {t.name: None for t in comp.submitted_targets}
    if not args.skip_floor:
        f_scores, f_wall = floor(comp, data, folds, args.arch, weights, device)
        emit({"set": name, "method": "frozen features + linear", "metric": comp.metric, "scores": f_scores,
              "seconds": round(f_wall, 1), "device": device}, args.out)
    if not args.skip_kk:
        t0 = time.perf_counter()
        flags = {k: v for k, v in (("sizes", args.sizes), ("epochs", args.epochs)) if v is not None}
        result = kk.train(comp, kk.TrainConfig(arch=args.arch, **flags), workspace=ws)
        wall = time.perf_counter() - t0
        problems = validate_submission(data, read_submission(result.submission)) if result.submission else ["none"]
        method = "kk train (kk new's spec" + (", auxiliary targets on" if args.aux else "") + (
            f", one model for {args.solo}: the other losses weighted 1e-6)" if args.solo else ")")
        emit({"set": name, "method": method, "metric": comp.metric,
                     "scores": {k: float(v) for k, v in result.per_target.items() if k in f_scores},
                     "cv": float(result.cv), "seconds": round(wall, 1), "device": device,
                     "epochs": result.run.config.get("epochs"), "batch_size": result.run.config.get("batch_size"),
                     "sizes": result.run.config.get("sizes"), "run": str(result.run.path),
                     "submission_valid": not problems, "submission_columns": list(read_submission(
                         result.submission).columns) if result.submission else []}, args.out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="fashion-products,faces-age")
    ap.add_argument("--arch", default=ARCH)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("KK_SHARED_DATA", SHARED)))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "multitarget.jsonl")
    ap.add_argument("--skip-kk", action="store_true", help="the floor only")
    ap.add_argument("--sizes", type=lambda v: tuple(int(x) for x in v.split(",")), default=None,
                    help="kk train's --sizes (default: kk's, the images' own size up to 224)")
    ap.add_argument("--epochs", type=int, default=None, help="kk train's --epochs (default: kk's, by the images)")
    ap.add_argument("--aux", action="store_true", help="switch on the auxiliary targets kk new lists")
    ap.add_argument("--solo", default=None, metavar="TARGET",
                    help="one model for TARGET alone (the other targets' loss weights 1e-6, the same folds)")
    ap.add_argument("--skip-floor", action="store_true", help="kk train only (the floor is in --out already)")
    args = ap.parse_args()
    weights = Path(os.environ.get("KK_WEIGHTS_DIR", "~/.cache/kk-weights")).expanduser() / f"{args.arch}.safetensors"
    if not weights.is_file():
        sys.exit(f"skipped: {weights} not found; run python ../shared/tools/pretrained_effnet_lite.py all")
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    for name in args.sets.split(","):
        if not (args.data / name).is_dir():
            print(f"skipped {name}: not in {args.data}")
            continue
        run_set(name, args, weights, device)


if __name__ == "__main__":
    main()
