"""A tabular competition's features: the competition's feature hook, then ``add_datepart`` on its
date columns, over train and test together; then the column plan (which columns are used, which
dropped and why). Used by the baseline, ``kk check`` and ``kk tune``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data import CompetitionData, split_parts
from ..errors import SpecError
from ..spec import Competition
from .dates import add_datepart
from .hooks import apply_hook, hook_path, load_hook
from .preprocess import ColumnPlan, plan_columns


@dataclass
class TabularFeatures:
    """Raw feature frames (before per-fold preprocessing) and the column plan."""

    train: pd.DataFrame
    test: pd.DataFrame
    plan: ColumnPlan


def build_features(data: CompetitionData) -> TabularFeatures:
    """Feature hook, then ``add_datepart`` on the date columns, over train and test together;
    then the column plan (which columns are used, which dropped and why)."""
    comp = data.comp
    target_cols = [t.name for t in comp.targets]
    train_x = data.train.drop(columns=target_cols)
    full = pd.concat([train_x, data.test[[c for c in data.test.columns if c != "path"]]], ignore_index=True)
    hook = load_hook(comp)
    if hook is not None:
        before = set(full.columns)
        full = apply_hook(hook, full, comp)
        _refuse_target_copies(full.iloc[:len(train_x)], data, sorted(set(full.columns) - before), comp)
    for col in comp.tabular.date_columns:
        if col in full.columns:
            full = add_datepart(full, col, time=comp.tabular.date_time)
    full = _part_counts(full, comp)
    exclude = {c: "listed in [tabular] drop" for c in comp.tabular.drop if c in full.columns}
    for col, _ in comp.tabular.split:
        if col in full.columns and col not in exclude:
            exclude[col] = f"cut into {', '.join(split_parts(full.columns, col))} by [tabular] split"
    if comp.id_column in full.columns:
        exclude[comp.id_column] = "the id column"
    for c in train_x.columns:  # a column the test file lacks would be all-missing at prediction time
        if c in full.columns and c not in data.test.columns and c not in exclude:
            exclude[c] = "absent from the test file (a likely leak)"
    n = len(train_x)
    for c in full.columns:  # e.g. a hook's feature made from a column the test file lacks
        if c not in exclude and full[c].iloc[n:].isna().all() and full[c].iloc[:n].notna().any() and len(full) > n:
            exclude[c] = "missing in every test row: the model could not use it there"
    plan = plan_columns(full.iloc[:n], exclude=exclude, categorical=comp.tabular.categorical,
                        max_cardinality=comp.tabular.max_cardinality)
    return TabularFeatures(full.iloc[:n].reset_index(drop=True), full.iloc[n:].reset_index(drop=True), plan)


def _part_counts(full: pd.DataFrame, comp: Competition) -> pd.DataFrame:
    """A part of a split column with many values that repeat (a travel group, a cabin) also gives
    its group's size, ``<part>_count``, over train and test together (as Titanic's ticket counts)."""
    out = {}
    for col, _ in comp.tabular.split:
        for part in split_parts(full.columns, col):
            s = full[part]
            counts = s.map(s.value_counts())
            if s.nunique() > 50 and (counts > 1).mean() >= 0.1:
                out[f"{part}_count"] = counts.fillna(1).astype(float)
    return full.assign(**out) if out else full


def _refuse_target_copies(train_part: pd.DataFrame, data: CompetitionData, new: list[str], comp: Competition) -> None:
    """A hook's new column that equals a target on every train row is the target, read back in."""
    for t in comp.targets:
        y = data.train[t.name].reset_index(drop=True)
        for c in new:
            col = train_part[c].reset_index(drop=True)
            same = col.astype(str).equals(y.astype(str)) or (
                pd.api.types.is_numeric_dtype(col) and pd.api.types.is_numeric_dtype(y)
                and np.allclose(col.to_numpy(float), y.to_numpy(float), equal_nan=True))
            if same:
                raise SpecError(f"{hook_path(comp)}: add_features' column {c!r} equals the target {t.name!r} on "
                                "every train row: a target leak (CV would be perfect, the leaderboard not); "
                                "features must not read the target")
