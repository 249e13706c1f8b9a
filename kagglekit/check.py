"""``kk check``: does the CV tell the truth? Adversarial validation and leak checks.

A LightGBM classifier learns to tell train rows from test rows (after the competition's own
features: hook, date parts, column plan), cross-validated. An AUC near 0.5 means the two sets look
alike and random folds estimate the test score; a high AUC names the features that separate them,
which trees cannot extrapolate across. Beside it: features whose test values lie outside the
train range, duplicate rows across the sets, ids or row order that predict the target, columns
that are constant or missing in test only, and targets that other columns add up to. The report
ends in plain-words advice, and train rows are ranked by how test-like they look (a validation
set that resembles the test).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data import CompetitionData, load_data
from .errors import SpecError
from .files import unique_dir
from .runs import write_json
from .spec import Competition
from .workspace import Workspace, resolve

ALIKE_AUC = 0.6  # below: train and test look alike
SEPARATES_AUC = 0.7  # a single feature at or above this separates the sets on its own


@dataclass
class FeatureCheck:
    name: str
    gain: float  # share of the adversarial model's total gain
    auc: float  # train-vs-test AUC of this feature alone (0.5: no signal)
    out_of_range: float  # share of test rows outside the train range (or unseen categories)
    train_range: str
    test_range: str


@dataclass
class CheckReport:
    competition: str
    auc: float  # cross-validated train-vs-test AUC on all used features
    auc_after_drop: float | None  # the same without the suggested drops
    features: list[FeatureCheck]
    drop: list[str]  # suggested [tabular] drop
    cv: dict[str, Any]  # suggested [cv] table: {"kind": ...} (+ "time" or "group")
    cv_reason: str
    findings: list[str]  # leak and sanity findings, one line each
    verdict: list[str]  # plain-words advice
    folder: Path | None = None
    n_train: int = 0
    n_test: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "folder": str(self.folder) if self.folder else None}


def _encoded(feats: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    from .tabular.preprocess import TabularPreprocessor

    both = pd.concat([feats.train, feats.test], ignore_index=True)
    pre = TabularPreprocessor(plan=feats.plan).fit(both)  # no target involved: fitting on both is fine
    return pre.transform(feats.train), pre.transform(feats.test)


def adversarial_auc(train_x: pd.DataFrame, test_x: pd.DataFrame, *, k: int = 5, seed: int = 42,
                    categorical: tuple[str, ...] = ()) -> tuple[float, np.ndarray, pd.Series]:
    """Cross-validated AUC of LightGBM telling ``test_x`` rows from ``train_x`` rows.
    Returns (AUC, out-of-fold P(test) of the train rows, share of gain per feature)."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    x = pd.concat([train_x, test_x], ignore_index=True)
    is_test = np.r_[np.zeros(len(train_x)), np.ones(len(test_x))]
    oof = np.zeros(len(x))
    gain = pd.Series(0.0, index=x.columns)
    cats = [c for c in categorical if c in x.columns]
    for tr, va in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, is_test):
        model = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=31, subsample=0.8,
                                   subsample_freq=1, colsample_bytree=0.8, random_state=seed, verbose=-1,
                                   n_jobs=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x.iloc[tr], is_test[tr], categorical_feature=cats or "auto")
            oof[va] = np.asarray(model.predict_proba(x.iloc[va]))[:, 1]
        gain += model.booster_.feature_importance("gain")
    total = gain.sum()
    return float(roc_auc_score(is_test, oof)), oof[:len(train_x)], gain / total if total > 0 else gain


def single_feature_auc(train_col: pd.Series, test_col: pd.Series, bins: int = 64, seed: int = 0) -> float:
    """Train-vs-test AUC of one feature alone: P(test | value bin), estimated on one half of the
    rows and scored on the other (both ways), so a feature with many distinct values does not
    look separating by chance. Symmetric: 0.5 means no signal, 1.0 full separation."""
    from sklearn.metrics import roc_auc_score

    values = pd.concat([train_col, test_col], ignore_index=True)
    if values.nunique(dropna=False) > bins and pd.api.types.is_numeric_dtype(values):
        # quantile bins of the values (ties stay in one bin: ranking them by position would put
        # train's copies of a value in lower bins than test's), missing values a bin of their own
        codes = pd.qcut(values, bins, labels=False, duplicates="drop").fillna(-1).to_numpy(np.int64)
    else:
        codes = pd.factorize(values, use_na_sentinel=False)[0].astype(np.int64)
    is_test = np.r_[np.zeros(len(train_col)), np.ones(len(test_col))]
    half = np.random.default_rng(seed).random(len(values)) < 0.5
    score = np.zeros(len(values))
    prior = is_test.mean()
    for fit, apply in ((half, ~half), (~half, half)):
        stats = pd.DataFrame({"c": codes[fit], "t": is_test[fit]}).groupby("c")["t"].agg(["sum", "count"])
        rate = (stats["sum"] + prior) / (stats["count"] + 1)  # one pseudo-row at the prior
        score[apply] = pd.Series(codes[apply]).map(rate).fillna(prior).to_numpy()
    if len(np.unique(is_test)) < 2:
        return 0.5
    auc = float(roc_auc_score(is_test, score))
    return max(auc, 1 - auc)


def _range(s: pd.Series) -> str:
    s = s.dropna()
    if s.empty:
        return "all missing"
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return f"{s.min():g} to {s.max():g}"
    return f"{s.nunique()} values"


def _out_of_range(train_col: pd.Series, test_col: pd.Series, categorical: bool) -> float:
    t = test_col.dropna()
    if t.empty:
        return 0.0
    if categorical or not pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t):
        return float((~t.astype(str).isin(set(train_col.dropna().astype(str)))).mean())
    tr = train_col.dropna()
    if tr.empty:
        return 1.0
    return float(((t < tr.min()) | (t > tr.max())).mean())


def leak_findings(data: CompetitionData, feats: Any) -> list[str]:
    """Duplicate rows across the sets, ids or row order that predict the target, columns constant
    or missing in test only, and targets that other columns equal or add up to."""
    from sklearn.metrics import roc_auc_score

    comp = data.comp
    out: list[str] = []
    used = list(feats.plan.used)
    if used:
        train_keys = pd.util.hash_pandas_object(feats.train[used].astype(str), index=False)
        test_keys = pd.util.hash_pandas_object(feats.test[used].astype(str), index=False)
        dup = test_keys.isin(set(train_keys))
        if dup.any():
            out.append(f"{int(dup.sum())} test rows ({dup.mean():.1%}) equal a train row on every used feature: "
                       "their targets are known (and a model that memorises rows scores well on them)")
    for t in comp.targets:
        if t.name not in data.train.columns:
            continue
        y = data.train[t.name]
        numeric_y = pd.to_numeric(y, errors="coerce")
        signals: dict[str, pd.Series] = {"row order": pd.Series(np.arange(len(y)), index=y.index)}
        if comp.id_column in data.train.columns:
            ids = pd.to_numeric(data.train[comp.id_column], errors="coerce")
            if ids.notna().mean() > 0.99 and ids.nunique() > 1:
                signals[f"the id column {comp.id_column!r}"] = ids
        for what, s in signals.items():
            if t.is_classification:
                codes = pd.factorize(y)[0]
                if t.task == "binary" and len(set(codes)) == 2:
                    a = roc_auc_score(codes, s.rank())
                    strength, bar = max(a, 1 - a), 0.6
                    label = f"AUC {strength:.2f}"
                else:
                    continue
            else:
                strength = abs(s.corr(numeric_y, method="spearman"))
                bar, label = 0.3, f"Spearman {strength:.2f}"
            if strength >= bar:
                out.append(f"{what} predicts {t.name!r} ({label}): the file is sorted by something tied to "
                           "the target; shuffle before splitting, and never use it as a feature")
        if t.task == "regression" and numeric_y.notna().all():
            nums = [c for c in data.train.columns if c not in (t.name, comp.id_column)
                    and pd.api.types.is_numeric_dtype(data.train[c])][:60]
            for c in nums:
                if np.allclose(data.train[c].to_numpy(float), numeric_y.to_numpy(float), equal_nan=False):
                    out.append(f"{c!r} equals the target {t.name!r}: drop it")
            for a, b in combinations(nums, 2):
                total = data.train[a].to_numpy(float) + data.train[b].to_numpy(float)
                if np.allclose(total, numeric_y.to_numpy(float)):
                    gone = [c for c in (a, b) if c not in used]
                    state = ("already dropped (" + ", ".join(f"{c}: {feats.plan.dropped.get(c, '')}" for c in gone)
                             + ")") if len(gone) == 2 else f"drop {', '.join(c for c in (a, b) if c in used)}"
                    out.append(f"{a} + {b} = {t.name} on every train row: a target leak, {state}")
    for c in feats.plan.used:
        tr, te = feats.train[c], feats.test[c]
        if te.isna().all() and not tr.isna().all():
            out.append(f"{c!r} is missing in every test row but not in train: drop it")
        elif te.nunique(dropna=True) <= 1 < tr.nunique(dropna=True):
            out.append(f"{c!r} is constant in test ({te.dropna().iloc[0] if te.notna().any() else 'missing'}) "
                       f"but varies in train: the model's use of it cannot help on test")
    return out


def _date_parts(comp: Competition, columns: list[str]) -> dict[str, tuple[str, str]]:
    """column -> (date column, part) for the date parts the competition's date columns made."""
    from .tabular.dates import DATE_PARTS, TIME_PARTS, date_prefix

    out = {}
    for col in comp.tabular.date_columns:
        prefix = date_prefix(col)
        for part in (*DATE_PARTS, *TIME_PARTS, "Elapsed"):
            if prefix + part in columns:
                out[prefix + part] = (col, part)
    return out


def suggest_cv(data: CompetitionData, feats: Any) -> tuple[dict[str, Any], str]:
    """A ``[cv]`` table that mimics how the test set was drawn, and why."""
    comp = data.comp
    for col in comp.tabular.date_columns:
        if col in data.train.columns and col in data.test.columns:
            tr = pd.to_datetime(data.train[col], errors="coerce", format="mixed")
            te = pd.to_datetime(data.test[col], errors="coerce", format="mixed")
            if tr.notna().any() and te.notna().any() and te.min() > tr.max():
                return {"kind": "time-ordered", "time": col}, (
                    f"every test {col} ({te.min():%Y-%m-%d} on) follows the last train one "
                    f"({tr.max():%Y-%m-%d}): validate on the latest rows")
    n = len(data.train)
    for c in feats.plan.categorical + tuple(feats.plan.dropped):
        if c not in data.train.columns or c not in data.test.columns or c == comp.id_column:
            continue
        s = data.train[c]
        groups = s.nunique()
        if not 20 <= groups <= n / 2:
            continue
        unseen = ~data.test[c].dropna().isin(set(s.dropna()))
        if len(unseen) and unseen.mean() > 0.9:
            return {"kind": "group", "group": c}, (
                f"{unseen.mean():.0%} of test rows have a {c!r} never seen in train ({groups} groups "
                f"repeat in train): folds must keep each {c} whole")
    kind = "stratified" if any(t.is_classification for t in comp.targets) else "kfold"
    return {"kind": kind}, "the test rows look like a random sample of the same population"


def check(competition: str | Competition, *, workspace: Workspace | None = None, write: bool = True,
          arch: str | None = None, weights: str | None = None) -> CheckReport:
    """Adversarial validation and leak checks (see the module doc). Image competitions are
    compared on pretrained embeddings (``arch``/``weights``, else the spec's ``[train]`` and
    ``KK_WEIGHTS_DIR``) when weights are at hand, and checked for byte-identical images."""
    from .tabular.baseline import build_features

    ws, comp = resolve(competition, workspace)
    data = load_data(comp, ws)
    if comp.kind == "image":
        return check_images(data, ws, arch=arch, weights=weights, write=write)
    feats = build_features(data)
    if not feats.plan.used:
        raise SpecError(f"{comp.spec_file}: no usable feature columns, nothing to compare")
    xtr, xte = _encoded(feats)
    cats = feats.plan.categorical
    auc, test_likeness, gain = adversarial_auc(xtr, xte, seed=comp.cv.seed, categorical=cats)
    checks = []
    for c in feats.plan.used:
        checks.append(FeatureCheck(c, float(gain.get(c, 0.0)), single_feature_auc(feats.train[c], feats.test[c]),
                                   _out_of_range(feats.train[c], feats.test[c], c in cats),
                                   _range(feats.train[c]), _range(feats.test[c])))
    checks.sort(key=lambda f: (-max(f.auc, 0.5 + f.out_of_range / 2), -f.gain))
    cv, cv_reason = suggest_cv(data, feats)
    parts = _date_parts(comp, list(feats.plan.used))
    drop: list[str] = []
    if auc >= ALIKE_AUC:
        for f in checks:
            if f.out_of_range >= 0.5:  # trees predict the edge of the train range for all of these rows
                drop.append(f.name)
            elif f.name in parts and parts[f.name][1] in ("Dayofyear", "Elapsed") and \
                    any(parts.get(d.name, ("", ""))[1] == "Day" and d.out_of_range >= 0.5 for d in checks):
                drop.append(f.name)  # day-of-year and elapsed time carry the same unseen days
    auc_after = None
    if drop:
        keep = [c for c in xtr.columns if c not in drop]
        auc_after, _, _ = adversarial_auc(xtr[keep], xte[keep], seed=comp.cv.seed, categorical=cats)
    findings = leak_findings(data, feats)
    verdict = _verdict(comp, auc, auc_after, checks, drop, cv, cv_reason, parts)
    report = CheckReport(comp.name, auc, auc_after, checks, drop, cv, cv_reason, findings, verdict,
                         n_train=len(xtr), n_test=len(xte))
    if write:
        report.folder = _write(ws, comp, data, report, test_likeness)
    return report


def check_images(data: CompetitionData, ws: Workspace, *, arch: str | None, weights: str | None,
                 write: bool) -> CheckReport:
    """Byte-identical images across the sets, and adversarial validation on pretrained embeddings
    (a logistic regression telling test embeddings from train ones, cross-validated)."""
    import os

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ._image_tables import duplicate_images

    comp = data.comp
    if "path" not in data.test.columns:
        raise SpecError(f"{comp.spec_file}: [image] has no test_path/test_dir, so test images cannot be compared")
    train_paths, test_paths = data.train["path"].tolist(), data.test["path"].tolist()
    _, leaks = duplicate_images(train_paths, test_paths)
    findings = []
    if leaks:
        findings.append(f"{len(leaks)} test images are byte-identical to training images (e.g. {leaks[0][0]} = "
                        f"{leaks[0][1]}): their labels are known")
    auc, test_likeness, extra = float("nan"), np.full(len(train_paths), np.nan), {}
    verdict = []
    if not data.has_test:
        verdict.append("no test images (a labelled set, cross-validated only): nothing to compare the training "
                       "images with")
    elif weights or os.environ.get("KK_WEIGHTS_DIR"):
        from .vision.embed import image_embeddings

        emb_train, emb_test, source = image_embeddings(data, ws, arch=arch, weights=weights)
        x = np.concatenate([emb_train, emb_test])
        is_test = np.r_[np.zeros(len(emb_train)), np.ones(len(emb_test))]
        k = int(min(5, is_test.sum(), (1 - is_test).sum()))
        if k >= 2:
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
            p = cross_val_predict(model, x, is_test, method="predict_proba",
                                  cv=StratifiedKFold(k, shuffle=True, random_state=comp.cv.seed))[:, 1]
            auc, test_likeness = float(roc_auc_score(is_test, p)), p[:len(emb_train)]
        extra = {"embeddings": source}
        if auc != auc:
            verdict.append("too few test images for a train-vs-test comparison")
        elif auc < ALIKE_AUC:
            verdict.append(f"train and test images look alike (AUC {auc:.2f} on pretrained embeddings from {source}): "
                           "random folds are fine")
        else:
            verdict.append(f"train and test images differ (AUC {auc:.2f} on pretrained embeddings from {source}): "
                           "the top rows of the report's test_likeness.csv are the most test-like training "
                           "images: look at them, and validate on them")
    else:
        verdict.append("no pretrained weights at hand (--weights or KK_WEIGHTS_DIR): only byte-identical images "
                       "were compared")
    report = CheckReport(comp.name, auc, None, [], [], {"kind": comp.cv.kind}, "the spec's own folds", findings,
                         verdict, n_train=len(train_paths), n_test=len(test_paths), extra=extra)
    if write:
        report.folder = _write(ws, comp, data, report, test_likeness)
    return report


def _verdict(comp: Competition, auc: float, auc_after: float | None, checks: list[FeatureCheck], drop: list[str],
             cv: dict[str, Any], cv_reason: str, parts: dict[str, tuple[str, str]]) -> list[str]:
    out = []
    if auc < ALIKE_AUC:
        out.append(f"train and test look alike (train-vs-test AUC {auc:.2f}): random folds are fine; "
                   "differences between models smaller than the folds' noise are luck, not skill")
    else:
        top = [f for f in checks if f.auc >= SEPARATES_AUC or f.out_of_range >= 0.5][:3] or checks[:1]
        named = "; ".join(f"{f.name} (AUC {f.auc:.2f}, train {f.train_range}, test {f.test_range})" for f in top)
        out.append(f"train and test differ (train-vs-test AUC {auc:.2f}); what separates them: {named}")
        if drop:
            lines = ", ".join(f'"{c}"' for c in drop)
            out.append(f"test values of {', '.join(drop)} lie outside what train saw, so trees extrapolate from its "
                       f"edge: drop them with [tabular] drop = [..., {lines}]")
            if auc_after is not None:
                out.append(f"without them the sets are still told apart (AUC {auc_after:.2f}) by features whose test "
                           "values all lie inside the train range (combinations such as week and weekday): "
                           "that is a shift trees can interpolate, not extrapolate")
    if cv["kind"] in ("time-ordered", "group"):
        table = ", ".join(f'{k} = "{v}"' for k, v in cv.items())
        if cv["kind"] != comp.cv.kind:
            out.append(f"{cv_reason}: use [cv] {table} (the spec's kind is {comp.cv.kind!r})")
        else:
            out.append(f"{cv_reason}; the spec's [cv] already does this")
    return out


def _write(ws: Workspace, comp: Competition, data: CompetitionData, report: CheckReport,
           test_likeness: np.ndarray) -> Path:
    folder = unique_dir(ws.runs_dir(comp.name) / "checks", f"{datetime.now():%Y%m%d-%H%M%S}")  # never an earlier one
    ids = data.train[comp.id_column] if comp.id_column in data.train.columns else pd.Series(range(len(data.train)))
    ranked = pd.DataFrame({comp.id_column: ids.to_numpy(), "p_test": test_likeness})
    ranked = ranked.sort_values("p_test", ascending=False, kind="stable")
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    ranked.to_csv(folder / "test_likeness.csv", index=False)
    report.folder = folder
    write_json(folder / "report.json", report.as_json())
    if report.features:
        _plot(report, folder / "separation.png")
    return folder


def _plot(report: CheckReport, path: Path) -> None:
    from matplotlib.figure import Figure

    feats = report.features[:20][::-1]
    fig = Figure(figsize=(7, 0.3 * len(feats) + 1.2))
    ax = fig.subplots()
    ax.barh([f.name for f in feats], [f.auc for f in feats], color=["C3" if f.name in report.drop else "C0"
                                                                    for f in feats])
    ax.axvline(0.5, color="grey", lw=1)
    ax.set_xlim(0.5, 1.0)
    ax.set_xlabel("train-vs-test AUC of the feature alone (red: suggested drop)")
    ax.set_title(f"{report.competition}: train vs test, AUC {report.auc:.2f} on all features")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
