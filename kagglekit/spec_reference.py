"""The competition spec's reference: every key of ``competition.toml`` with its type, default,
example and meaning, declared once.

The documentation's spec page is rendered from :data:`KEYS` (:func:`reference_markdown`), and
``tests/test_spec_reference.py`` holds it against the parser both ways: each key the parser accepts
is here, each example here parses, and each default shown is the dataclass's own. The ``[train]``
keys are rendered from :class:`~kagglekit.trainconfig.TrainConfig` itself. Standard library only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .spec import CVSpec, Files, ImageSpec, TabularSpec, Target
from .trainconfig import SPEC_KEYS, TrainConfig

# the tables whose defaults are a dataclass's field defaults
_DATACLASS = {"files": Files, "cv": CVSpec, "tabular": TabularSpec, "image": ImageSpec, "targets": Target}

TABLES: dict[str, str] = {
    "": "Top level: what the competition is.",
    "files": "`[files]`: file names inside the data folder (`data/<slug>/`, or `data_dir`).",
    "targets": "`[[targets]]`: one table per column to predict; several make a multi-target competition.",
    "cv": "`[cv]`: the folds every run of the competition shares. Say in a comment why they mimic the test "
          "split.",
    "tabular": "`[tabular]`: the tabular baseline's features.",
    "image": "`[image]`: where the photos are (image competitions).",
    "submission": "`[submission]`: the submission's columns, when there is no sample submission, and "
                  "the columns no model predicts.",
}


@dataclass(frozen=True)
class SpecKey:
    """One key of ``competition.toml``: ``table`` is "" for the top level."""

    table: str
    key: str
    type: str
    example: Any
    help: str
    default: str | None = None  # shown as is; None: the dataclass field's default (or "required")
    required: bool = False
    needs: dict[str, Any] = field(default_factory=dict)  # other keys of the spec that the example needs


def _image(**image: Any) -> dict[str, Any]:
    return {"kind": "image", "image": {"layout": "folder", "train_dirs": ["train"], **image}}


KEYS: tuple[SpecKey, ...] = (
    SpecKey("", "name", "str", "titanic", "the competition's name in kk", "the folder's name"),
    SpecKey("", "slug", "str", "titanic", "the Kaggle slug: names `data/<slug>/` and the Kaggle URLs", "the name"),
    SpecKey("", "kind", "str: tabular, image", "image", "tabular data or photos", '"tabular"', needs=_image()),
    SpecKey("", "id", "str", "PassengerId", "the id column of the test file and the submission", required=True),
    SpecKey("", "metric", "str", "auc", "the competition's metric (`kk.list_metrics()`): accuracy, auc, logloss, "
            "rmse, rmsle, mae, r2, f1, f1_macro, qwk, map@k, ...", required=True),
    SpecKey("", "pipeline", "str", "tabular", "the recipe `kk run` follows, from `pipelines/`", "none"),
    SpecKey("", "builtin", "str", "playground-churn", "a data generator of `kagglekit.builtin` (built-in "
            "competitions)", "none"),
    SpecKey("", "data_dir", "str", "/kaggle/input/titanic", "the data folder, relative to the spec's folder or "
            "absolute (a Kaggle notebook's input)", "`data/<slug>/` of the workspace"),
    SpecKey("", "description", "str", "Who survived the Titanic?", "one line shown by `kk list`", '""'),
    SpecKey("", "targets", "array of tables", [{"name": "Survived", "task": "binary"}], "the columns to predict: "
            "see `[[targets]]`", required=True),
    SpecKey("", "files", "table", {"train": "train.csv"}, "see `[files]`", "train.csv, test.csv, "
            "sample_submission.csv"),
    SpecKey("", "cv", "table", {"kind": "kfold"}, "see `[cv]`", "5 stratified folds for a class target, else 5 "
            "folds"),
    SpecKey("", "tabular", "table", {"drop": ["Name"]}, "see `[tabular]`", "none"),
    SpecKey("", "image", "table", {"layout": "folder", "train_dirs": ["train"]}, "see `[image]`; required when "
            "kind = 'image'", "none", needs={"kind": "image"}),
    SpecKey("", "submission", "table", {"columns": ["PassengerId", "Survived"]}, "see `[submission]`", "none"),
    SpecKey("", "train", "table", {"arch": "convnext_small"}, "`kk train`'s defaults for this competition: any "
            "key of the `[train]` table below; flags override them", "none"),
    SpecKey("", "stages", "table of tables", {"small": {"arch": "resnet18"}}, "`[stages.<name>]`: overrides of a "
            "recipe stage's settings (`kk run`), checked by the stage that takes them", "none"),

    SpecKey("files", "train", "str", "labels.csv", "the labelled rows"),
    SpecKey("files", "test", "str or false", False, "the rows to predict; false: none (cross-validation only, or "
            "test images found by `[image]`)"),
    SpecKey("files", "sample_submission", "str or false", "gender_submission.csv", "Kaggle's sample "
            "submission: the submission's ids, columns and value types are checked against it"),
    SpecKey("files", "solution", "str", "solution.csv", "the test rows' true targets, when known (built-in "
            "competitions, a held-back split): `kk score` and held-out scores"),

    SpecKey("targets", "name", "str", "Survived", "the column", required=True),
    SpecKey("targets", "task", "str: binary, multiclass, regression, multilabel", "binary", "what is predicted",
            required=True),
    SpecKey("targets", "submit", "bool", False, "false: an auxiliary target, trained on (an extra head) and not "
            "submitted; a photo without its label is left out of that head's loss and score"),
    SpecKey("targets", "classes", "list of str", ["0", "1"], "the classes in the submission's order (default: "
            "those seen in training, sorted)"),
    SpecKey("targets", "weight", "float > 0", 0.5, "kk train: this target's weight in the summed loss of the "
            "heads (default 1)"),

    SpecKey("cv", "kind", "str: kfold, stratified, group, time-ordered, multilabel-stratified", "stratified",
            "how rows are split into folds"),
    SpecKey("cv", "k", "int, 2 to 100", 10, "the number of folds"),
    SpecKey("cv", "seed", "int", 0, "the folds' seed: the same seed, the same folds for every run"),
    SpecKey("cv", "group", "str", "PassengerId_1", "kind = 'group': rows of one value stay in one fold (a column, "
            "or a part made by `[tabular] split`)"),
    SpecKey("cv", "group_freq", "str", "D", "group by whole periods of a datetime column (pandas' frequencies: "
            "D, W, M)"),
    SpecKey("cv", "time", "str", "datetime", "kind = 'time-ordered': the column that orders the rows"),
    SpecKey("cv", "repeats", "int, 1 to 20", 3, "`kk baseline`'s repeated k-fold: each row's out-of-fold "
            "prediction averaged over this many splits (not with time-ordered folds)"),

    SpecKey("tabular", "date_columns", "list of str", ["saledate"], "expanded into fastai's `add_datepart` "
            "parts"),
    SpecKey("tabular", "date_time", "bool", True, "also the hour, minute and second parts"),
    SpecKey("tabular", "drop", "list of str", ["Name", "Ticket"], "columns left out of the features"),
    SpecKey("tabular", "categorical", "list of str", ["Pclass"], "numeric columns to treat as categories"),
    SpecKey("tabular", "features", "str", "features.py", "a Python file beside the spec defining "
            "`add_features(df) -> df` (row-wise or unsupervised transforms of train and test together)",
            "features.py when that file exists"),
    SpecKey("tabular", "max_cardinality", "float", 0.3, "text-like columns with more distinct values than this "
            "share of the rows are dropped (names, free text)"),
    SpecKey("tabular", "split", "table of str", {"Cabin": "/"}, "compound columns cut into parts: 'B/0/P' makes "
            "Cabin_1, Cabin_2, Cabin_3 (numbers as numbers; `kk new` guesses them)"),

    SpecKey("image", "layout", "str: csv, folder, filename", "folder", "csv: path templates over a CSV's columns; "
            "folder: `<dir>/<label>/*.jpg`; filename: the label in the file name", needs={"train_dirs": ["train"]}),
    SpecKey("image", "train_path", "str", "train_images/{label}/{image_id}", "layout = 'csv': a template over "
            "the train file's columns", needs={"layout": "csv"}),
    SpecKey("image", "test_path", "str", "test_images/{image_id}", "layout = 'csv': a template over the test (or "
            "sample submission) columns"),
    SpecKey("image", "train_dirs", "list of str", ["train", "valid"], "layouts folder and filename: the folders "
            "of training images"),
    SpecKey("image", "test_dir", "str", "test", "layouts folder and filename: the folder of test images"),
    SpecKey("image", "label_regex", "str", r"^(cat|dog)\.", "layout = 'filename': its first group (or the group "
            "named label) is the label", needs={"layout": "filename"}),
    SpecKey("image", "resize", "str: auto, squish, crop, pad", "squish", "how validation and test photos are "
            "resized (auto: a pretrained model's own centre crop, else squish)"),

    SpecKey("submission", "columns", "list of str", ["name", "label"], "the submission's columns, id first",
            "the sample submission's"),
    SpecKey("submission", "placeholders", "list of str", ["Usage"], "columns of the sample submission that no "
            "target predicts, submitted with the sample's values on purpose (with a warning); any other column "
            "no target fills is an error before training", "none"),
)


def _minimal(table: str) -> dict[str, Any]:
    """The smallest valid spec around a key of ``table``."""
    raw: dict[str, Any] = {"id": "id", "metric": "accuracy", "targets": [{"name": "y", "task": "binary"}]}
    if table == "image":
        raw.update(_image())
    return raw


def example_spec(k: SpecKey) -> dict[str, Any]:
    """A valid spec (as read from TOML) that sets ``k`` to its example, and what the example needs."""
    raw = _minimal(k.table)
    if k.table == "":
        raw.update(k.needs)
        raw[k.key] = k.example
    elif k.table == "targets":
        raw["targets"].append({"name": "aux", "task": "multiclass", **k.needs, k.key: k.example})
    else:
        raw[k.table] = {**raw.get(k.table, {}), **k.needs, k.key: k.example}
    return raw


def shown_default(k: SpecKey) -> str:
    """The default as the reference shows it: the dataclass field's own where there is one."""
    if k.required:
        return "required"
    if k.default is not None:
        return k.default
    cls = _DATACLASS[k.table]
    f = {f.name: f for f in dataclasses.fields(cls)}[k.key]
    factory: Any = f.default_factory
    value = f.default if factory is dataclasses.MISSING else factory()
    return _toml(value) if value not in (None, ()) else "none"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # a literal string where a backslash would be an escape
        return f"'{value}'" if "\\" in value else f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(keys: list[tuple[str, str, str, str, str]]) -> list[str]:
    out = ["| key | type | default | example | meaning |", "|---|---|---|---|---|"]
    out += [f"| `{k}` | {_cell(t)} | {_cell(d)} | `{_cell(e)}` | {_cell(h)} |" for k, t, d, e, h in keys]
    return out


def _train_rows() -> list[tuple[str, str, str, str, str]]:
    rows = []
    for f in dataclasses.fields(TrainConfig):
        if f.name not in SPEC_KEYS:
            continue
        choices = f.metadata.get("choices")
        typ = str(f.type).replace("tuple[int, ...]", "list of int") + (f": {', '.join(choices)}" if choices else "")
        default = "none" if f.default is None else _toml(f.default)
        rows.append((f.name, typ, default, f"{f.name} = {default}", f.metadata["help"]))
    return rows


def reference_markdown() -> str:
    """Every key of ``competition.toml``, a Markdown table per TOML table (the docs' spec page)."""
    out: list[str] = []
    for table, intro in TABLES.items():
        keys = [k for k in KEYS if k.table == table]
        out += [f"### {'Top level' if not table else f'`{table}`'}", "", intro, ""]
        out += _rows([(k.key, k.type, shown_default(k), f"{k.key} = {_toml(k.example)}", k.help)
                      for k in keys])
        out.append("")
    out += ["### `train`", "", "`[train]`: `kk train`'s settings for this competition, each a field of "
            "`kagglekit.TrainConfig` and a flag of `kk train` (the flag wins). Settings of the machine "
            "(device, workers, processes) are flags only.", ""]
    out += _rows(_train_rows())
    out.append("")
    return "\n".join(out)
