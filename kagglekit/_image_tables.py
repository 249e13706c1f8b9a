"""Tables of image files for image competitions (no image decoding here)."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pandas as pd

from .errors import DataError, did_you_mean
from .spec import Competition

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def folder_tables(comp: Competition, data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Image-folder layout: every image under ``<train_dir>/<label>/`` is a training row whose
    first target is the parent folder's name; the id is the path relative to the data folder."""
    assert comp.image is not None
    target = comp.targets[0].name
    rows = []
    for d in comp.image.train_dirs:
        folder = data_dir / d
        if not folder.is_dir():
            raise DataError(f"{folder}: image folder not found (listed in [image] train_dirs of {comp.spec_file})")
        for label_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            for img in _images_under(label_dir):
                rows.append((img.relative_to(data_dir).as_posix(), label_dir.name, str(img)))
    if not rows:
        raise DataError(f"{data_dir}: no images found under {', '.join(comp.image.train_dirs)}/<label>/; "
                        f"expected files ending in {', '.join(IMAGE_EXTENSIONS)}")
    train = pd.DataFrame(rows, columns=[comp.id_column, target, "path"])
    test = None
    if comp.image.test_dir:
        folder = data_dir / comp.image.test_dir
        if not folder.is_dir():
            raise DataError(f"{folder}: test image folder not found (test_dir in [image] of {comp.spec_file})")
        imgs = _images_under(folder)
        test = pd.DataFrame({comp.id_column: [p.relative_to(data_dir).as_posix() for p in imgs],
                             "path": [str(p) for p in imgs]})
    return train, test


def csv_paths(df: pd.DataFrame, template: str, data_dir: Path, file: Path) -> list[str]:
    """Fill ``template`` (e.g. ``"train_images/{label}/{image_id}"``) from each row of ``df``."""
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    for f in fields:
        if f not in df.columns:
            raise DataError(f"{file}: image path template {template!r} uses column {f!r}, which is missing"
                            f"{did_you_mean(f, map(str, df.columns))}; columns found: {', '.join(map(str, df.columns))}")
    cols = [df[f].astype(str).tolist() for f in fields]
    paths = [str(data_dir / template.format(**dict(zip(fields, vals, strict=True)))) for vals in zip(*cols, strict=True)]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise DataError(f"{file}: {len(missing)} of {len(paths)} images named by {template!r} do not exist, "
                        f"e.g. {missing[0]}")
    return paths
