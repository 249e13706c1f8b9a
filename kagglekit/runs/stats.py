"""Fold noise: the standard error of a CV score, and the paired per-fold gap between two runs on
the same folds, with the rule that two runs within two standard errors are indistinguishable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..metrics import get_metric


@dataclass(frozen=True)
class Gap:
    """How far a run trails another on the same folds: the mean per-fold difference (positive:
    ``other`` is worse) and its standard error. Within two standard errors the two are
    indistinguishable: the order is fold-sampling luck, not skill."""

    diff: float
    se: float

    @property
    def indistinguishable(self) -> bool:
        return abs(self.diff) <= 2 * self.se

    def __str__(self) -> str:
        return f"{self.diff:.4f} ± {self.se:.4f} (s.e. of the paired fold differences)"


def cv_se(fold_scores: list[float]) -> float | None:
    """Standard error of a CV mean over ``fold_scores``."""
    k = len(fold_scores)
    return float(np.std(fold_scores, ddof=1) / np.sqrt(k)) if k > 1 else None


def fold_gap(metric: str, best: list[float], other: list[float]) -> Gap | None:
    """Paired comparison of two runs' per-fold scores (same folds); None when not comparable."""
    if len(best) != len(other) or len(best) < 2:
        return None
    m = get_metric(metric)
    d = np.asarray(other, float) - np.asarray(best, float)
    d = -d if m.greater_is_better else d  # positive: other is worse
    return Gap(float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))))


