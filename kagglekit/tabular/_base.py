"""The tabular model families' common ground: the registry (``register_model``), the base class
:class:`TabularModel` and the helpers every family shares. A family is one module
(``forest``, ``gbm``, ``catboosting``, ``linear``) registered in :mod:`.models`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SpecError, did_you_mean, one_of

MODELS: dict[str, type[TabularModel]] = {}


def register_model(name: str) -> Callable[[type[TabularModel]], type[TabularModel]]:
    def wrap(cls: type[TabularModel]) -> type[TabularModel]:
        cls.name = name
        MODELS[name] = cls
        return cls

    return wrap


LARGE_ROWS = 100_000  # a Playground-sized table: the families take their large-table settings from here


def is_large(n_rows: int | None) -> bool:
    """Whether a table of ``n_rows`` training rows gets the large-table settings (Kaggle's monthly
    Playground tables have 100,000 to 1,000,000 rows).

    >>> is_large(891), is_large(520_960)
    (False, True)
    """
    return n_rows is not None and n_rows >= LARGE_ROWS


def default_n_jobs() -> int:
    """Every core this process may use (``kagglekit.machine.cpu_cores``)."""
    from ..machine import cpu_cores

    return cpu_cores()


def auto_n_jobs(X: pd.DataFrame, n_jobs: int | None) -> int:
    """Threads for one fit: all cores on large tables, one on small ones, where threads cost more
    in start-up and, when another process shares the cores, in OpenMP spin-waiting than they save
    (measured: 3.7x slower with 2 threads beside a busy process, 1.4x with 1).
    scikit-learn's forests use joblib threads, which do not spin, and keep all cores."""
    if n_jobs:
        return n_jobs
    return default_n_jobs() if X.shape[0] * X.shape[1] >= 1_000_000 else 1


def full_proba(proba: np.ndarray, seen: np.ndarray, n_classes: int) -> np.ndarray:
    """Expand probabilities over the classes a fold saw to all ``n_classes`` columns."""
    if proba.shape[1] == n_classes:
        return proba
    out = np.zeros((len(proba), n_classes))
    out[:, seen.astype(int)] = proba
    return out


class TabularModel:
    """Shared plumbing: parameter merging and validation."""

    name = "base"
    defaults: dict[str, Any] = {}
    # a family's seconds a fold, the mean over the 26 tables of bench/tabular_suite.py on 2 cores
    # (bench/family_times.py, the run "kk lpt 17"): the fold pool queues the costliest family's folds first
    fold_cost: float = 1.0
    # a module its folds import that takes seconds to (torch): a fold worker imports it only when that pays
    fold_setup: str | None = None

    def __init__(self, *, task: str, n_classes: int = 0, params: dict[str, Any] | None = None, seed: int = 42,
                 n_jobs: int | None = None, time_limit: float | None = None, n_rows: int | None = None):
        self.task = task
        self.n_classes = n_classes
        self.params = params or {}
        self.seed = seed
        self.n_jobs = n_jobs
        self.time_limit = time_limit
        self.n_rows = n_rows  # the table's training rows: some defaults scale with it (``defaults_for``)

    def resolved_params(self) -> dict[str, Any]:
        unknown = [k for k in self.params if k not in self.defaults and k not in self.extra_params]
        if unknown:
            k = unknown[0]
            raise SpecError(f"unknown parameter {self.name}.{k}: known parameters are "
                            f"{one_of(sorted(self.defaults) + sorted(self.extra_params))}"
                            f"{did_you_mean(k, list(self.defaults) + list(self.extra_params))}")
        return {**self.defaults_for(self.task, self.n_rows), **self.params}

    extra_params: tuple[str, ...] = ()

    def defaults_for(self, task: str, n_rows: int | None = None) -> dict[str, Any]:
        """The defaults for ``task`` on a table of ``n_rows`` training rows (None: unknown, the
        small-table ones): a pure function, so a run's recorded parameters are what it used."""
        return dict(self.defaults)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:  # pragma: no cover - overridden
        return {}
