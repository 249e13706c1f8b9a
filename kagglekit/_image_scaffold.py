"""``kk new`` for image competitions: recognise how the images are laid out.

Three layouts, as Kaggle's image competitions ship them:
- csv: a train CSV naming each image (paddy: ``train_images/{label}/{image_id}``);
- folder: ``train/<label>/*.png`` (fastai's MNIST tiny, ImageNet-style sets);
- filename: the label is in the file name (dogs vs cats: ``train/cat.4199.jpg``).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from ._image_tables import IMAGE_EXTENSIONS
from .spec import is_classification

_PREFIX = re.compile(r"^([A-Za-z][A-Za-z_]*?)([._-])")


def _images(folder: Path, recursive: bool = False) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_testish(name: str) -> bool:
    return "test" in name.lower()


def _template(data_dir: Path, df: pd.DataFrame, id_col: str, index: dict[str, list[Path]]) -> str | None:
    """A path template over ``df``'s columns that finds its images, e.g. ``train_images/{label}/{image_id}``."""
    first = df.iloc[0]
    value = str(first[id_col])
    hits = index.get(value) or index.get(Path(value).stem if Path(value).suffix else value, [])
    for hit in hits:
        rel = hit.relative_to(data_dir)
        name = "{" + id_col + "}" + ("" if rel.name == value else rel.suffix)
        parts = list(rel.parent.parts)
        for i, part in enumerate(parts):  # a folder named after another column's value: {label}
            col = next((c for c in df.columns if c != id_col and str(first[c]) == part), None)
            if col is not None:
                parts[i] = "{" + str(col) + "}"
        template = "/".join([*parts, name])
        rows = df.head(20).astype(str)
        if all((data_dir / template.format(**row)).is_file() for row in rows.to_dict("records")):
            return template
    return None


def _index(data_dir: Path) -> dict[str, list[Path]]:
    """Every image under ``data_dir`` by file name and by stem."""
    out: dict[str, list[Path]] = {}
    for p in _images(data_dir, recursive=True):
        out.setdefault(p.name, []).append(p)
        out.setdefault(p.stem, []).append(p)
    return out


def guess_image(data_dir: Path, train: pd.DataFrame | None, train_f: str | None,
                sample: pd.DataFrame | None) -> dict[str, Any] | None:
    """The ``[image]`` table, targets and notes of an image competition in ``data_dir``; None when
    the folder holds no images."""
    index = _index(data_dir)
    if not index:
        return None
    notes: list[str] = []
    if train is not None:  # csv layout: a column naming the images
        id_col = next((str(c) for c in train.columns if train[c].astype(str).head(50).isin(index).all()), None)
        if id_col is not None:
            template = _template(data_dir, train, id_col, index)
            if template is not None:
                image: dict[str, Any] = {"layout": "csv", "train_path": template}
                if sample is not None and id_col in sample.columns:
                    test_template = _template(data_dir, sample, id_col, index)
                    if test_template:
                        image["test_path"] = test_template
                notes.append(f"images named by {train_f} column {id_col!r}: {template}")
                return {"image": image, "id": id_col, "notes": notes, "layout": "csv"}
    dirs = _subdirs(data_dir)
    train_dirs = [d for d in dirs if not _is_testish(d.name)] or dirs
    test_dir = next((d.name for d in dirs if _is_testish(d.name) and _images(d)), None)
    labelled = [d for d in train_dirs if any(_images(s) for s in _subdirs(d))]
    if labelled:  # folder layout: train/<label>/*.png
        notes.append(f"labels are the sub-folders of {', '.join(d.name for d in labelled)}")
        labels = sorted({s.name for d in labelled for s in _subdirs(d) if _images(s)})
        return {"image": {"layout": "folder", "train_dirs": [d.name for d in labelled], "test_dir": test_dir},
                "labels": labels, "notes": notes, "layout": "folder"}
    for d in train_dirs:  # filename layout: cat.1.jpg, dog.2.jpg
        files = _images(d)
        matches = [_PREFIX.match(p.name) for p in files]
        if files and all(matches):
            seps = Counter(m.group(2) for m in matches if m)
            labels = sorted({m.group(1) for m in matches if m})
            if 2 <= len(labels) <= max(2, len(files) // 5):
                sep = re.escape(seps.most_common(1)[0][0])
                regex = f"^({'|'.join(map(re.escape, labels))}){sep}"
                notes.append(f"labels from the file names in {d.name}/ ({', '.join(labels[:5])}): label_regex {regex}")
                return {"image": {"layout": "filename", "train_dirs": [d.name], "label_regex": regex,
                                  "test_dir": test_dir}, "labels": labels, "notes": notes, "layout": "filename"}
    return None


def _target_lines(targets: list[tuple[str, str]], aux: list[tuple[str, str]]) -> list[str]:
    lines = []
    for name, task in targets:
        lines += ["[[targets]]", f'name = "{name}"', f'task = "{task}"', ""]
    if aux:
        lines += ["# Labels of the train file that are not submitted. Each can train an extra head beside the",
                  "# submitted ones (an auxiliary target, weighted into the loss, never submitted): uncomment one",
                  "# and compare the runs' CV (kk runs) to see whether it helps."]
        for name, task in aux:
            lines += ["# [[targets]]", f'# name = "{name}"', f'# task = "{task}"', "# submit = false", ""]
    return lines


def _cv_kind(targets: list[tuple[str, str]]) -> tuple[str, str]:
    classes = [t for t, task in targets if is_classification(task)]
    if len(classes) > 1:
        return "multilabel-stratified", "every class target's proportions kept in each fold"
    if classes:
        return "stratified", "the classes' proportions kept in each fold"
    return "kfold", "a number target: random folds"


def render_image(slug: str, name: str, g: Any, found: dict[str, Any]) -> str:
    """The spec's text for an image competition (``g``: the scaffold's Guess)."""
    id_col, metric, files, submission = g.id_column, g.metric, g.files, g.submission
    image = found["image"]
    cv_kind, cv_why = _cv_kind(g.targets)
    lines = [
        f"# {name}: written by `kk new {slug}`. Every value below is a guess from the files: check it.",
        f'slug = "{slug}"',
        'kind = "image"',
        f'id = "{id_col}"',
        f'metric = "{metric}"            # check the competition\'s Evaluation page',
        'pipeline = "vision"',
        "",
        "[files]",
    ]
    if found["layout"] == "csv":
        lines.append(f'train = "{files["train"]}"')
    lines += [
        "test = false                     # test rows: the test images, or the sample submission's ids",
        f'sample_submission = "{files["sample_submission"]}"' if files["sample_submission"]
        else "sample_submission = false",
        "",
        *_target_lines(g.targets, g.auxiliary),
        f"# Photos drawn at random from one population: {cv_why}.",
        "# Several photos of one subject (patient, plant, animal)? Use kind = \"group\" with",
        "# group = \"<column>\".",
        "[cv]",
        f'kind = "{cv_kind}"',
        "k = 5",
        "seed = 42",
        "",
        "[image]",
        f'layout = "{image["layout"]}"',
    ]
    for key in ("train_path", "test_path", "train_dirs", "label_regex", "test_dir"):
        value = image.get(key)
        if value is None:
            continue
        if isinstance(value, list):
            lines.append(f"{key} = [{', '.join(repr(v).replace(chr(39), chr(34)) for v in value)}]")
        elif key == "label_regex":
            lines.append(f"{key} = '{value}'")
        else:
            lines.append(f'{key} = "{value}"')
    lines += ['resize = "auto"                  # pretrained: the model\'s centre crop; or squish / crop / pad', ""]
    if submission:
        lines += ["[submission]", f"columns = [{', '.join(chr(34) + c + chr(34) for c in submission)}]", ""]
    lines += [
        "# kk train's defaults for this competition (flags override them). Pretrained weights:",
        "# --weights FILE_OR_FOLDER or KK_WEIGHTS_DIR (offline), else timm's hub.",
        "# epochs: unset, from the training photos of a fold (1 below 600, else about one per 200:",
        "# kagglekit.vision.config.default_epochs, with its evidence).",
        "[train]",
        'arch = "resnet18"',
        "tta = 4",
        "",
    ]
    return "\n".join(lines)
