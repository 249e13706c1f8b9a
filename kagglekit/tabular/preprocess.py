"""Tabular preprocessing fitted on each training fold only (fastai's TabularPandas behaviour).

:func:`plan_columns` decides once, from column types and cardinality (never the target), which
columns are continuous, which categorical and which are dropped and why.
:class:`TabularPreprocessor` then learns categories and medians from a training fold alone:
categories unseen in that fold, and missing ones, map to code 0; missing continuous values get the
fold's median and a ``<col>_na`` indicator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MISSING_CODE = 0  # categories missing or unseen in the training fold


@dataclass(frozen=True)
class ColumnPlan:
    continuous: tuple[str, ...]
    categorical: tuple[str, ...]
    dropped: dict[str, str] = field(default_factory=dict)  # column -> reason

    @property
    def used(self) -> tuple[str, ...]:
        return self.continuous + self.categorical


def plan_columns(df: pd.DataFrame, *, exclude: dict[str, str] | None = None, categorical: tuple[str, ...] = (),
                 max_cardinality: float = 0.5, max_categories: int = 50) -> ColumnPlan:
    """Classify the columns of ``df``. ``exclude`` maps columns to drop to the reason."""
    dropped = dict(exclude or {})
    cont, cat = [], []
    n = max(len(df), 1)
    for col in df.columns:
        if col in dropped:
            continue
        s = df[col]
        if s.isna().all():
            dropped[col] = "all values missing"
        elif s.nunique(dropna=True) <= 1:
            dropped[col] = "a single value"
        elif col in categorical or isinstance(s.dtype, pd.CategoricalDtype):
            cat.append(col)
        elif pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            cont.append(col)
        elif pd.api.types.is_datetime64_any_dtype(s):
            dropped[col] = "a date: list it in [tabular] date_columns to use its parts"
        else:
            nunique = s.nunique(dropna=True)
            if nunique > max_categories and nunique / n > max_cardinality:
                dropped[col] = (f"text or id-like: {nunique} distinct values in {n} rows; derive features "
                                "from it in features.py")
            else:
                cat.append(col)
    return ColumnPlan(tuple(cont), tuple(cat), dropped)


class TabularPreprocessor:
    """Fit on a training fold; transform any rows into an all-numeric frame.

    Categorical columns become integer codes ``1..K`` (``0`` for missing or unseen categories);
    continuous columns with missing values in the training fold are filled with its median and get
    a ``<col>_na`` indicator.
    """

    def __init__(self, *, plan: ColumnPlan):
        self.plan = plan

    def fit(self, df: pd.DataFrame) -> TabularPreprocessor:
        self.categories_: dict[str, pd.Index] = {}
        for col in self.plan.categorical:
            values = df[col].dropna().astype(str)
            self.categories_[col] = pd.Index(sorted(values.unique()))
        self.medians_: dict[str, float] = {}
        self.na_columns_: list[str] = []
        for col in self.plan.continuous:
            s = pd.to_numeric(df[col], errors="coerce").astype(float)
            med = s.median()
            self.medians_[col] = 0.0 if np.isnan(med) else float(med)
            if s.isna().any():
                self.na_columns_.append(col)
        self.feature_names_ = [*self.plan.continuous, *(f"{c}_na" for c in self.na_columns_),
                               *self.plan.categorical]
        return self

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        out: dict[str, np.ndarray] = {}
        for col in self.plan.continuous:
            s = pd.to_numeric(df[col], errors="coerce").astype(float).to_numpy()
            out[col] = np.where(np.isnan(s), self.medians_[col], s).astype(np.float32)
        for col in self.na_columns_:
            out[f"{col}_na"] = pd.to_numeric(df[col], errors="coerce").isna().to_numpy().astype(np.float32)
        for col in self.plan.categorical:
            values = df[col].astype(str).where(df[col].notna(), None)
            codes = self.categories_[col].get_indexer(values)  # -1 for unseen and missing
            out[col] = (codes + 1).astype(np.int32)
        return pd.DataFrame(out, index=df.index)[self.feature_names_]

    def fit_transform(self, df: pd.DataFrame) -> pd.DataFrame:
        return self.fit(df).transform(df)
