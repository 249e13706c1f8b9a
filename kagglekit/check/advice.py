"""Which ``[cv]`` mimics how the test set was drawn (time-ordered, grouped or random), and the date
parts the competition's date columns made."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..data import CompetitionData, split_parts
from ..spec import Competition
from .report import ALIKE_AUC, FeatureCheck


def date_parts(comp: Competition, columns: list[str]) -> dict[str, tuple[str, str]]:
    """column -> (date column, part) for the date parts the competition's date columns made."""
    from ..tabular.dates import DATE_PARTS, TIME_PARTS, date_prefix

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
    parts = [c for col, _ in comp.tabular.split for c in split_parts(data.train.columns, col)]
    found = []  # (-unseen, groups, column, reason) for each column whose groups the test split kept whole
    for c in dict.fromkeys(feats.plan.categorical + tuple(feats.plan.dropped) + tuple(parts)):
        if c not in data.train.columns or c not in data.test.columns or c == comp.id_column:
            continue
        s = data.train[c]
        groups = s.nunique()
        in_groups = s.map(s.value_counts()).gt(1).mean()  # rows that share their group with another row
        if groups < 20 or in_groups < 0.1:
            continue
        unseen = ~data.test[c].dropna().isin(set(s.dropna()))
        if len(unseen) and unseen.mean() > 0.9:
            reason = (f"{unseen.mean():.0%} of test rows have a {c!r} never seen in train ({groups} groups in "
                      f"train, {in_groups:.0%} of its rows sharing theirs): folds must keep each {c} whole")
            found.append((-unseen.mean(), groups, c, reason))
    if found:  # the grouping the test split kept whole best; of equals, the coarsest (keeps finer ones whole)
        *_, c, reason = min(found)
        return {"kind": "group", "group": c}, reason
    kind = "stratified" if any(t.is_classification for t in comp.targets) else "kfold"
    return {"kind": kind}, "the test rows look like a random sample of the same population"


def drops(auc: float, checks: list[FeatureCheck], parts: dict[str, tuple[str, str]]) -> list[str]:
    """The features to drop when train and test differ: those whose test values mostly lie outside
    the train range (trees predict the range's edge for all of those rows), and the day-of-year and
    elapsed-time parts of a date whose days are unseen."""
    if auc < ALIKE_AUC:
        return []
    unseen_days = any(parts.get(d.name, ("", ""))[1] == "Day" and d.out_of_range >= 0.5 for d in checks)
    return [f.name for f in checks if f.out_of_range >= 0.5
            or (unseen_days and f.name in parts and parts[f.name][1] in ("Dayofyear", "Elapsed"))]
