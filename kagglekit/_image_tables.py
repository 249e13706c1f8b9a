"""Tables of image files for image competitions (no image decoding here)."""

from __future__ import annotations

import os
import re
import string
from pathlib import Path

import pandas as pd

from .errors import DataError, did_you_mean, missing_both_ways
from .spec import Competition

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _train_folders(comp: Competition, data_dir: Path) -> list[Path]:
    assert comp.image is not None
    folders = []
    for d in comp.image.train_dirs:
        folder = data_dir / d
        if not folder.is_dir():
            raise DataError(f"{folder}: image folder not found (listed in [image] train_dirs of {comp.spec_file})")
        folders.append(folder)
    return folders


def _label_rows(comp: Competition, data_dir: Path) -> list[tuple[str, str, str]]:
    """(id, label, path) of every training image: the label is the parent folder's name (folder
    layout) or what ``label_regex`` captures from the file name (filename layout, fastai's
    ``RegexLabeller``)."""
    assert comp.image is not None
    rows = []
    if comp.image.layout == "folder":
        for folder in _train_folders(comp, data_dir):
            for label_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
                for img in _images_under(label_dir):
                    rows.append((img.relative_to(data_dir).as_posix(), label_dir.name, str(img)))
        where = f"{', '.join(comp.image.train_dirs)}/<label>/"
    else:
        rx = re.compile(comp.image.label_regex or "")
        group = "label" if "label" in rx.groupindex else 1
        unmatched = []
        for folder in _train_folders(comp, data_dir):
            for img in _images_under(folder):
                m = rx.search(img.name)
                if m is None or m.group(group) is None:
                    unmatched.append(img)
                    continue
                rows.append((img.relative_to(folder).as_posix(), m.group(group), str(img)))
        if unmatched:
            raise DataError(f"{unmatched[0]}: label_regex {comp.image.label_regex!r} of {comp.spec_file} does not "
                            f"match this file name ({len(unmatched)} of {len(unmatched) + len(rows)} images do not); "
                            "fix the regex or move the files")
        where = ", ".join(comp.image.train_dirs)
    if not rows:
        raise DataError(f"{data_dir}: no images found under {where}; expected files ending in "
                        f"{', '.join(IMAGE_EXTENSIONS)}")
    return rows


def folder_tables(comp: Competition, data_dir: Path,
                  sample: pd.DataFrame | None = None, sample_file: Path | None = None) -> tuple[pd.DataFrame,
                                                                                            pd.DataFrame | None]:
    """Tables of a folder or filename layout: one training row per image with its label, and one
    test row per image of ``test_dir``, whose id matches the sample submission's ids (see
    :func:`test_ids`)."""
    assert comp.image is not None
    target = comp.targets[0].name
    train = pd.DataFrame(_label_rows(comp, data_dir), columns=[comp.id_column, target, "path"])
    test = None
    if comp.image.test_dir:
        folder = data_dir / comp.image.test_dir
        if not folder.is_dir():
            raise DataError(f"{folder}: test image folder not found (test_dir in [image] of {comp.spec_file})")
        imgs = _images_under(folder)
        ids = test_ids(imgs, data_dir, None if sample is None else sample[comp.id_column],
                       sample_file or data_dir, folder)
        test = pd.DataFrame({comp.id_column: ids, "path": [str(p) for p in imgs]})
    return train, test


def test_ids(imgs: list[Path], data_dir: Path, sample_ids: pd.Series | None, sample_file: Path,
             folder: Path) -> list:
    """Ids of test images, as Kaggle's image competitions name them: the file name (``abc.png``),
    or its stem (dogs vs cats: ``1`` for ``test1/1.jpg``), or the path under the data folder;
    whichever matches the sample submission's ids one-to-one. Checked before any image is decoded:
    a mismatch names an example from each side."""
    forms = {"file name": [p.name for p in imgs], "file stem": [p.stem for p in imgs],
             "path": [p.relative_to(data_dir).as_posix() for p in imgs]}
    if sample_ids is None:
        names = forms["file name"]
        return names if len(set(names)) == len(names) else forms["path"]
    want = sample_ids.astype(str)
    wanted = set(want)
    for ids in forms.values():
        if len(set(ids)) == len(ids) == len(wanted) and set(ids) == wanted:
            lookup = dict(zip(want, sample_ids, strict=True))
            return [lookup[i] for i in ids]  # the sample's own values (and dtype): 1, not "1"
    best = max(forms, key=lambda k: len(wanted & set(forms[k])))
    detail = missing_both_ways(set(forms[best]), f"images (by {best})", wanted, "sample ids") or "repeated names"
    raise DataError(f"{sample_file}: its ids do not match the {len(imgs)} images in {folder} one-to-one by file name, "
                    f"stem or path: {detail}. Point [image] test_dir at the folder "
                    "of the test images the sample submission lists")


def csv_paths(df: pd.DataFrame, template: str, data_dir: Path, file: Path) -> list[str]:
    """Fill ``template`` (e.g. ``"train_images/{label}/{image_id}"``) from each row of ``df``."""
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    for f in fields:
        if f not in df.columns:
            raise DataError(f"{file}: image path template {template!r} uses column {f!r}, which is missing"
                            f"{did_you_mean(f, map(str, df.columns))}; "
                            f"columns found: {', '.join(map(str, df.columns))}")
    cols = [df[f].astype(str).tolist() for f in fields]
    paths = [str(data_dir / template.format(**dict(zip(fields, vals, strict=True))))
             for vals in zip(*cols, strict=True)]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise DataError(f"{file}: {len(missing)} of {len(paths)} images named by {template!r} do not exist, "
                        f"e.g. {missing[0]}")
    return paths


def exact_duplicates(paths: list[str]) -> list[tuple[str, str]]:
    """Pairs (copy, first) of byte-identical files: only files of equal size are hashed, so a
    folder of distinct photos costs one ``stat`` each. Copies that land in different folds let a
    model be validated on images it trained on; a test image identical to a training image is a leak."""
    import hashlib

    by_size: dict[int, list[str]] = {}
    for p in paths:
        by_size.setdefault(os.path.getsize(p), []).append(p)
    pairs = []
    for group in by_size.values():
        if len(group) < 2:
            continue
        seen: dict[str, str] = {}
        for p in group:
            with open(p, "rb") as f:
                digest = hashlib.sha1(f.read()).hexdigest()
            if digest in seen:
                pairs.append((p, seen[digest]))
            else:
                seen[digest] = p
    return pairs


def duplicate_images(train_paths: list[str], test_paths: list[str]) -> tuple[list[tuple[str, str]],
                                                                               list[tuple[str, str]]]:
    """Byte-identical pairs among training images, and pairs across train and test (a leak)."""
    in_train = set(train_paths)
    pairs = exact_duplicates(train_paths + test_paths)
    within = [(a, b) for a, b in pairs if a in in_train and b in in_train]
    across = [(a, b) for a, b in pairs if (a in in_train) != (b in in_train)]
    return within, across
