"""Progressive resizing on real photos: ``kk train --sizes small,final`` against ``--sizes final`` at
the same total epochs, same folds, the spec ``kk new`` writes.

    python bench/progressive.py [--sets flowers-small,fashion-products] [--single 128] [--progressive 96,128]
        [--epochs 3] [--arch tf_efficientnet_lite0] [--out bench/results/progressive.jsonl]
    python bench/progressive.py --compare RUN_A RUN_B [--label TEXT]  # two finished runs of one set, paired

Each schedule is one ``bench/multitarget.py --skip-floor`` run (kk's epochs split across the sizes,
the first size getting the odd one; real ImageNet weights from ``KK_WEIGHTS_DIR``). Printed per
submitted target: each run's out-of-fold score, its wall time, and the paired gap over the photos
(a class target: right in A minus right in B; a number target: B's squared error minus A's) with
its standard error, so "within noise" has a figure. One JSON line per comparison goes to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from _common import SHARED

HERE = Path(__file__).parent


def paired(run_a: Path, run_b: Path, data_root: Path) -> dict:
    """Per submitted target: the two runs' OOF scores and the paired per-photo gap (A better: +)."""
    from kagglekit.data import load_data
    from kagglekit.runs import Run
    from kagglekit.workspace import Workspace

    a, b = Run(run_a), Run(run_b)
    name = a.meta["competition"]
    os.environ["KK_DATA_DIR"] = str(data_root)
    ws = Workspace.at(run_a.parents[2])
    comp = ws.competition(name)
    truth = load_data(comp, ws).train.set_index(comp.id_column)
    out: dict = {"set": name, "metric": comp.metric, "targets": {}}
    for t in comp.submitted_targets:
        y = truth[t.name]
        per = []
        for run in (a, b):
            oof = run.oof().set_index(comp.id_column).loc[y.index]
            if t.is_classification:
                cols = [c for c in oof.columns if c.startswith(f"{t.name}:")]
                pred = np.array([c.split(":", 1)[1] for c in cols])[oof[cols].to_numpy().argmax(1)]
                per.append((pred == y.astype(str).to_numpy()).astype(float))
            else:
                per.append(-(oof[t.name].to_numpy(float) - y.to_numpy(float)) ** 2)
        d = per[0] - per[1]
        out["targets"][t.name] = {
            "a": float(per[0].mean()) if t.is_classification else float(np.sqrt(-per[0].mean())),
            "b": float(per[1].mean()) if t.is_classification else float(np.sqrt(-per[1].mean())),
            "gap": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d))),
            "a_only": int((d > 0).sum()), "b_only": int((d < 0).sum()),
            "score": "accuracy" if t.is_classification else "rmse"}
    out["runs"] = {"a": {"path": str(run_a), "sizes": a.config.get("sizes"), "seconds": a.meta["timings"]["train_s"]},
                   "b": {"path": str(run_b), "sizes": b.config.get("sizes"), "seconds": b.meta["timings"]["train_s"]}}
    return out


def show(row: dict) -> None:
    ra, rb = row["runs"]["a"], row["runs"]["b"]
    print(f"{row['set']}: A sizes {ra['sizes']} ({ra['seconds']:.0f} s) "
          f"vs B sizes {rb['sizes']} ({rb['seconds']:.0f} s)")
    for name, t in row["targets"].items():
        verdict = "A ahead" if t["gap"] > 2 * t["se"] else "B ahead" if t["gap"] < -2 * t["se"] else "within noise"
        unit = "accuracy" if t["score"] == "accuracy" else "squared error"
        print(f"  {name}: {t['score']} A {t['a']:.4f}, B {t['b']:.4f}; paired {unit} gap (A better +) "
              f"{t['gap']:+.4f} ± {t['se']:.4f} ({verdict}); right only in A {t['a_only']}, only in B {t['b_only']}")


def train(name: str, sizes: str, epochs: int, args, *extra: str) -> Path:
    """One kk run via bench/multitarget.py (``extra``: more of its flags); its run folder."""
    cmd = [sys.executable, str(HERE / "multitarget.py"), "--sets", name, "--sizes", sizes, "--epochs", str(epochs),
           "--skip-floor", "--arch", args.arch, "--data", str(args.data), "--out", str(args.out), *extra]
    line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return Path(json.loads(line)["run"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="flowers-small,fashion-products")
    ap.add_argument("--single", default="128")
    ap.add_argument("--progressive", default="96,128")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--arch", default="tf_efficientnet_lite0")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("KK_SHARED_DATA", SHARED)))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "progressive.jsonl")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"))
    ap.add_argument("--label", default="progressive vs single size", help="what --compare compares")
    args = ap.parse_args()
    pairs = [tuple(args.compare)] if args.compare else [
        (train(n, args.progressive, args.epochs, args), train(n, args.single, args.epochs, args))
        for n in args.sets.split(",")]
    for run_a, run_b in pairs:
        row = paired(run_a, run_b, args.data)
        show(row)
        with open(args.out, "a") as f:
            f.write(json.dumps({"comparison": args.label, **row}) + "\n")


if __name__ == "__main__":
    main()
