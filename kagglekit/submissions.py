"""Submissions: built from a run's test predictions in the sample submission's exact format,
validated before anything is written or sent, and scored locally when the labels are known."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data import CompetitionData, read_table
from .errors import SubmissionError
from .files import atomic_write_bytes
from .metrics import get_metric
from .predictions import encode_target, from_frame, target_classes
from .runs import Run
from .spec import Competition, Target
from .workspace import KAGGLE_WORKING, Workspace, on_kaggle, resolve


@dataclass(frozen=True)
class SubmissionColumn:
    """How one submitted target becomes submission columns."""

    target: Target
    classes: list[str] | None
    mode: str  # "value" | "label" | "proba" (one column, P(positive)) | "class-proba" | "topk"
    columns: list[str]


def shown(value: object, limit: int = 60) -> str:
    """A value as an error message shows it: repr, cut to ``limit`` characters (a 50 MB cell must
    not become a 50 MB message)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def expected_columns(comp: Competition, sample: pd.DataFrame | None) -> list[str]:
    if sample is not None:
        return [str(c) for c in sample.columns]
    if comp.submission_columns:
        return list(comp.submission_columns)
    return [comp.id_column] + [t.name for t in comp.submitted_targets]


def submission_columns(comp: Competition, data: CompetitionData) -> list[SubmissionColumn]:
    cols = expected_columns(comp, data.sample)
    metric = get_metric(comp.metric)
    plans = []
    for t in comp.submitted_targets:
        classes = target_classes(t, data.train[t.name])
        if classes is None:
            plans.append(SubmissionColumn(t, None, "value", [t.name]))
        elif t.name not in cols and all(c in cols for c in classes):
            plans.append(SubmissionColumn(t, classes, "class-proba", list(classes)))
        elif metric.name.startswith("map@"):
            plans.append(SubmissionColumn(t, classes, "topk", [t.name]))
        elif metric.needs == "proba" and len(classes) == 2:
            plans.append(SubmissionColumn(t, classes, "proba", [t.name]))
        else:
            plans.append(SubmissionColumn(t, classes, "label", [t.name]))
    missing = [c for p in plans for c in p.columns if c not in cols]
    if missing:
        raise SubmissionError(f"{comp.name}: the submission format has no column {missing[0]!r} for target "
                              f"{plans[0].target.name!r}; columns expected: {', '.join(cols)}. Set "
                              f"[submission] columns in {comp.spec_file}")
    filled = {comp.id_column, *(c for p in plans for c in p.columns)}
    unfilled = [c for c in cols if c not in filled and c not in comp.placeholders]
    if unfilled:
        names = ", ".join(repr(c) for c in unfilled)
        raise SubmissionError(
            f"{comp.name}: submission column(s) {names} are predicted by no target, so the submission would "
            f"hold the sample's placeholder values. Add a [[targets]] table for each in {comp.spec_file} "
            f"(kk new makes every submitted column a target), or, to submit the placeholders on purpose, "
            f"[submission] placeholders = [{names}]")
    return plans


def check_submission_format(data: CompetitionData, submit: bool = True) -> None:
    """Before training: every column the submission needs is predicted by a submitted target or
    declared a placeholder, so a long run never ends in a submission it cannot make honestly."""
    if submit and data.has_test:
        submission_columns(data.comp, data)


def _cast_like(values: Any, like: pd.Series | None) -> Any:
    if like is None:
        return values
    s = pd.Series(values)
    if pd.api.types.is_integer_dtype(like):
        try:
            return s.astype(float).round().astype(like.dtype).to_numpy()
        except (ValueError, TypeError):
            return s.to_numpy()
    if pd.api.types.is_float_dtype(like):
        try:
            return s.astype(float).to_numpy()
        except (ValueError, TypeError):
            return s.to_numpy()
    if pd.api.types.is_bool_dtype(like):
        return s.astype(str).str.lower().isin(["true", "1"]).to_numpy()
    return s.to_numpy()


def build_submission(data: CompetitionData, test_preds: pd.DataFrame,
                     targets: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """Turn a prediction frame (``<target>:<class>`` columns) into the submission's format."""
    comp = data.comp
    ids = (data.sample if data.sample is not None else data.test)[comp.id_column]
    preds = test_preds.set_index(comp.id_column)
    preds.index = preds.index.astype(str)
    key = ids.astype(str)
    missing = ~key.isin(preds.index)
    if missing.any():
        raise SubmissionError(f"{comp.name}: the run has no test prediction for {int(missing.sum())} ids, e.g. "
                              f"{key[missing].iloc[0]!r}; it was made on other test data")
    preds = preds.loc[key.to_numpy()]
    cols = expected_columns(comp, data.sample)
    out = pd.DataFrame({comp.id_column: ids.to_numpy()})
    metric = get_metric(comp.metric)
    for plan in submission_columns(comp, data):
        t = plan.target
        given = plan.classes if targets is None else targets[t.name]["classes"]  # None: a value target
        arr = from_frame(preds, t.name, given)
        classes: list[str] = list(given or [])
        like = data.sample[t.name] if data.sample is not None and t.name in data.sample else None
        if plan.mode == "value":
            if metric.name == "rmsle":
                arr = np.clip(arr, 0, None)
            out[t.name] = _cast_like(arr, like) if like is not None and not pd.api.types.is_integer_dtype(like) \
                else arr
        elif plan.mode == "class-proba":
            for j, c in enumerate(classes):
                out[c] = arr[:, j]
        elif plan.mode == "proba":
            out[t.name] = arr[:, 1]
        elif plan.mode == "topk":
            k = int(metric.name.split("@")[1])
            top = np.argsort(-arr, axis=1, kind="stable")[:, :k]
            out[t.name] = [" ".join(classes[j] for j in row) for row in top]
        else:
            labels = [classes[j] for j in arr.argmax(axis=1)]
            out[t.name] = _cast_like(labels, like) if like is not None else _cast_like(
                labels, data.train[t.name])
    for c in cols:  # a declared placeholder (submission_columns refuses any other unfilled column)
        if c not in out.columns:
            if data.sample is None:
                raise SubmissionError(f"{comp.name}: no prediction for submission column {c!r}")
            warnings.warn(f"{comp.name}: submission column {c!r} holds the sample submission's placeholder "
                          "values ([submission] placeholders): no model predicted it", stacklevel=2)
            out[c] = data.sample[c].to_numpy()
    return out[cols]


def validate_submission(data: CompetitionData, sub: pd.DataFrame, name: str = "submission") -> list[str]:
    """All the ways ``sub`` departs from the expected format; an empty list when it is valid."""
    comp = data.comp
    problems: list[str] = []
    cols = expected_columns(comp, data.sample)
    found = [str(c) for c in sub.columns]
    if found != cols:
        miss = [c for c in cols if c not in found]
        extra = [c for c in found if c not in cols]
        detail = (f"missing {miss}" if miss else "") + ("; " if miss and extra else "") + (
            f"unexpected {extra}" if extra else "") or "same names in another order"
        problems.append(f"{name}: columns are {found}, expected {cols} ({detail})")
    ref = data.sample if data.sample is not None else data.test
    if len(sub) != len(ref):
        problems.append(f"{name}: {len(sub)} rows, expected {len(ref)} (one per test id)")
    if comp.id_column in sub.columns:
        got, want = set(sub[comp.id_column].astype(str)), set(ref[comp.id_column].astype(str))
        if sub[comp.id_column].astype(str).duplicated().any():
            problems.append(f"{name}: id column {comp.id_column!r} has repeated ids")
        if want - got:
            problems.append(f"{name}: {len(want - got)} test ids are missing, e.g. {shown(sorted(want - got)[0])}")
        if got - want:
            problems.append(f"{name}: {len(got - want)} ids are not test ids, e.g. {shown(sorted(got - want)[0])}")
    if found == cols:
        try:
            plans = submission_columns(comp, data)
        except SubmissionError as e:
            return [*problems, str(e)]
        for plan in plans:
            for c in plan.columns:
                problems += _check_values(sub[c], plan, comp, name, c)
    return problems


def _check_values(col: pd.Series, plan: SubmissionColumn, comp: Competition, name: str, c: str) -> list[str]:
    if col.isna().any():
        return [f"{name}: column {c!r} has {int(col.isna().sum())} missing values (NaN)"]
    if plan.mode in ("label", "topk"):
        allowed = set(plan.classes or [])
        values = col.astype(str).str.split(" ").explode() if plan.mode == "topk" else col
        vals = set(pd.Series(values).map(lambda v: str(int(v)) if isinstance(v, float) and math.isfinite(v)
                                         and v == int(v) else str(v)))  # 1.0 is class "1"; inf is no class
        bad = vals - allowed
        if bad:
            return [f"{name}: column {c!r} has values outside the classes {sorted(allowed)[:10]}, "
                    f"e.g. {shown(sorted(bad)[0])}"]
        return []
    numeric = pd.to_numeric(col, errors="coerce")
    if numeric.isna().any():
        return [f"{name}: column {c!r} should be numeric, found e.g. {shown(col[numeric.isna()].iloc[0])}"]
    if not np.isfinite(numeric.to_numpy(float)).all():
        return [f"{name}: column {c!r} has infinite values"]
    if plan.mode in ("proba", "class-proba") and ((numeric < 0) | (numeric > 1)).any():
        return [f"{name}: column {c!r} holds probabilities but has values outside [0, 1]"]
    if comp.metric == "rmsle" and (numeric < 0).any():
        return [f"{name}: column {c!r} has negative values, which RMSLE cannot score"]
    return []


def check_submission(data: CompetitionData, sub: pd.DataFrame, name: str = "submission") -> None:
    """Raise :class:`SubmissionError` naming the first problem when ``sub`` is invalid."""
    problems = validate_submission(data, sub, name)
    if problems:
        more = f" (and {len(problems) - 1} more problems; 'kk validate' lists them)" if len(problems) > 1 else ""
        raise SubmissionError(problems[0] + more)


def read_submission(path: Path | str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: submission file not found")
    return read_table(path)


def _create(path: Path, body: bytes) -> bool:
    """Write ``body`` to a new file ``path`` (exclusive create: an existing file is never replaced;
    False then). A failed write (a full disk) leaves no truncated submission to upload by mistake."""
    try:
        with open(path, "xb") as f:
            f.write(body)
    except FileExistsError:
        return False
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return True


def write_submission(data: CompetitionData, ws: Workspace, sub: pd.DataFrame, stem: str) -> Path:
    """Validate and write ``submissions/<competition>/<stem>.csv`` (never overwriting a file: a
    different file of that name gets ``-2``, ``-3``; the same bytes again reuse the file); inside a
    Kaggle notebook also ``/kaggle/working/submission.csv``."""
    check_submission(data, sub, f"{stem}.csv")
    folder = ws.submissions_dir(data.comp.name)
    folder.mkdir(parents=True, exist_ok=True)
    body = sub.to_csv(index=False).encode()
    for i in range(1000):
        path = folder / (f"{stem}.csv" if i == 0 else f"{stem}-{i + 1}.csv")
        if path.is_file() and path.stat().st_size == len(body) and path.read_bytes() == body:
            break  # written before, identical: no -2.csv copy
        if _create(path, body):
            break
    if on_kaggle():
        atomic_write_bytes(KAGGLE_WORKING / "submission.csv", body)
    return path


def submit_run(data: CompetitionData, ws: Workspace, run: Run) -> tuple[Path | None, float | None]:
    """The end of every run that is submitted: its submission written (None without test images)
    and the held-out score of it, when the workspace holds the solution."""
    path = submission_from_run(data, ws, run)
    return path, run.scores.get("holdout")


def submission_from_run(data: CompetitionData, ws: Workspace, run: Run) -> Path | None:
    """Build, validate and write the submission of a run; records the path in the run. None for a
    labelled image set without test images (cross-validation only)."""
    if not data.has_test:
        return None
    sub = build_submission(data, run.test(), run.targets)
    path = write_submission(data, ws, sub, run.id)
    extra: dict[str, Any] = {"submission": str(path)}
    if data.solution is not None:
        extra["holdout"] = score_submission(data, sub, data.solution)
    run.update_scores(**extra)
    return path


def score_submission(data: CompetitionData, sub: pd.DataFrame, solution: pd.DataFrame) -> float:
    """Score a submission against a solution file (the hidden labels), with the competition metric."""
    comp = data.comp
    check_submission(data, sub)
    if comp.id_column not in solution.columns:
        raise SubmissionError(f"solution has no id column {comp.id_column!r}; columns: {list(solution.columns)}")
    sol = solution.set_index(solution[comp.id_column].astype(str))
    sub = sub.set_index(sub[comp.id_column].astype(str))
    missing = sol.index.difference(sub.index)
    if len(missing):
        raise SubmissionError(f"submission lacks {len(missing)} ids of the solution, e.g. {missing[0]!r}")
    sub = sub.loc[sol.index]
    metric = get_metric(comp.metric)
    scores = []
    for plan in submission_columns(comp, data):
        t = plan.target
        if t.name not in sol.columns:
            raise SubmissionError(f"solution has no column {t.name!r}; columns: {list(sol.columns)}")
        if plan.classes is None:
            scores.append(metric(sol[t.name].to_numpy(float), sub[t.name].to_numpy(float)))
            continue
        y = encode_target(sol[t.name], plan.classes)
        if plan.mode == "label":
            p = encode_target(sub[t.name], plan.classes)
            scores.append(float(metric.fn(y, p)))
        elif plan.mode == "proba":
            scores.append(metric(y, np.column_stack([1 - sub[t.name], sub[t.name]])))
        elif plan.mode == "class-proba":
            scores.append(metric(y, sub[plan.columns].to_numpy(float)))
        else:  # topk: rank matrix from the listed labels
            index = {c: i for i, c in enumerate(plan.classes)}
            mat = np.zeros((len(sub), len(plan.classes)))
            for r, labels in enumerate(sub[t.name].astype(str)):
                for rank, lab in enumerate(labels.split(" ")):
                    if lab in index:
                        mat[r, index[lab]] = 1.0 / (rank + 1)
            scores.append(metric(y, mat))
    return float(np.mean(scores))


def submission(competition: Any, run: str | None = None, *, workspace: Workspace | None = None) -> Path:
    """Write the validated submission of ``run`` (default: the best complete run by CV) and return
    its path; in a Kaggle notebook also ``/kaggle/working/submission.csv``."""
    from .data import load_data
    from .errors import RunError
    from .runs import RunStore

    ws, comp = resolve(competition, workspace)
    store = RunStore(ws, comp.name)
    if run is None:
        chosen = store.best(comp.metric)
        if chosen is None:
            raise RunError(f"{comp.name}: no complete run over every fold yet; run kk.baseline or kk.train first "
                           "(a run over some folds is completed by kk merge)")
    else:
        chosen = store.get(run)
    path = submission_from_run(load_data(comp, ws), ws, chosen)
    if path is None:
        from .errors import SubmissionError

        raise SubmissionError(f"{comp.name} has no test images (no test_dir, test file or sample submission in "
                              f"{comp.spec_file}): its runs are cross-validated, with nothing to submit")
    return path
