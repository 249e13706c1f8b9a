"""One model with a head per target against one model per target, on real photos (issue #32, 3a).

    python bench/per_target.py [--set fashion-products] [--sizes 128] [--epochs 3]
        [--joint RUN]          # a finished run of kk new's spec (all heads) at the same settings
        [--arch tf_efficientnet_lite0] [--out bench/results/per_target.jsonl]

The joint run trains kk new's spec unedited: one backbone, one head per submitted target, the losses
summed. Each solo run trains the same spec with every other target's loss weighted 1e-6
(``bench/multitarget.py --solo``): the same folds, photos, schedule and epochs, but only that
target steers the backbone, as a model trained for it alone would. Printed per submitted target:
the joint and the solo out-of-fold scores, the paired gap over the photos (joint better: +) ± its
standard error, and the wall time of the joint run against the solo runs together.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _common import SHARED
from progressive import HERE, paired, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="fashion-products")
    ap.add_argument("--sizes", default="128")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--joint", type=Path, default=None, help="a finished run of the unedited spec, same settings")
    ap.add_argument("--arch", default="tf_efficientnet_lite0")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("KK_SHARED_DATA", SHARED)))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "per_target.jsonl")
    args = ap.parse_args()
    joint = args.joint or train(args.set, args.sizes, args.epochs, args)
    from kagglekit.runs import Run

    comp_targets = Run(joint).targets
    names = [n for n, t in comp_targets.items() if t.get("submit", True)]
    solo_seconds = 0.0
    row: dict = {"comparison": "one model, all heads vs one model per target", "set": args.set, "targets": {}}
    for name in names:
        solo = train(args.set, args.sizes, args.epochs, args, "--solo", name)
        pair = paired(joint, solo, args.data)
        t, solo_run = pair["targets"][name], pair["runs"]["b"]
        verdict = "joint ahead" if t["gap"] > 2 * t["se"] else "solo ahead" if t["gap"] < -2 * t["se"] else "noise"
        print(f"{name}: {t['score']} joint {t['a']:.4f}, solo {t['b']:.4f}; paired gap (joint better +) "
              f"{t['gap']:+.4f} ± {t['se']:.4f} ({verdict}); solo run {solo_run['seconds']:.0f} s", flush=True)
        row["targets"][name] = {**t, "solo_run": solo_run["path"], "solo_seconds": solo_run["seconds"]}
        row["joint"] = pair["runs"]["a"]
        solo_seconds += solo_run["seconds"]
    row["solo_seconds_total"] = solo_seconds
    print(f"wall: joint {row['joint']['seconds']:.0f} s, solo runs together {solo_seconds:.0f} s")
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
