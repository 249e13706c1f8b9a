"""Predictions in kagglekit's format: one column per class per target (``<target>:<class>``, or
``<target>`` for a value), keyed by the competition's id column; target encoding, and scoring with
the competition's metric. Every run (tabular, image, ensemble) stores its OOF and test
predictions this way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .metrics import get_metric
from .spec import Competition, Target

# -- prediction frames -------------------------------------------------------------------------

def to_frame(ids: np.ndarray | pd.Series, id_column: str, preds: Mapping[str, np.ndarray],
             targets: Mapping[str, dict[str, Any]]) -> pd.DataFrame:
    """Build a prediction frame from ``{target: array}`` (``(n, C)`` for classes, ``(n,)`` otherwise)."""
    cols: dict[str, Any] = {id_column: np.asarray(ids)}
    for name, arr in preds.items():
        classes = targets[name].get("classes")
        arr = np.asarray(arr, dtype=np.float64)
        if classes is None:
            cols[name] = arr.reshape(-1)
        else:
            for j, c in enumerate(classes):
                cols[f"{name}:{c}"] = arr[:, j]
    return pd.DataFrame(cols)


def from_frame(df: pd.DataFrame, name: str, classes: list[str] | None) -> np.ndarray:
    """The prediction array of target ``name`` from a prediction frame."""
    if classes is None:
        return df[name].to_numpy(np.float64)
    return df[[f"{name}:{c}" for c in classes]].to_numpy(np.float64)


def encode_target(y: pd.Series, classes: list[str] | None) -> np.ndarray:
    """Class indices for a classification target (classes as strings), float values otherwise."""
    if classes is None:
        return y.to_numpy(np.float64)
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index.get(v, -1) for v in _as_class_strings(y)], dtype=np.int64)


def _as_class_strings(y: pd.Series) -> list[str]:
    if pd.api.types.is_float_dtype(y) and (y.dropna() == y.dropna().round()).all():
        y = y.astype("Int64")  # 1.0 -> "1"
    return y.astype(str).tolist()


def target_classes(target: Target, y: pd.Series) -> list[str] | None:
    """Class labels of a classification target, as strings, in a stable order."""
    if not target.is_classification:
        return None
    if target.classes:
        return list(target.classes)
    values = pd.Series(_as_class_strings(y.dropna())).unique().tolist()  # an auxiliary label may be missing
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def target_info(comp: Competition, train: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``{target: {task, submit, classes}}`` as recorded in a run's meta."""
    return {t.name: {"task": t.task, "submit": t.submit, "classes": target_classes(t, train[t.name])}
            for t in comp.targets}


def metric_for(comp: Competition, target: Target) -> str:
    """The competition metric for submitted targets; a sensible default for auxiliary ones."""
    if target.submit:
        return comp.metric
    return "accuracy" if target.is_classification else "rmse"


def score_predictions(comp: Competition, train: pd.DataFrame, preds: Mapping[str, np.ndarray],
                      targets: Mapping[str, dict[str, Any]], rows: np.ndarray | None = None) -> dict[str, float]:
    """Score predictions per target (``rows`` selects training rows); key ``"cv"`` holds the
    competition score: the metric averaged over submitted targets."""
    out: dict[str, float] = {}
    sub = []
    for t in comp.targets:
        if t.name not in preds:
            continue
        y = encode_target(train[t.name], targets[t.name]["classes"])
        p = np.asarray(preds[t.name])
        labelled = train[t.name].notna().to_numpy()  # an auxiliary target's missing labels are not scored
        keep = labelled if rows is None else rows[labelled[rows]]
        if rows is not None or not labelled.all():
            y, p = y[keep], p[keep]
        s = get_metric(metric_for(comp, t))(y, p)
        out[t.name] = s
        if t.submit:
            sub.append(s)
    out["cv"] = float(np.mean(sub)) if sub else float("nan")
    return out
