"""`kk train mnist-tiny`: a small timm model from scratch, 5-fold OOF accuracy and wall time."""

from __future__ import annotations

from _common import kk, need_shared, newest_runs

if __name__ == "__main__":
    need_shared("mnist-tiny")
    wall, r = kk("train", "mnist-tiny", "--arch", "resnet10t", "--sizes", "28", "--epochs", "4", "--pretrained",
                 "false", "--no-flip", "--lr", "3e-3")
    run = newest_runs("mnist-tiny", 1)[0]
    print("kk train mnist-tiny --arch resnet10t --sizes 28 --epochs 4 (from scratch, 5 folds)")
    print(f"  5-fold OOF accuracy {run['cv']:.4f} ± {run['cv_std']:.4f}, {wall:.1f} s wall")
    print("bar: >= 0.98 in under 300 s:", "met" if run["cv"] >= 0.98 and wall < 300 else "NOT met")
