"""``kk new <slug>``: write ``competitions/<name>/competition.toml`` from a competition's files,
guessing the id column, the targets, their task, the metric and the date columns. The spec is
commented so the user can check each guess."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .data import read_table
from .errors import DataError, SpecError
from .spec import is_classification, parse_spec, validate_name
from .workspace import Workspace


@dataclass
class Guess:
    files: dict[str, str | None]
    id_column: str
    targets: list[tuple[str, str]]  # (name, task)
    metric: str
    date_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    split: dict[str, str] = field(default_factory=dict)  # compound columns ("B/0/P") and their separator
    image: dict[str, Any] | None = None  # image competitions: what _image_scaffold found
    submission: list[str] | None = None  # submission columns when there is no sample submission
    auxiliary: list[tuple[str, str]] = field(default_factory=list)  # labels not submitted: candidate extra heads


def _find(folder: Path, *patterns: str) -> str | None:
    for pattern in patterns:
        hits = sorted(p.name for p in folder.glob(pattern) if p.is_file())
        if hits:
            return hits[0]
    return None


def _task(y: pd.Series, sample_col: pd.Series | None) -> str:
    values = y.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "binary" if values.nunique() == 2 else "multiclass"
    if values.nunique() == 2:
        return "binary"
    integer = (values == values.round()).all()
    if integer and values.nunique() <= 20 and (sample_col is None or pd.api.types.is_integer_dtype(sample_col)):
        return "multiclass"
    return "regression"


def _metric(task: str, y: pd.Series, sample_col: pd.Series | None) -> tuple[str, str]:
    if task == "binary":
        if sample_col is not None and pd.api.types.is_float_dtype(sample_col) and \
                ((sample_col > 0) & (sample_col < 1)).any():
            return "auc", "the sample submission holds probabilities"
        return "accuracy", "the sample submission holds labels"
    if task == "multiclass":
        return "accuracy", "a class label per row"
    if (y >= 0).all() and y.skew() > 1:
        return "rmsle", "a non-negative, right-skewed target"
    return "rmse", "a real-valued target"


def _dates(df: pd.DataFrame, exclude: set[str]) -> list[str]:
    out = []
    for c in df.columns:
        if c in exclude or pd.api.types.is_numeric_dtype(df[c]):
            continue
        s = df[c].dropna().astype(str).head(200)
        if len(s) and s.str.contains(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}").mean() > 0.95:
            parsed = pd.to_datetime(s, errors="coerce", format="mixed")
            if parsed.notna().mean() > 0.95:
                out.append(c)
    return out


SEPARATORS = ("/", "_", "-", "|", ":", ";")


def _splits(df: pd.DataFrame, exclude: set[str]) -> dict[str, str]:
    """Compound text columns: nearly every value holds the same separator the same number of times
    ("B/0/P", "0001_01"), at least one part repeats across rows, and no value holds a space (names and
    free text are not compound)."""
    out = {}
    for c in df.columns:
        if c in exclude or pd.api.types.is_numeric_dtype(df[c]):
            continue
        s = df[c].dropna().astype(str).head(2000)
        if len(s) < 20 or s.str.contains(" ").mean() > 0.05:
            continue
        for sep in SEPARATORS:
            n = s.str.count(re.escape(sep))
            if n.iloc[0] and (n == n.iloc[0]).mean() >= 0.95 and n.iloc[0] <= 4:
                parts = s.str.split(sep, regex=False, expand=True)
                if any(parts[i].nunique() < len(s) for i in parts.columns):
                    out[str(c)] = sep
                break
    return out


def guess(data_dir: Path) -> Guess:
    """Guess a spec from the files in ``data_dir``."""
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: no such folder; download the files first (kk new --download) or set KK_DATA_DIR")
    train_f = _find(data_dir, "train.csv", "train*.csv", "*train*.csv")
    test_f = _find(data_dir, "test.csv", "test*.csv", "*test*.csv")
    sample_f = _find(data_dir, "sample_submission.csv", "sample*ubmission*.csv", "*submission*.csv")
    sample = read_table(data_dir / sample_f) if sample_f else None
    train = read_table(data_dir / train_f) if train_f else None
    from ._image_scaffold import guess_image

    image = guess_image(data_dir, train, train_f, sample)
    if image is not None:
        return _image_guess(image, train, sample, {"train": train_f, "test": None, "sample_submission": sample_f})
    if train is None or train_f is None:
        raise DataError(f"{data_dir}: no training file (train*.csv) and no images; files: "
                        f"{', '.join(p.name for p in data_dir.iterdir())}")
    test = read_table(data_dir / test_f) if test_f else None
    notes: list[str] = []
    if sample is not None:
        id_col = str(sample.columns[0])
        targets = [str(c) for c in sample.columns[1:] if c in train.columns]
        notes.append(f"id and targets from {sample_f}'s columns")
    elif test is not None:
        targets = [str(c) for c in train.columns if c not in test.columns]
        id_col = next((str(c) for c in test.columns if test[c].is_unique and c in train.columns), str(test.columns[0]))
        notes.append(f"targets are the columns of {train_f} missing from {test_f}")
    else:
        raise DataError(f"{data_dir}: neither a test file nor a sample submission to tell the targets by")
    if not targets:
        raise DataError(f"{data_dir}: could not find a target: no column of the sample submission is in {train_f}")
    found: list[tuple[str, str]] = []
    metric = "accuracy"
    for t in targets:
        s_col = sample[t] if sample is not None and t in sample.columns else None
        task = _task(train[t], s_col)
        found.append((t, task))
        if len(found) == 1:
            metric, why = _metric(task, train[t], s_col)
            notes.append(f"metric {metric}: {why}")
    dates = _dates(train, {t for t, _ in found})
    split = _splits(train, {t for t, _ in found} | set(dates))
    if split:
        notes.append("compound columns cut into parts: " + ", ".join(f"{c} by {sep!r}" for c, sep in split.items()))
    return Guess({"train": train_f, "test": test_f, "sample_submission": sample_f}, id_col, found, metric, dates, notes,
                 split=split)


def _image_guess(found: dict[str, Any], train: pd.DataFrame | None, sample: pd.DataFrame | None,
                 files: dict[str, str | None]) -> Guess:
    notes = list(found["notes"])
    aux: list[tuple[str, str]] = []
    if found["layout"] == "csv":
        assert train is not None
        id_col = found["id"]
        names = [str(c) for c in (sample.columns[1:] if sample is not None else train.columns)
                 if c in train.columns and c != id_col] or [str(train.columns[1])]
        targets = [(t, _task(train[t], sample[t] if sample is not None else None)) for t in names]
        labels = [c for c in train.columns if str(c) not in names and c != id_col and 2 <= train[c].nunique() <= 100]
        aux = [(str(c), _task(train[c], None)) for c in labels]
        gaps = [f"{c} ({int(train[c].isna().sum())})" for c in labels if train[c].isna().any()]
        if gaps:  # switched on, such a head learns from the images that have its label
            notes.append("auxiliary-target candidates with missing labels (their rows are left out of that "
                         "head's loss and score): " + ", ".join(gaps))
        if sample is not None and len(names) > 1:
            notes.append(f"{len(names)} targets: every column of {files['sample_submission']} after the id")
    else:
        id_col = str(sample.columns[0]) if sample is not None else "id"
        target = str(sample.columns[1]) if sample is not None and len(sample.columns) > 1 else "label"
        targets = [(target, "binary" if len(found["labels"]) == 2 else "multiclass")]
    metric, why = _image_metric(targets, train, sample)
    notes.append(f"metric {metric}: {why}")
    if aux:
        notes.append("auxiliary-target candidates (labels not submitted; commented out in the spec): "
                     + ", ".join(a for a, _ in aux))
    return Guess(files, id_col, targets, metric, [], notes, image=found,
                 submission=None if sample is not None else [id_col, targets[0][0]], auxiliary=aux)


def _image_metric(targets: list[tuple[str, str]], train: pd.DataFrame | None,
                  sample: pd.DataFrame | None) -> tuple[str, str]:
    """The metric of an image competition's submitted targets (kk scores each target with it and
    averages them)."""
    tasks = {task for _, task in targets}
    first, task = targets[0]
    s_col = sample[first] if sample is not None and first in sample.columns else None
    if tasks == {"regression"}:
        assert train is not None
        metric, why = _metric("regression", train[first], s_col)
        return metric, why + (", the mean over the targets" if len(targets) > 1 else "")
    if "regression" in tasks:
        raise DataError(f"the sample submission mixes class targets and number targets "
                        f"({', '.join(f'{t}: {k}' for t, k in targets)}), which one metric cannot score; write "
                        "the spec by hand with one metric, or submit them as separate competitions")
    if len(targets) > 1:
        return "accuracy", "a class label per target and image: the mean of the per-target accuracies"
    if task == "binary" and s_col is not None and pd.api.types.is_float_dtype(s_col) and \
            ((s_col > 0) & (s_col < 1)).any():
        return "logloss", "the sample submission holds probabilities"
    return "accuracy", "a class label per image"


def render(name: str, slug: str, g: Guess, advice: Any = None) -> str:
    """The spec's text; ``advice`` (a :class:`kagglekit.check.CheckReport`) turns into comments,
    the suggested ``[cv]`` and ``[tabular] drop``."""
    if g.image is not None:
        from ._image_scaffold import render_image

        return render_image(slug, name, g, g.image)
    classification = is_classification(g.targets[0][1])
    lines = [
        f"# {name}: written by `kk new {slug}`. Every value below is a guess from the files: check it.",
        f'slug = "{slug}"',
        'kind = "tabular"',
        f'id = "{g.id_column}"',
        f'metric = "{g.metric}"            # check the competition\'s Evaluation page',
        'pipeline = "tabular"',
        "",
        "[files]",
        f'train = "{g.files["train"]}"',
        f'test = "{g.files["test"]}"' if g.files["test"] else "test = false",
        f'sample_submission = "{g.files["sample_submission"]}"' if g.files["sample_submission"]
        else "sample_submission = false",
        "",
    ]
    for t, task in g.targets:
        lines += ["[[targets]]", f'name = "{t}"', f'task = "{task}"', ""]
    cv = dict(advice.cv) if advice is not None else {"kind": "stratified" if classification else "kfold"}
    lines += [
        "# Make the folds mimic how the test set was split: random rows -> stratified/kfold;",
        "# a later period -> kind = \"time-ordered\" with time = \"<column>\"; groups -> kind = \"group\".",
    ]
    if advice is not None:
        lines += [f"# kk check: {advice.cv_reason}."]
        lines += [f"# kk check: {line}" for line in advice.verdict]
        lines += [f"# kk check (leak): {line}" for line in advice.findings]
    lines += ["[cv]", *(f'{k} = "{v}"' for k, v in cv.items()), "k = 5", "seed = 42", ""]
    drop = list(advice.drop) if advice is not None else []
    lines += [
        "[tabular]",
        f"date_columns = {g.date_columns!r}".replace("'", '"'),
        f"drop = {drop!r}".replace("'", '"') + "  # columns to leave out (leaks, ids, parts the test never shares)",
    ]
    if g.split:  # "B/0/P" -> Cabin_1, Cabin_2, Cabin_3; parts of many repeated values also give a _count
        lines.append("split = { " + ", ".join(f'{c} = "{sep}"' for c, sep in g.split.items()) + " }"
                     "  # compound columns cut into parts <col>_1, <col>_2, ...")
    lines.append("")
    return "\n".join(lines)


def new_competition(slug: str, ws: Workspace, *, name: str | None = None, download: bool = False) -> tuple[Path, Guess]:
    """Scaffold ``competitions/<name>/competition.toml`` (never overwriting an existing spec)."""
    name = validate_name(name or slug)
    validate_name(slug, "Kaggle slug")
    folder = ws.competitions_dir / name
    if (folder / "competition.toml").exists():
        raise SpecError(f"{folder / 'competition.toml'} already exists; edit it, or pick another --name")
    stub = parse_spec({"slug": slug, "id": "id", "metric": "accuracy", "targets": [{"name": "y", "task": "binary"}]},
                      folder / "competition.toml", name=name)
    data_dir = ws.data_dir(stub)
    if download and not (data_dir.is_dir() and any(data_dir.iterdir())):
        from .kaggle_client import download as kaggle_download

        data_dir = kaggle_download(stub, ws)
    g = guess(data_dir)
    text = render(name, slug, g)
    import tomllib

    comp = parse_spec(tomllib.loads(text), folder / "competition.toml", name=name)  # what we write must be valid
    if comp.kind == "tabular":  # run the train-vs-test check on the guess and write its advice in
        from .check import check
        from .errors import KKError

        try:
            report = check(comp, workspace=ws, write=False, max_rows=CHECK_ROWS)
        except KKError as e:
            g.notes.append(f"kk check could not run on the guess ({e}); run it once the spec is fixed")
        else:
            text = render(name, slug, g, report)
            parse_spec(tomllib.loads(text), folder / "competition.toml", name=name)
            g.notes += [f"kk check: {line}" for line in report.verdict]
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "competition.toml", "x") as f:
        f.write(text)
    return folder / "competition.toml", g


CHECK_ROWS = 200_000  # kk new's train-vs-test check on a sample: 69 s on 700,000 rows with all of them


def notes(g: Guess) -> list[str]:
    out: list[Any] = [f"id column: {g.id_column}"]
    out += [f"target {t}: {task}" for t, task in g.targets]
    out += [f"date columns: {', '.join(g.date_columns) or 'none'}"] + g.notes
    return out
