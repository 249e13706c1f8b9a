"""Fine-tuning where a frozen probe is not enough: kk train with kk's defaults on real flower photos,
against frozen features + logistic regression and a timm-style hand-written fine-tune, same folds.

Data: ../shared/data/flowers-small (1,000 photos, 5 classes; --data dogs-vs-cats-small for the
500 dogs and cats). Weights: timm's tf_efficientnet_lite0 from KK_WEIGHTS_DIR (default
~/.cache/kk-weights; ../shared/tools/pretrained_effnet_lite.py writes them). kk's spec is the
one `kk new` writes for the folder, with --arch tf_efficientnet_lite0: what a new user gets.

    python bench/transfer_flowers.py [--data flowers-small] [--folds 0,1,2,3,4] [--skip hand]
    python bench/transfer_flowers.py --curve          # learning curve on fixed held-out photos

Prints OOF accuracy and log loss, per-class accuracy, training img/s and wall time of each method,
the photos each gets right that kk gets wrong (paired), and kk's training step against the hand
loop's in turn on the same rows (img/s).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import REPO, need_shared

ARCH = "tf_efficientnet_lite0"


def weights_dir() -> Path:
    folder = Path(os.environ.get("KK_WEIGHTS_DIR", "~/.cache/kk-weights")).expanduser()
    if not (folder / f"{ARCH}.safetensors").is_file():
        sys.exit(f"skipped: no {ARCH}.safetensors in {folder}; "
                 "run python ../shared/tools/pretrained_effnet_lite.py all")
    return folder


def new_workspace(root: Path, data_root: Path, name: str):
    """A workspace whose spec for ``name`` is what `kk new` writes for the folder."""
    from kagglekit.scaffold import new_competition
    from kagglekit.workspace import Workspace

    (root / "competitions").mkdir(parents=True, exist_ok=True)
    os.environ["KK_DATA_DIR"] = str(data_root)
    ws = Workspace.at(root)
    new_competition(name, ws)
    return ws, ws.competition(name)


def class_probs(run, comp, data, frame: str = "oof") -> tuple[np.ndarray, list[str]]:
    """A run's class probabilities in the rows of the competition's train (or test) table."""
    target = comp.targets[0].name
    table = run.oof() if frame == "oof" else run.test()
    classes = [c.split(":", 1)[1] for c in table.columns if c.startswith(f"{target}:")]
    rows = data.train if frame == "oof" else data.test
    return table.set_index(comp.id_column).loc[rows[comp.id_column], [f"{target}:{c}" for c in classes]].to_numpy(), \
        classes


def saved_run(folder: Path, data, comp) -> tuple[dict, np.ndarray, list[str], float]:
    """(config, class probabilities in train's rows, classes, img/s) of a kk run folder: its
    oof.parquet, or, for an interrupted run, the predictions of its finished folds."""
    import json

    cfg = json.loads((folder / "config.json").read_text())
    target = comp.targets[0].name
    classes = sorted(data.train[target].unique())
    if (folder / "oof.parquet").is_file():
        table = pd.read_parquet(folder / "oof.parquet").set_index(comp.id_column).loc[data.train[comp.id_column]]
        meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").is_file() else {}
        return cfg, table[[f"{target}:{c}" for c in classes]].to_numpy(), classes, \
            float(meta.get("timings", {}).get("images_per_s", float("nan")))
    prob = np.full((len(data.train), len(classes)), np.nan)
    for f in sorted(folder.glob("fold_*/preds.npz")):
        p = np.load(f)
        prob[p["valid_idx"]] = p[f"oof_tta:{target}"] if f"oof_tta:{target}" in p else p[f"oof:{target}"]
    return cfg, prob, classes, float("nan")


def kk_step(comp, data, y: np.ndarray, tr: np.ndarray, weights: Path):
    """kk train's own training step on rows ``tr`` (its model, head, learner and loaders, as the
    defaults make them). Returns a function running one epoch and returning its images/s, and the
    batch kk chose for these rows."""
    from kagglekit.vision.config import cache_side, machine_plan, make_heads, resize_method, resolve_config
    from kagglekit.vision.data import load_images
    from kagglekit.vision.learner import OneCycle, make_learner
    from kagglekit.vision.loaders import Loaders
    from kagglekit.vision.model import create_vision_model, model_stats, resize_policy

    cfg = resolve_config(comp, None, {"arch": ARCH})
    cfg.sizes = tuple(cfg.sizes or (224,))
    plan = machine_plan(cfg, n_train=len(tr))  # the batch kk train uses on these rows
    cfg.batch_size = plan.batch_size
    heads, targets = make_heads(comp, data.train)
    images = load_images(data.train["path"].tolist(), cache_side(cfg, comp))
    model, _ = create_vision_model(cfg.arch, heads[-1].stop, pretrained=True, weights=weights,
                                   drop_path_rate=cfg.drop_path)
    learner = make_learner(model, heads, plan, frozen_bn_stats=True, label_smoothing=cfg.label_smoothing,
                           layer_decay=cfg.layer_decay)
    if cfg.ema:
        learner.start_ema(cfg.ema)
    loader = Loaders(images, targets, cfg, *model_stats(model), resize_policy(resize_method(cfg, comp), cfg.arch, True),
                     0, plan=plan)(tr, cfg.sizes[0], train=True)
    lr = float(cfg.lr) / 2
    opt = learner.optimizer(lr, lr / cfg.lr_mult, cfg.weight_decay)
    sched = OneCycle(opt, 10 * len(loader), pct_start=0.3, div=5)

    def epoch() -> float:
        t = time.perf_counter()
        _, seen = learner.train_epoch(loader, opt, sched)
        return seen / (time.perf_counter() - t)

    return epoch, plan.batch_size


def report(name_of: dict[str, tuple[np.ndarray, float, float]], y: np.ndarray, rows: np.ndarray,
           classes: list[str], kk_name: str) -> dict[str, tuple[float, float]]:
    from sklearn.metrics import log_loss

    print(f"{'method':<46} {'OOF acc':>8} {'logloss':>8} {'train img/s':>12} {'wall s':>7}  per-class accuracy")
    out = {}
    for name, (prob, ips, wall) in name_of.items():
        pred = prob.argmax(1)
        acc = float((pred == y[rows]).mean())
        ll = float(log_loss(y[rows], np.clip(prob, 1e-7, 1), labels=list(range(len(classes)))))
        per = " ".join(f"{c} {(pred[y[rows] == k] == k).mean():.2f}" for k, c in enumerate(classes))
        print(f"{name:<46} {acc:>8.4f} {ll:>8.4f} {ips:>12.1f} {wall:>7.0f}  {per}")
        out[name] = (acc, ll)
    right = {k: v[0].argmax(1) == y[rows] for k, v in name_of.items()}
    for k in right:
        if k != kk_name:
            print(f"photos kk gets right and {k.split(' (')[0]} wrong: {int((right[kk_name] & ~right[k]).sum())}; "
                  f"the reverse: {int((~right[kk_name] & right[k]).sum())}")
    return out


def curve(args, photos_root: Path, weights: Path) -> None:
    """Held-out = fold 0's photos (kk's folds of the whole set); kk and the logistic regression
    learn from 25%, 50% and 100% of the other photos (stratified), and predict the held-out ones."""
    from _handloop import frozen_features, logistic_regression, preload
    from sklearn.metrics import log_loss

    import kagglekit as kk
    from kagglekit.data import load_data
    from kagglekit.folds import get_folds

    with tempfile.TemporaryDirectory() as tmp:
        ws, comp = new_workspace(Path(tmp) / "full", photos_root.parent.parent, args.data)
        data = load_data(comp, ws)
        folds = get_folds(data, ws)
        target = comp.targets[0].name
        classes = sorted(data.train[target].unique())
        y = np.searchsorted(classes, data.train[target].to_numpy())
        held, rest = np.flatnonzero(folds.fold == 0), np.flatnonzero(folds.fold != 0)
        wfile = weights / f"{ARCH}.safetensors"
        x = preload(data.train["path"].tolist(), ARCH, wfile)
        feats = frozen_features(x, ARCH, wfile)
        rng = np.random.default_rng(0)
        print(f"\nlearning curve: {len(held)} held-out photos (fold 0), the same for every size; kk with its "
              f"defaults (one fold of its CV trained, test = the held-out photos)")
        print(f"{'training photos':>16} {'kk acc':>7} {'kk logloss':>10} {'LR acc':>7} {'LR logloss':>10} {'kk s':>6}")
        for frac in (0.25, 0.5, 1.0):
            take = np.concatenate([rng.permutation(rest[y[rest] == k])[:int(round(frac * (y[rest] == k).sum()))]
                                   for k in range(len(classes))])
            root = Path(tmp) / f"sub{int(frac * 100)}"
            name = f"{args.data}-{len(take)}"
            layout = root / "data" / name
            for i in take:
                dest = layout / "train" / classes[y[i]] / Path(data.train["path"].iloc[i]).name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.symlink_to(data.train["path"].iloc[i])
            (layout / "test").mkdir(parents=True)
            for j, i in enumerate(held):
                (layout / "test" / f"h{j:04d}{Path(data.train['path'].iloc[i]).suffix}").symlink_to(
                    data.train["path"].iloc[i])
            sws, scomp = new_workspace(root, root / "data", name)
            sdata = load_data(scomp, sws)
            t = time.perf_counter()
            r = kk.train(scomp, workspace=sws, arch=ARCH, weights=str(weights), folds=(0,), submit=False)
            seconds = time.perf_counter() - t
            order = np.argsort(sdata.test[scomp.id_column].to_numpy())  # h0000, h0001, ...: held's order
            prob, got = class_probs(r.run, scomp, sdata, "test")
            prob = prob[order][:, [got.index(c) for c in classes]]
            lr = logistic_regression(feats, y, take, held)
            yh = y[held]
            print(f"{len(take):>16} {(prob.argmax(1) == yh).mean():>7.4f} {log_loss(yh, prob, labels=range(5)):>10.4f} "
                  f"{(lr.argmax(1) == yh).mean():>7.4f} {log_loss(yh, lr, labels=range(5)):>10.4f} {seconds:>6.0f}",
                  flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="flowers-small")
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--skip", default="", help="methods to leave out: hand, lr")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved throughput epochs of each")
    ap.add_argument("--epochs", type=int, default=4, help="the hand loop's epochs with --anchors (else kk's)")
    ap.add_argument("--curve", action="store_true", help="the learning curve instead")
    ap.add_argument("--kk-run", help="score this finished (or interrupted) kk run folder instead of training kk again")
    ap.add_argument("--anchors", help="an .npz of the anchors' OOF: read when it exists, else computed and written "
                                      "(the anchors can run while kk trains)")
    args = ap.parse_args()
    photos_root = need_shared(args.data) / "train"
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    weights = weights_dir()
    if args.curve:
        return curve(args, photos_root, weights)
    from _handloop import frozen_features, hand_fold, logistic_regression, preload

    import kagglekit as kk
    from kagglekit.data import load_data
    from kagglekit.folds import get_folds

    run_folds = [int(f) for f in args.folds.split(",")]
    results: dict[str, tuple[np.ndarray, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ws, comp = new_workspace(Path(tmp), photos_root.parent.parent, args.data)
        data = load_data(comp, ws)
        folds = get_folds(data, ws)
        rows = np.flatnonzero(np.isin(folds.fold, run_folds))
        t = time.perf_counter()
        if args.anchors and not Path(args.anchors).is_file():  # the anchors alone, for a later report
            cfg = {"epochs": args.epochs}
            classes = sorted(data.train[comp.targets[0].name].unique())
            prob, ips = np.full((len(data.train), len(classes)), 1 / len(classes)), float("nan")
        elif args.kk_run:
            cfg, prob, classes, ips = saved_run(Path(args.kk_run), data, comp)
        else:
            r = kk.train(comp, workspace=ws, arch=ARCH, weights=str(weights), folds=tuple(run_folds), progress=True)
            cfg, ips = r.run.config, r.images_per_second
            prob, classes = class_probs(r.run, comp, data)
        y = np.searchsorted(classes, data.train[comp.targets[0].name].to_numpy())
        kk_name = f"kk train (kk new's spec, {cfg['epochs']} epochs)"
        results[kk_name] = (prob[rows], ips, time.perf_counter() - t)
        weights = weights / f"{ARCH}.safetensors"  # the anchors load the file itself
        shown = ("epochs", "lr", "lr_mult", "layer_decay", "label_smoothing", "ema", "keep", "probe_c", "tta")
        print(f"kk run: {', '.join(f'{k}={cfg.get(k)}' for k in shown)}", flush=True)

        if args.anchors and Path(args.anchors).is_file():
            saved = np.load(args.anchors, allow_pickle=True)
            for name in saved.files:
                results[name] = tuple(saved[name])  # type: ignore[assignment]
            args.skip += ",lr,hand"
        t = time.perf_counter()
        needed = {"lr", "hand"} - set(args.skip.split(",")) or args.rounds
        x = preload(data.train["path"].tolist(), ARCH, weights) if needed else None
        preload_s = time.perf_counter() - t
        if "lr" not in args.skip:
            t = time.perf_counter()
            feats = frozen_features(x, ARCH, weights)
            p = np.zeros((len(y), len(classes)))
            for f in run_folds:
                tr, va = np.flatnonzero(folds.fold != f), np.flatnonzero(folds.fold == f)
                p[va] = logistic_regression(feats, y, tr, va)
            results["frozen features + logistic regression (C by CV)"] = (p[rows], float("nan"),
                                                                           time.perf_counter() - t + preload_s)
        if "hand" not in args.skip:
            t = time.perf_counter()
            p, rates = np.zeros((len(y), len(classes))), []
            for f in run_folds:
                tr, va = np.flatnonzero(folds.fold != f), np.flatnonzero(folds.fold == f)
                p[va], rate = hand_fold(x, y, tr, va, ARCH, weights, len(classes), int(cfg["epochs"]), seed=f)
                rates.append(rate)
                print(f"hand-written fold {f}: accuracy {(p[va].argmax(1) == y[va]).mean():.4f}", flush=True)
            results[f"hand-written timm-style loop ({int(cfg['epochs'])} epochs)"] = (
                p[rows], float(np.mean(rates)), time.perf_counter() - t + preload_s)
        if args.anchors and not Path(args.anchors).is_file():
            np.savez(args.anchors, **{k: np.array(v, dtype=object) for k, v in results.items() if k != kk_name})
            print(f"anchors written to {args.anchors}")
            return
        print(f"\n{args.data}: {ARCH} at 224 px, ImageNet weights offline, {len(rows)} photos, folds {args.folds}, "
              f"{torch.get_num_threads()} threads")
        scores = report(results, y, rows, classes, kk_name)
        if args.rounds:
            from _handloop import HandLoop

            tr = np.flatnonzero(folds.fold != 0)
            kk_epoch, batch = kk_step(comp, data, y, tr, weights)
            # the same batch for both: the same work a step, so the ratio is kk's overhead
            hand = HandLoop(x, y, tr, ARCH, weights, len(classes), epochs=args.rounds, seed=0, batch=batch)
            kk_rates, hand_rates = [], []
            for _ in range(args.rounds):
                kk_rates.append(kk_epoch())
                hand_rates.append(hand.epoch())
            ratio = float(np.median(kk_rates) / np.median(hand_rates))
            print(f"training throughput in turn on fold 0's rows, batch {batch}: "
                  f"kk {' '.join(f'{v:.1f}' for v in kk_rates)} img/s, "
                  f"hand-written {' '.join(f'{v:.1f}' for v in hand_rates)} img/s: {ratio:.0%}")
    kk_acc, kk_ll = scores[kk_name]
    for name, (acc, ll) in scores.items():
        if name != kk_name:
            print(f"kk vs {name.split(' (')[0]}: accuracy {kk_acc - acc:+.4f}, log loss {kk_ll - ll:+.4f}")


if __name__ == "__main__":
    main()
