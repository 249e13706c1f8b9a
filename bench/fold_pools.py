"""torch imported once before the neural family's pool forks, against every worker importing it.

    python bench/fold_pools.py [--tables titanic,wine,modeldata-stackoverflow] [--repeats 3]

``kk baseline`` fits small tables' folds in forked processes (``kagglekit/tabular/_workers.py``). A
family that imports a module of its own (``TabularModel.imports``: torch for ``nn``) gets a pool
forked after ``kk baseline`` imported it, beside the other families' folds ("once"). The plain
equivalent: no such declaration, every worker imports torch at its first network fold ("each").
Each table is the suite's first outer fold (``bench/tabular_suite.py``) written as a competition
and given ``kk new`` once; then ``kk baseline`` runs in a fresh process per try, the two ways in
turn, ``--repeats`` times. Printed: each way's wall seconds per try, means, and the paired gap.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tabular_suite import HERE, _env, outer_folds, tables, write_competition

EACH = "from kagglekit.tabular import nn; nn.TabularNNModel.imports = ()\n"
RUN = "import sys; from kagglekit.cli import main; sys.argv = ['kk', 'baseline', {name!r}]; main()\n"


def baseline_seconds(folder: Path, name: str, way: str) -> float:
    for sub in ("runs", "submissions"):
        shutil.rmtree(folder / sub, ignore_errors=True)
    code = (EACH if way == "each" else "") + RUN.format(name=name)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], cwd=folder, env=_env(folder), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"kk baseline {name} ({way}) failed:\n{r.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", default="titanic,wine,modeldata-stackoverflow")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", default="/tmp/kk_fold_pools")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "fold_pools.jsonl")
    args = ap.parse_args()
    tabs = tables()
    for name in args.tables.split(","):
        t = tabs[name]
        folder = Path(args.work) / name
        shutil.rmtree(folder, ignore_errors=True)
        write_competition(t, folder, outer_folds(t, 5, seed=0)[0])
        (folder / "competitions").mkdir(parents=True)
        if t.shipped:
            shutil.copytree(Path(__file__).resolve().parents[1] / "competitions" / name, folder / "competitions" / name)
            spec = folder / "competitions" / name / "competition.toml"
            text = spec.read_text().replace('"gender_submission.csv"', '"sample_submission.csv"')
            spec.write_text(text.replace('"sampleSubmission.csv"', '"sample_submission.csv"'))
        else:
            subprocess.run([sys.executable, "-m", "kagglekit", "new", name], cwd=folder, env=_env(folder),
                           capture_output=True, check=True)
        seconds: dict[str, list[float]] = {"once": [], "each": []}
        for r in range(args.repeats):
            for way in (("once", "each") if r % 2 == 0 else ("each", "once")):
                seconds[way].append(baseline_seconds(folder, name, way))
        d = np.array(seconds["once"]) - np.array(seconds["each"])
        row = {"table": name, "rows": len(t.frame), "cores": os.cpu_count(), **seconds,
               "gap": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None}
        print(f"{name}: once {np.mean(seconds['once']):.1f} s, each {np.mean(seconds['each']):.1f} s, "
              f"paired gap {row['gap']:+.2f} s ({seconds})", flush=True)
        with args.out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
