"""Shared CV folds: one fold id per training row, computed once per competition and reused.

Every run of a competition uses the same assignment (stored under ``runs/<name>/folds/``), which is
what makes out-of-fold predictions of different runs comparable and safe to ensemble. The
assignment's id is a hash of the CV scheme and of the data it was computed from; a run records it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from .data import CompetitionData
from .errors import DataError
from .files import atomic_write_bytes, atomic_write_parquet
from .spec import Competition, CVSpec
from .workspace import Workspace


@dataclass(frozen=True)
class Folds:
    """A fold assignment: ``fold[i]`` is the validation fold of training row ``i``."""

    id: str
    fold: np.ndarray
    k: int

    def split(self, only: list[int] | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(fold, train_index, valid_index)`` for each fold (or those in ``only``)."""
        for f in range(self.k):
            if only is not None and f not in only:
                continue
            yield f, np.flatnonzero(self.fold != f), np.flatnonzero(self.fold == f)


def assign_folds(train: pd.DataFrame, comp: Competition, cv: CVSpec | None = None) -> np.ndarray:
    """Assign a fold (0..k-1) to every row of ``train`` following the spec's CV scheme."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

    cv = cv or comp.cv
    n = len(train)
    if n < cv.k:
        raise DataError(f"{comp.name}: {n} training rows cannot be split into k={cv.k} folds; lower [cv] k")
    fold = np.full(n, -1, dtype=np.int64)
    X = np.zeros((n, 1))
    if cv.kind == "kfold":
        splits = KFold(cv.k, shuffle=True, random_state=cv.seed).split(X)
    elif cv.kind == "stratified":
        y = _strata(train, comp)
        counts = pd.Series(y).value_counts()
        if counts.min() < cv.k:
            # StratifiedKFold warns and degrades; merge the rarest classes into one stratum instead
            rare = set(counts[counts < cv.k].index)
            y = np.array(["__rare__" if v in rare else v for v in y], dtype=object)
        splits = StratifiedKFold(cv.k, shuffle=True, random_state=cv.seed).split(X, y)
    elif cv.kind == "group":
        groups = _groups(train, cv)
        n_groups = pd.Series(groups).nunique()
        if n_groups < cv.k:
            raise DataError(f"{comp.name}: group column {cv.group!r} has {n_groups} groups, fewer than k={cv.k}")
        splits = GroupKFold(cv.k, shuffle=True, random_state=cv.seed).split(X, groups=groups)
    elif cv.kind == "time-ordered":
        order = np.argsort(pd.to_datetime(train[cv.time], errors="coerce").to_numpy(), kind="stable")
        for f, block in enumerate(np.array_split(order, cv.k)):
            fold[block] = f
        return fold
    elif cv.kind == "multilabel-stratified":
        return _iterative_stratification(_label_matrix(train, comp), cv.k, cv.seed)
    else:  # pragma: no cover - the spec parser only lets known kinds through
        raise ValueError(cv.kind)
    for f, (_, valid) in enumerate(splits):
        fold[valid] = f
    return fold


def repeated_folds(data: CompetitionData, folds: Folds, repeats: int) -> list[Folds]:
    """Repeated k-fold: the shared folds, then ``repeats - 1`` more assignments of the same scheme
    with seeds ``seed + 1``, ``seed + 2``, ... (each a partition of every row into k folds)."""
    cv = data.comp.cv
    if repeats > 1 and cv.kind == "time-ordered":
        raise DataError(f"{data.comp.name}: repeats={repeats}, but a time-ordered CV has one split only; "
                        "use repeats = 1")
    out = [folds]
    for r in range(1, repeats):
        fold = assign_folds(data.train, data.comp, replace(cv, seed=cv.seed + r))
        out.append(Folds(f"{folds.id}-r{r}", fold, folds.k))
    return out


def _strata(train: pd.DataFrame, comp: Competition) -> np.ndarray:
    target = comp.submitted_targets[0]
    y = train[target.name]
    if target.task == "regression":  # stratify on quantile bins of the target
        return pd.qcut(y.rank(method="first"), q=min(10, len(y) // 2), labels=False).to_numpy()
    return y.astype(str).to_numpy()


def _groups(train: pd.DataFrame, cv: CVSpec) -> np.ndarray:
    g = train[cv.group]
    if cv.group_freq:
        g = pd.to_datetime(g, errors="coerce").dt.to_period(cv.group_freq).astype(str)
    return g.astype(str).to_numpy()


def _label_matrix(train: pd.DataFrame, comp: Competition) -> np.ndarray:
    """One indicator column per (classification target, class): the labels stratified jointly."""
    parts = []
    for t in comp.targets:
        if t.task == "multilabel":
            parts.append(train[t.name].astype(str).str.get_dummies(sep=" ").to_numpy())
        elif t.is_classification:
            parts.append(pd.get_dummies(train[t.name].astype(str)).to_numpy())
    if not parts:
        raise DataError(f"{comp.name}: cv kind 'multilabel-stratified' needs a classification target")
    return np.hstack(parts).astype(np.int64)


def _iterative_stratification(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Iterative stratification (Sechidis et al. 2011): rarest labels are placed first, each row
    going to the fold that most lacks it."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    fold = np.full(n, -1, dtype=np.int64)
    desired = np.full(k, n / k)
    desired_label = np.tile(labels.sum(axis=0) / k, (k, 1)).astype(float)
    remaining = np.ones(n, dtype=bool)
    while remaining.any():
        counts = labels[remaining].sum(axis=0)
        if counts.max() == 0:  # rows without any label: fill the emptiest folds
            for i in rng.permutation(np.flatnonzero(remaining)):
                f = int(np.argmax(desired + rng.random(k) * 1e-9))
                fold[i], desired[f] = f, desired[f] - 1
            break
        label = int(np.argmin(np.where(counts > 0, counts, np.inf)))
        rows = rng.permutation(np.flatnonzero(remaining & (labels[:, label] == 1)))
        for i in rows:
            need = desired_label[:, label]
            best = np.flatnonzero(need == need.max())
            if len(best) > 1:
                best = best[desired[best] == desired[best].max()]
            f = int(rng.choice(best))
            fold[i] = f
            desired[f] -= 1
            desired_label[f] -= labels[i]
            remaining[i] = False
    return fold


def _fingerprint(train: pd.DataFrame, comp: Competition) -> str:
    cols = [comp.id_column] + [c for c in (comp.cv.group, comp.cv.time) if c] + [t.name for t in comp.targets]
    scheme = {k: v for k, v in comp.cv.__dict__.items() if k != "repeats"}  # repeats reuse these folds first
    h = hashlib.sha1(json.dumps(scheme, sort_keys=True).encode())
    h.update(pd.util.hash_pandas_object(train[list(dict.fromkeys(cols))].astype(str), index=False).to_numpy()
             .tobytes())
    return h.hexdigest()[:12]


def folds_path(ws: Workspace, comp: Competition, fold_id: str) -> Path:
    return ws.runs_dir(comp.name) / "folds" / f"{fold_id}.parquet"


def _digest(ids: pd.Series, fold: np.ndarray) -> str:
    h = hashlib.sha1(pd.util.hash_pandas_object(ids.astype(str), index=False).to_numpy().tobytes())
    h.update(np.asarray(fold, np.int64).tobytes())
    return h.hexdigest()


def _checked(path: Path, stored: pd.DataFrame, comp: Competition, k: int | None) -> np.ndarray:
    """The stored fold column, after checking its values and its checksum (``<id>.sha1``, written
    beside it): a fold file edited by hand would silently mix validation rows into training."""
    fold = stored["fold"].to_numpy(np.int64)
    bad = (fold < 0) | (fold >= (k or np.iinfo(np.int64).max))
    if bad.any():
        raise DataError(f"{path}: fold values must be 0..{k - 1 if k else 'k-1'}, found {int(fold[bad][0])} "
                        f"({int(bad.sum())} rows); the file was edited. Move it aside and kagglekit rebuilds it "
                        "(runs made on it are suspect)")
    check = path.with_suffix(".sha1")
    digest = _digest(stored[comp.id_column], fold)
    if check.is_file():
        if check.read_text().strip() != digest:
            raise DataError(f"{path}: the fold assignment no longer matches its checksum {check.name} (rows moved "
                            "between folds or reordered); move both aside and kagglekit rebuilds them (runs made "
                            "on it are suspect)")
    else:  # written by an older kagglekit: checked from now on
        atomic_write_bytes(check, (digest + "\n").encode())
    return fold


def get_folds(data: CompetitionData, ws: Workspace) -> Folds:
    """The competition's shared fold assignment: loaded (and checked) if stored, else computed and
    stored. An unreadable fold file is moved aside and rebuilt; an edited one is refused."""
    comp, train = data.comp, data.train
    fold_id = _fingerprint(train, comp)
    path = folds_path(ws, comp, fold_id)
    if path.is_file():
        try:
            stored = pd.read_parquet(path)
        except Exception as e:  # a truncated or damaged file: keep it for inspection, rebuild
            aside = path.with_name(f"{path.name}.broken-{datetime.now():%Y%m%d-%H%M%S}")
            os.replace(path, aside)
            warnings.warn(f"{path}: unreadable ({type(e).__name__}); moved to {aside.name} and rebuilt", stacklevel=2)
            stored = None
        if stored is not None and stored[comp.id_column].astype(str).tolist() == \
                train[comp.id_column].astype(str).tolist():
            return Folds(fold_id, _checked(path, stored, comp, comp.cv.k), comp.cv.k)
    fold = assign_folds(train, comp)
    ids = train[comp.id_column]
    atomic_write_parquet(pd.DataFrame({comp.id_column: ids.to_numpy(), "fold": fold}), path)
    atomic_write_bytes(path.with_suffix(".sha1"), (_digest(ids, fold) + "\n").encode())
    return Folds(fold_id, fold, comp.cv.k)


def load_folds(ws: Workspace, comp: Competition, fold_id: str) -> pd.DataFrame:
    path = folds_path(ws, comp, fold_id)
    if not path.is_file():
        raise DataError(f"{path}: fold assignment {fold_id!r} not found")
    try:
        stored = pd.read_parquet(path)
    except Exception as e:
        raise DataError(f"{path}: unreadable ({type(e).__name__}); the runs made on these folds cannot be "
                        "blended or merged") from None
    _checked(path, stored, comp, None)  # k as the runs made on it had it
    return stored
