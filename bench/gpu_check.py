"""The GPU check: kk doctor, then training img/s on 1 GPU against N (--devices N), AMP on and off,
--compile on and off, and a real-photo fine-tune against a plain hand-written AMP loop, each
figure printed with the GPU's name. For a machine with a GPU (a Kaggle notebook, a workstation);
without one it runs the same steps on the CPU at a small scale (--smoke) and claims no GPU figure.

    python bench/gpu_check.py                 # on a GPU machine: flowers-small, tf_efficientnet_lite0
    python bench/gpu_check.py --smoke         # anywhere: the same steps, tiny, on the CPU

Data: ../shared/data/flowers-small (or generated shapes with --smoke); weights: KK_WEIGHTS_DIR
(default ~/.cache/kk-weights).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, SHARED

ARCH = "tf_efficientnet_lite0"


def doctor() -> dict:
    out = subprocess.run([sys.executable, "-m", "kagglekit", "doctor", "--json"], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "KK_HOME": str(REPO)})
    report = json.loads(out.stdout)
    plan = report["plan"] or {}
    gpus = ", ".join(f"{g['name']} (sm {g['capability']}, {g['memory_gib']} GiB)" for g in report["gpus"]) or "none"
    print(f"kk doctor: exit {out.returncode}; GPUs: {gpus}; {plan.get('device')} {plan.get('precision')} "
          f"(grad scaler {plan.get('grad_scaler')}), {plan.get('workers')} workers, batch {plan.get('batch_size')}; "
          f"smoke test {report.get('smoke', {}).get('images_per_s') if report.get('smoke') else '-'} img/s")
    for c in report["checks"]:
        if c["status"] != "ok":
            print(f"  {c['status']}: {c['name']}: {c['detail']}")
    return report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny, on the CPU: checks the script, no GPU figures")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    import kagglekit as kk
    from kagglekit.data import load_data
    from kagglekit.folds import get_folds
    from kagglekit.machine import read_machine
    from kagglekit.workspace import Workspace

    report = doctor()
    machine = read_machine()
    gpu = machine.gpus[0].name if machine.gpus else None
    if gpu is None and not args.smoke:
        sys.exit("no GPU here: nothing to measure (python bench/gpu_check.py --smoke runs the steps on the CPU)")
    where = f"{len(machine.gpus)} x {gpu}" if gpu else f"CPU ({machine.cores} cores), smoke run: no GPU figures"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "competitions").mkdir()
        if args.smoke:
            from kagglekit.builtin import shapes

            data_dir = root / "data" / "smoke"
            data_dir.mkdir(parents=True)
            shapes(data_dir, n=240, n_test=40, size=32)
            (root / "competitions" / "smoke").mkdir()
            (root / "competitions" / "smoke" / "competition.toml").write_text(
                'id = "image_id"\nmetric = "accuracy"\nkind = "image"\n[[targets]]\nname = "shape"\n'
                'task = "multiclass"\n[cv]\nkind = "stratified"\nk = 5\n[image]\nlayout = "csv"\n'
                'train_path = "images/{image_id}"\ntest_path = "images/{image_id}"\n')
            ws = Workspace.at(root)
            comp, arch, common = ws.competition("smoke"), "resnet10t", {"pretrained": False, "sizes": (32,)}
        else:
            from kagglekit.scaffold import new_competition

            os.environ["KK_DATA_DIR"] = str(SHARED)
            weights = Path(os.environ.get("KK_WEIGHTS_DIR", "~/.cache/kk-weights")).expanduser()
            ws = Workspace.at(root)
            new_competition("flowers-small", ws)
            comp, arch, common = ws.competition("flowers-small"), ARCH, {"weights": str(weights)}
        print(f"\nthroughput of kk train ({arch}, fold 0, {args.epochs} epochs) on {where}")
        print(f"{'setting':<34} {'train img/s':>12} {'wall s':>8}")
        settings = [("AMP (auto precision)", {}), ("fp32 (AMP off)", {"precision": "fp32"}),
                    ("AMP + --compile", {"compile": True})]
        if len(machine.gpus) > 1 or args.smoke:
            n = max(2, len(machine.gpus))
            settings.append((f"AMP, --devices {n}", {"devices": n}))
        for label, extra in settings:
            t = time.perf_counter()
            r = kk.train(comp, workspace=ws, arch=arch, folds=(0,), epochs=args.epochs, submit=False, new=True,
                         **common, **extra)
            print(f"{label:<34} {r.images_per_second:>12.1f} {time.perf_counter() - t:>8.0f}", flush=True)

        data = load_data(comp, ws)
        folds = get_folds(data, ws)
        tr, va = np.flatnonzero(folds.fold != 0), np.flatnonzero(folds.fold == 0)
        target = comp.targets[0].name
        classes = sorted(data.train[target].unique())
        y = np.searchsorted(classes, data.train[target].to_numpy())
        t = time.perf_counter()
        r = kk.train(comp, workspace=ws, arch=arch, folds=(0,), submit=False, new=True, **common)
        kk_wall = time.perf_counter() - t
        oof = r.run.oof().set_index(comp.id_column).loc[data.train[comp.id_column]]
        p_kk = oof[[f"{target}:{c}" for c in classes]].to_numpy()[va]
        rows = [("kk train (defaults)", p_kk, r.images_per_second, kk_wall)]
        if not args.smoke:
            from _handloop import hand_fold, preload

            from kagglekit.vision.model import find_weight_file

            weights = find_weight_file(weights, ARCH) or weights  # the hand loop takes a file, not a folder
            plan = report["plan"]
            t = time.perf_counter()
            x = preload(data.train["path"].tolist(), ARCH, weights)
            p_hand, ips = hand_fold(x, y, tr, va, ARCH, weights, len(classes), int(r.run.config["epochs"]), seed=0,
                                    device=plan["device"], precision=plan["precision"])
            rows.append((f"hand-written AMP loop ({plan['precision']})", p_hand, ips, time.perf_counter() - t))
        from sklearn.metrics import log_loss

        print(f"\nfine-tune, fold 0 ({len(va)} validation photos) on {where}")
        print(f"{'method':<34} {'accuracy':>8} {'logloss':>8} {'train img/s':>12} {'wall s':>8}")
        for name, p, ips, wall in rows:
            p = p / p.sum(axis=1, keepdims=True)  # float32 probabilities: sum to 1 within sklearn's tolerance
            print(f"{name:<34} {(p.argmax(1) == y[va]).mean():>8.4f} "
                  f"{log_loss(y[va], np.clip(p, 1e-7, 1), labels=range(len(classes))):>8.4f} {ips:>12.1f} {wall:>8.0f}")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}")


if __name__ == "__main__":
    main()
