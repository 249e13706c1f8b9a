"""Ensemble of the titanic baseline's rf and lgbm runs, by each method, against its members' CV."""

from __future__ import annotations

from _common import kk, need_shared, newest_runs

if __name__ == "__main__":
    need_shared("titanic")
    kk("baseline", "titanic", "--no-submit")
    members = newest_runs("titanic", 2)
    ids = [m["id"] for m in members]
    best = max(m["cv"] for m in members)
    print("titanic members: " + ", ".join(f"{m['models'][0]} {m['cv']:.4f}" for m in members))
    for method in ("mean", "rank", "weights", "greedy", "stacking"):
        kk("ensemble", "titanic", *ids, "--method", method, "--no-submit")
        run = newest_runs("titanic", 1)[0]
        print(f"  {method:9s} CV {run['cv']:.4f}  ({'>=' if run['cv'] >= best else '<'} best member {best:.4f})")
    print("(accuracy: 'rank' is for ranking metrics such as AUC, listed for completeness)")
