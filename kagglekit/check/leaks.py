"""Leaks and traps beside the train/test shift: test rows that repeat train rows, ids or row order
that predict the target, columns that equal or add up to it, and columns constant or missing in
test only."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from ..data import CompetitionData
from ..spec import Target


def leak_findings(data: CompetitionData, feats: Any) -> list[str]:
    """Duplicate rows across the sets, ids or row order that predict the target, columns constant
    or missing in test only, and targets that other columns equal or add up to."""
    out = repeated_rows(feats, data)
    for t in data.comp.targets:
        if t.name in data.train.columns:
            out += order_leaks(data, t)
            if t.task == "regression" and pd.to_numeric(data.train[t.name], errors="coerce").notna().all():
                out += sum_leaks(data, feats, t)
    return out + test_only_columns(feats)


def repeated_rows(feats: Any, data: CompetitionData | None = None) -> list[str]:
    """Test rows equal to a train row on every used feature; with ``data``, how many of them have
    one known target (every such train row agrees) and how many copies disagree (noise, no leak)."""
    used = list(feats.plan.used)
    if not used:
        return []
    train_keys = pd.util.hash_pandas_object(feats.train[used].astype(str), index=False)
    test_keys = pd.util.hash_pandas_object(feats.test[used].astype(str), index=False)
    dup = test_keys.isin(set(train_keys))
    if not dup.any():
        return []
    head = f"{int(dup.sum())} test rows ({dup.mean():.1%}) equal a train row on every used feature"
    target = data.comp.submitted_targets[0].name if data is not None else None
    if data is None or target is None or target not in data.train.columns:
        return [f"{head}: their targets are known (and a model that memorises rows scores well on them)"]
    agree = pd.Series(data.train[target].astype(str).to_numpy(), index=train_keys.to_numpy()).groupby(level=0).nunique()
    known = int(test_keys[dup].map(agree).eq(1).sum())
    if known == dup.sum():
        return [f"{head}: their targets are known (and a model that memorises rows scores well on them)"]
    return [f"{head}: for {known} of them every such train row has the same {target} (known); for the other "
            f"{int(dup.sum()) - known} the train copies disagree (common values, not a leak)"]


def order_leaks(data: CompetitionData, t: Target) -> list[str]:
    """Row order, or a numeric id, that predicts target ``t``: AUC for a binary target, Spearman
    correlation for a number."""
    from ..metrics import binary_auc

    comp, y = data.comp, data.train[t.name]
    signals: dict[str, pd.Series] = {"row order": pd.Series(np.arange(len(y)), index=y.index)}
    if comp.id_column in data.train.columns:
        ids = pd.to_numeric(data.train[comp.id_column], errors="coerce")
        if ids.notna().mean() > 0.99 and ids.nunique() > 1:
            signals[f"the id column {comp.id_column!r}"] = ids
    out = []
    for what, s in signals.items():
        if t.is_classification:
            codes = pd.factorize(y)[0]
            if t.task != "binary" or len(set(codes)) != 2:
                continue
            a = binary_auc(codes, s.rank().to_numpy())
            strength, bar, label = max(a, 1 - a), 0.6, f"AUC {max(a, 1 - a):.2f}"
        else:
            strength = abs(s.corr(pd.to_numeric(y, errors="coerce"), method="spearman"))
            bar, label = 0.3, f"Spearman {strength:.2f}"
        if strength >= bar:
            out.append(f"{what} predicts {t.name!r} ({label}): the file is sorted by something tied to "
                       "the target; shuffle before splitting, and never use it as a feature")
    return out


def sum_leaks(data: CompetitionData, feats: Any, t: Target) -> list[str]:
    """Numeric columns equal to the target ``t``, or two that add up to it on every train row."""
    comp, used = data.comp, list(feats.plan.used)
    y = pd.to_numeric(data.train[t.name], errors="coerce").to_numpy(float)
    nums = [c for c in data.train.columns if c not in (t.name, comp.id_column)
            and pd.api.types.is_numeric_dtype(data.train[c])][:60]
    out = [f"{c!r} equals the target {t.name!r}: drop it" for c in nums
           if np.allclose(data.train[c].to_numpy(float), y, equal_nan=False)]
    for a, b in combinations(nums, 2):
        if np.allclose(data.train[a].to_numpy(float) + data.train[b].to_numpy(float), y):
            gone = [c for c in (a, b) if c not in used]
            state = ("already dropped (" + ", ".join(f"{c}: {feats.plan.dropped.get(c, '')}" for c in gone)
                     + ")") if len(gone) == 2 else f"drop {', '.join(c for c in (a, b) if c in used)}"
            out.append(f"{a} + {b} = {t.name} on every train row: a target leak, {state}")
    return out


def test_only_columns(feats: Any) -> list[str]:
    """Columns missing in every test row, or constant in test, but not in train."""
    out = []
    for c in feats.plan.used:
        tr, te = feats.train[c], feats.test[c]
        if te.isna().all() and not tr.isna().all():
            out.append(f"{c!r} is missing in every test row but not in train: drop it")
        elif te.nunique(dropna=True) <= 1 < tr.nunique(dropna=True):
            out.append(f"{c!r} is constant in test ({te.dropna().iloc[0] if te.notna().any() else 'missing'}) "
                       f"but varies in train: the model's use of it cannot help on test")
    return out
