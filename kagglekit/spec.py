"""Competition specs: ``competitions/<name>/competition.toml`` read into frozen dataclasses.

All validation happens here, in :func:`parse_spec`, so the rest of kagglekit can trust a
:class:`Competition`. A bad spec raises :class:`~kagglekit.errors.SpecError` with one line naming
the file, the key, the allowed values and what was found.

One concern at about 360 lines: the spec's types and the parser of each of its tables belong
together (a new key is a field and its line in the parser). Reading a TOML table with checks is in
:mod:`.toml_table`; the ``[train]`` keys come from :mod:`.trainconfig`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpecError, did_you_mean, one_of
from .toml_table import TomlTable
from .trainconfig import RESIZE_METHODS, check_table

TASKS = ("binary", "multiclass", "regression", "multilabel")
KINDS = ("tabular", "image")
CV_KINDS = ("kfold", "stratified", "group", "time-ordered", "multilabel-stratified")
IMAGE_LAYOUTS = ("csv", "folder", "filename")

CLASSIFICATION_TASKS = ("binary", "multiclass")


def is_classification(task: str) -> bool:
    """Whether a target of this task predicts classes (binary, multiclass) rather than a number:
    the one place this is decided."""
    return task in CLASSIFICATION_TASKS


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def validate_name(name: str, what: str = "competition name") -> str:
    """Check that ``name`` is a plain folder name: no path separators, no ``..``, not absolute."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise SpecError(
            f"invalid {what} {name!r}: use letters, digits, '.', '_' and '-' only "
            "(no '/', no '..', not an absolute path), e.g. 'titanic'"
        )
    return name


@dataclass(frozen=True)
class Target:
    """A column to predict. ``submit=False`` marks an auxiliary target (trained on, not submitted)."""

    name: str
    task: str
    submit: bool = True
    classes: tuple[str, ...] | None = None
    weight: float = 1.0  # kk train: this target's weight in the summed loss of the heads

    @property
    def is_classification(self) -> bool:
        return is_classification(self.task)


@dataclass(frozen=True)
class CVSpec:
    """How training rows are split into folds; shared by every run of a competition."""

    kind: str = "kfold"
    k: int = 5
    seed: int = 42
    group: str | None = None
    group_freq: str | None = None  # floor a datetime group column to this period ("D", "W", ...)
    time: str | None = None
    # the tabular baseline's repeated k-fold: OOF averaged over this many splits. Default 1: on the
    # tabular suite (bench/tabular_suite.py, 6 real tables) 3 repeats moved no held-out score beyond
    # the folds' noise (largest: +0.0018 +/- 0.0043 accuracy, breast cancer) for 1.3-2.7x the time.
    repeats: int = 1


@dataclass(frozen=True)
class Files:
    train: str = "train.csv"
    test: str | None = "test.csv"
    sample_submission: str | None = "sample_submission.csv"
    solution: str | None = None  # hidden test labels, known for built-in competitions


@dataclass(frozen=True)
class TabularSpec:
    date_columns: tuple[str, ...] = ()
    date_time: bool = False  # add Hour/Minute/Second parts
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()  # force these columns to be categorical
    features: str | None = None  # a python file beside the spec defining add_features(df)
    max_cardinality: float = 0.5  # text-like columns with more unique values (share of rows) are dropped
    # compound columns cut into parts: (("Cabin", "/"),) makes Cabin_1, Cabin_2, Cabin_3 from "B/0/P"
    split: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ImageSpec:
    layout: str = "csv"
    train_path: str | None = None  # csv layout: template over train columns, e.g. "train_images/{label}/{image_id}"
    test_path: str | None = None  # csv layout: template over test/sample-submission columns
    train_dirs: tuple[str, ...] = ()  # folder/filename layouts: folders of training images
    test_dir: str | None = None  # folder/filename layouts: folder of unlabelled test images
    label_regex: str | None = None  # filename layout: its first group (or group 'label') is the label
    resize: str = "auto"  # pretrained: the model's own centre crop; from scratch: squish


@dataclass(frozen=True)
class Competition:
    """A validated competition spec. ``root`` is the folder holding ``competition.toml``."""

    name: str
    root: Path
    kind: str
    id_column: str
    targets: tuple[Target, ...]
    metric: str
    slug: str
    cv: CVSpec = field(default_factory=CVSpec)
    files: Files = field(default_factory=Files)
    tabular: TabularSpec = field(default_factory=TabularSpec)
    image: ImageSpec | None = None
    pipeline: str | None = None
    builtin: str | None = None  # name of a data generator in kagglekit.builtin
    submission_columns: tuple[str, ...] | None = None
    # submission columns no model predicts, submitted with the sample's values on purpose (loudly)
    placeholders: tuple[str, ...] = ()
    data_dir: str | None = None  # explicit data folder (relative to the spec folder or absolute)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # recipe stage overrides
    train: dict[str, Any] = field(default_factory=dict)  # [train]: kk train's defaults for this competition
    description: str = ""

    @property
    def spec_file(self) -> Path:
        return self.root / "competition.toml"

    @property
    def submitted_targets(self) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.submit)

    def target(self, name: str) -> Target:
        for t in self.targets:
            if t.name == name:
                return t
        raise SpecError(
            f"{self.spec_file}: no target named {name!r}; targets are "
            f"{one_of(t.name for t in self.targets)}{did_you_mean(name, [t.name for t in self.targets])}"
        )


# ---------------------------------------------------------------------------------------------
# parsing


def load_spec(path: Path | str) -> Competition:
    """Read and validate ``competition.toml`` (or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "competition.toml"
    if not path.is_file():
        raise SpecError(f"{path}: competition spec not found; create it with 'kk new <slug>' "
                        "or copy one from competitions/titanic/competition.toml")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: malformed TOML: {e}") from None
    return parse_spec(raw, path)


def parse_spec(raw: dict[str, Any], file: Path, name: str | None = None) -> Competition:
    """Validate a spec given as a dict (as read from TOML). ``file`` is used in messages."""
    file = Path(file)
    top = TomlTable(raw, "", file)
    name = validate_name(top.get("name", str, name or file.parent.name))
    kind = top.get("kind", str, "tabular", choices=KINDS)
    id_column = top.get("id", str, required=True)
    slug = top.get("slug", str, name)
    try:  # the slug names folders (data/<slug>) and Kaggle URLs: a plain name only
        validate_name(slug, "Kaggle slug")
    except SpecError as e:
        raise SpecError(f"{file}: key 'slug': {e}") from None
    metric = _parse_metric(top)
    pipeline = top.get("pipeline", str, None)
    builtin = top.get("builtin", str, None)
    data_dir = top.get("data_dir", str, None)
    description = top.get("description", str, "")
    targets = _parse_targets(top, file)
    files = _parse_files(top)
    cv = _parse_cv(top, targets)
    tabular = _parse_tabular(top, file)
    img_t = top.table("image")
    if kind == "image" and img_t is None:
        raise top.error("image", "kind = 'image' needs an [image] table (layout, train_path or train_dirs)")
    image = _parse_image(img_t) if img_t is not None else None
    sub_t = top.table("submission")
    submission_columns: tuple[str, ...] | None = None
    placeholders: tuple[str, ...] = ()
    if sub_t is not None:
        submission_columns = sub_t.str_list("columns") or None
        placeholders = sub_t.str_list("placeholders")
        sub_t.finish()
    train, stages = _parse_train(top, file)
    top.finish()
    return Competition(
        name=name, root=file.parent, kind=kind, id_column=id_column, targets=targets, metric=metric,
        slug=slug, cv=cv, files=files, tabular=tabular, image=image, pipeline=pipeline, builtin=builtin,
        submission_columns=submission_columns, placeholders=placeholders, data_dir=data_dir, stages=stages, train=train,
        description=description,
    )


def _parse_metric(top: TomlTable) -> str:
    metric = top.get("metric", str, required=True)
    from .metrics import METRICS  # light module, no heavy imports

    if metric not in METRICS and not re.fullmatch(r"map@\d+", metric):  # get_metric's map@k for any k
        raise top.error("metric", f"expected a registered metric ({one_of(sorted(METRICS))}), "
                        f"found {metric!r}{did_you_mean(metric, METRICS)}")
    return metric


def _parse_files(top: TomlTable) -> Files:
    files_t = top.table("files")
    if files_t is None:
        return Files()
    files = Files(
        train=files_t.get("train", str, "train.csv"),
        test=files_t.get("test", (str, bool), "test.csv") or None,
        sample_submission=files_t.get("sample_submission", (str, bool), "sample_submission.csv") or None,
        solution=files_t.get("solution", str, None),
    )
    files_t.finish()
    return files


def _parse_tabular(top: TomlTable, file: Path) -> TabularSpec:
    tabular = TabularSpec()
    tab_t = top.table("tabular")
    if tab_t is not None:
        tabular = TabularSpec(
            date_columns=tab_t.str_list("date_columns"),
            date_time=tab_t.get("date_time", bool, False),
            drop=tab_t.str_list("drop"),
            categorical=tab_t.str_list("categorical"),
            features=tab_t.get("features", str, None),
            max_cardinality=float(tab_t.get("max_cardinality", (float, int), 0.5)),
            split=_parse_split(tab_t),
        )
        tab_t.finish()
    if tabular.features is None and (file.parent / "features.py").is_file():
        tabular = TabularSpec(**{**tabular.__dict__, "features": "features.py"})
    return tabular


def _parse_split(tab_t: TomlTable) -> tuple[tuple[str, str], ...]:
    """``split = { Cabin = "/", PassengerId = "_" }``: each column's separator, a non-empty string."""
    table = tab_t.get("split", dict, {})
    for col, sep in table.items():
        if not isinstance(sep, str) or not sep:
            raise tab_t.error("split", f"expected a separator string for column {col!r} "
                                       f"(e.g. split = {{ {col} = \"/\" }}), found {sep!r}")
    return tuple(table.items())


def _parse_train(top: TomlTable, file: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The [train] table (checked against TrainConfig's fields) and the [stages.<name>] overrides
    (checked when a recipe's stage takes them: kagglekit.pipeline)."""
    train: dict[str, Any] = {}
    train_t = top.table("train")
    if train_t is not None:
        check_table(train_t.data, file, "train")
        train = dict(train_t.data)
    stages: dict[str, dict[str, Any]] = {}
    st_t = top.table("stages")
    if st_t is not None:
        for stage_name in list(st_t.data):
            stages[stage_name] = dict(st_t.get(stage_name, dict))
    return train, stages


def _parse_targets(top: TomlTable, file: Path) -> tuple[Target, ...]:
    top.seen.add("targets")
    raw = top.data.get("targets")
    if raw is None:
        raise top.error("targets", "is required: add at least one [[targets]] table with name and task")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise top.error("targets", f"expected one or more [[targets]] tables, found {raw!r}")
    targets = []
    for i, t in enumerate(raw):
        tt = TomlTable(t, f"targets[{i}]", file)
        classes = tt.get("classes", list, None)
        targets.append(Target(
            name=tt.get("name", str, required=True),
            task=tt.get("task", str, required=True, choices=TASKS),
            submit=tt.get("submit", bool, True),
            classes=tuple(str(c) for c in classes) if classes is not None else None,
            weight=_weight(tt),
        ))
        tt.finish()
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise top.error("targets", f"target names must be unique, found {names}")
    if not any(t.submit for t in targets):
        raise top.error("targets", "at least one target must have submit = true")
    return tuple(targets)


def _weight(tt: TomlTable) -> float:
    w = tt.get("weight", (int, float), 1.0)
    if not w > 0:
        raise tt.error("weight", f"expected a positive weight of this target's loss (e.g. 0.5), found {w!r}")
    return float(w)


def _parse_cv(top: TomlTable, targets: tuple[Target, ...]) -> CVSpec:
    cv_t = top.table("cv")
    if cv_t is None:
        first = targets[0]
        return CVSpec(kind="stratified" if first.is_classification else "kfold")
    cv = CVSpec(
        kind=cv_t.get("kind", str, "kfold", choices=CV_KINDS),
        k=cv_t.get("k", int, 5),
        seed=cv_t.get("seed", int, 42),
        group=cv_t.get("group", str, None),
        group_freq=cv_t.get("group_freq", str, None),
        time=cv_t.get("time", str, None),
        repeats=cv_t.get("repeats", int, 1),
    )
    if not 2 <= cv.k <= 100:
        raise cv_t.error("k", f"expected a number of folds from 2 to 100, found {cv.k}")
    if not 1 <= cv.repeats <= 20:
        raise cv_t.error("repeats", f"expected a number of CV repeats from 1 to 20, found {cv.repeats}")
    if cv.repeats > 1 and cv.kind == "time-ordered":
        raise cv_t.error("repeats", "a time-ordered CV has one split only; remove repeats (or set it to 1)")
    if cv.kind == "group" and not cv.group:
        raise cv_t.error("group", "kind = 'group' needs group = '<column>' naming the group column")
    if cv.kind == "time-ordered" and not cv.time:
        raise cv_t.error("time", "kind = 'time-ordered' needs time = '<column>' naming the column to order by")
    cv_t.finish()
    return cv


def _parse_image(img_t: TomlTable) -> ImageSpec:
    layout = img_t.get("layout", str, "csv", choices=IMAGE_LAYOUTS)
    image = ImageSpec(
        layout=layout,
        train_path=img_t.get("train_path", str, None),
        test_path=img_t.get("test_path", str, None),
        train_dirs=img_t.str_list("train_dirs"),
        test_dir=img_t.get("test_dir", str, None),
        resize=img_t.get("resize", str, "auto", choices=RESIZE_METHODS),
        label_regex=img_t.get("label_regex", str, None),
    )
    if layout == "csv" and not image.train_path:
        raise img_t.error("train_path", "layout = 'csv' needs train_path, a template over train columns "
                          "such as 'train_images/{label}/{image_id}'")
    if layout == "folder" and not image.train_dirs:
        raise img_t.error("train_dirs", "layout = 'folder' needs train_dirs, the folders whose sub-folders "
                          "are the labels, e.g. ['train']")
    if layout == "filename":
        if not image.train_dirs:
            raise img_t.error("train_dirs", "layout = 'filename' needs train_dirs, the folders holding the "
                              "training images, e.g. ['train']")
        if not image.label_regex:
            raise img_t.error("label_regex", "layout = 'filename' needs label_regex, a regular expression whose "
                              "first group is the label, e.g. '(cat|dog)\\.\\d+\\.jpg'")
        try:
            rx = re.compile(image.label_regex)
        except re.error as e:
            raise img_t.error("label_regex", f"not a valid regular expression ({e}): {image.label_regex!r}") from None
        if rx.groups < 1:
            raise img_t.error("label_regex", f"needs a group that captures the label, e.g. '(cat|dog)\\.\\d+"
                              f"\\.jpg'; found {image.label_regex!r} with none")
    elif image.label_regex:
        raise img_t.error("label_regex", f"is for layout = 'filename'; this table has layout = {layout!r}")
    img_t.finish()
    return image


def define_competition(name: str, *, id: str, metric: str, targets: list[dict[str, Any]] | dict[str, str],
                       data_dir: str | Path | None = None, root: str | Path | None = None,
                       **sections: Any) -> Competition:
    """Declare a competition in Python instead of a TOML file (e.g. in a Kaggle notebook)::

        comp = kk.define_competition("titanic", id="PassengerId", metric="accuracy",
                                     targets={"Survived": "binary"}, data_dir="/kaggle/input/titanic",
                                     files={"sample_submission": "gender_submission.csv"})

    ``targets`` is a list of target tables, or ``{name: task}``; other keyword arguments are the
    spec's keys and tables (``cv={...}``, ``tabular={...}``, ``kind="image"``, ``image={...}``).

    Examples
    --------
    >>> comp = define_competition("house-prices", id="Id", metric="rmsle", targets={"SalePrice": "regression"},
    ...                           cv={"k": 10}, tabular={"drop": ["Street"]})
    >>> comp.targets[0].task, comp.cv.kind, comp.cv.k, comp.tabular.drop
    ('regression', 'kfold', 10, ('Street',))
    >>> define_competition("x", id="Id", metric="rmsle", targets={"y": "regression"}, cv={"kind": "random"})
    Traceback (most recent call last):
    kagglekit.errors.SpecError: .../x/competition.toml: key 'cv.kind': expected 'kfold', ... found 'random'
    """
    if isinstance(targets, dict):
        targets = [{"name": k, "task": v} for k, v in targets.items()]
    raw: dict[str, Any] = {"id": id, "metric": metric, "targets": targets, **sections}
    if data_dir is not None:
        raw["data_dir"] = str(Path(data_dir).expanduser().resolve())
    folder = Path(root or Path.cwd()) / validate_name(name)
    return parse_spec(raw, folder / "competition.toml", name=name)
