"""Images for training: a pre-resized cache, albumentations transforms and a Dataset.

Each image is decoded and resized once (shorter side to the largest size a run needs, aspect kept,
never enlarged), stored as PNG under the workspace cache keyed by the source file's path, size and
mtime, and held in memory for the run: epochs never decode full-size JPEGs again.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import DataError

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations checks PyPI on import otherwise


def _cache_key(path: str, size: int) -> str:
    st = os.stat(path)
    key = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{size}|bicubic"
    return hashlib.sha1(key.encode()).hexdigest()


def _load_one(path: str, size: int, cache_dir: Path | None) -> np.ndarray:
    from PIL import Image

    cached = cache_dir / f"{_cache_key(path, size)}.png" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        with Image.open(cached) as im:
            return np.asarray(im.convert("RGB"))
    with Image.open(path) as im:
        im.load()
        im = _to_rgb(im)
        w, h = im.size
        scale = size / min(w, h)
        if scale < 1:
            # bicubic (antialiased when shrinking), as timm's pretrained models were evaluated:
            # measured 0.992 vs 0.988 frozen-feature accuracy on dogs vs cats for bilinear
            im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)
        arr = np.asarray(im)
    if cached is not None:
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        Image.fromarray(arr).save(tmp, format="PNG", compress_level=1)
        os.replace(tmp, cached)
    return arr


def _to_rgb(im):
    """8-bit RGB. 16-bit greyscale (medical and satellite PNGs: modes I;16 and I) is scaled
    from 0-65535 to 0-255: PIL's own convert("RGB") clips it to pure black and white."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() <= 65535 else float(arr.max())
        grey = np.clip(np.round(arr / top * 255), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    return im.convert("RGB")


def load_or_skip(path: str, size: int, cache_dir: Path | None, skip_bad: bool) -> np.ndarray | None:
    """One image resized to shorter side ``size`` (through the PNG cache in ``cache_dir``, if any).
    An unreadable file raises :class:`DataError` naming it; with ``skip_bad``, a warning and None."""
    try:
        return _load_one(path, size, cache_dir)
    except Exception as e:  # PIL raises many types for corrupt files
        if skip_bad:
            warnings.warn(f"skipping unreadable image {path}: {e}", stacklevel=3)
            return None
        raise DataError(f"{path}: cannot read image ({type(e).__name__}: {e}); fix or remove it, or pass "
                        "--skip-bad-images") from None


def load_images(paths: list[str], size: int, cache_dir: Path | None = None, *, skip_bad: bool = False,
                progress: bool = False, threads: int | None = None) -> list[np.ndarray | None]:
    """Decode (or read from the cache) every image, resized so its shorter side is at most ``size``.

    An unreadable image raises :class:`DataError` naming the file; with ``skip_bad`` it gives None
    and a warning instead.
    """
    if cache_dir is not None:
        cache_dir = Path(cache_dir) / f"short{size}"
        cache_dir.mkdir(parents=True, exist_ok=True)

    def one(path: str) -> np.ndarray | None:
        return load_or_skip(path, size, cache_dir, skip_bad)

    threads = threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(threads) as pool:
        it = pool.map(one, paths)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, total=len(paths), desc="caching images", unit="img", leave=False, disable=None)
        return list(it)


def trivial_augment(strength: float = 1.0):
    """TrivialAugment (Müller & Hutter, 2021) in albumentations: one operation drawn uniformly from
    RandAugment's fourteen (identity included), at a magnitude drawn uniformly up to the standard
    maximum x ``strength``: shear 0.3, translate 45%, rotate 30 degrees, brightness, colour,
    contrast and sharpness factors 1 +/- 0.9, posterize to 4 bits, solarize, autocontrast, equalize."""
    import albumentations as A

    m = max(0.0, min(strength, 1.0))
    shear, turn, factor = float(np.degrees(np.arctan(0.3 * m))), 30.0 * m, (1 - 0.9 * m, 1 + 0.9 * m)
    still = {"brightness": 0, "contrast": 0, "saturation": 0, "hue": 0}
    ops = [A.NoOp(p=1.0),
           A.Affine(shear={"x": (-shear, shear), "y": (0, 0)}, p=1.0),
           A.Affine(shear={"x": (0, 0), "y": (-shear, shear)}, p=1.0),
           A.Affine(translate_percent={"x": (-0.45 * m, 0.45 * m), "y": (0, 0)}, p=1.0),
           A.Affine(translate_percent={"x": (0, 0), "y": (-0.45 * m, 0.45 * m)}, p=1.0),
           A.Affine(rotate=(-turn, turn), p=1.0),
           A.ColorJitter(**{**still, "brightness": factor}, p=1.0),
           A.ColorJitter(**{**still, "saturation": factor}, p=1.0),
           A.ColorJitter(**{**still, "contrast": factor}, p=1.0),
           A.Sharpen(alpha=(0.0, 0.9 * m), lightness=(1.0, 1.0), p=1.0),
           A.Posterize(num_bits=(max(1, round(8 - 4 * m)), 8), p=1.0),
           A.Solarize(threshold_range=(1 - m, 1.0), p=1.0),
           A.AutoContrast(p=1.0),
           A.Equalize(p=1.0)]
    return A.OneOf(ops, p=1.0)


def build_transforms(size: int, mean: tuple[float, ...], std: tuple[float, ...], *, train: bool,
                     resize: str = "squish", crop_pct: float = 1.0, flip: bool = True, strength: float = 1.0,
                     seed: int | None = None, mirror: bool = False, policy: str = "basic"):
    """albumentations pipelines. Train: random resized crop (scale 0.75-1), flips, then ``policy``:
    basic (small affine, brightness/contrast) or trivial (:func:`trivial_augment`). Valid/test:
    resize to ``size`` by squish, pad or crop (shorter side to ``size / crop_pct``, then the centre
    ``size`` x ``size``: timm's evaluation transform). ``mirror`` flips the validation transform's
    output left-right (TTA's deterministic view). albumentations 2.x ignores the global seeds:
    ``seed`` makes its random draws reproducible."""
    import albumentations as A
    import cv2

    norm = A.Normalize(mean=mean, std=std, max_pixel_value=255.0)
    if train:
        ops = [A.RandomResizedCrop(size=(size, size), scale=(1 - 0.25 * strength, 1.0))]
        if flip:
            ops.append(A.HorizontalFlip(p=0.5))
        if policy == "trivial" and strength > 0:
            ops.append(trivial_augment(strength))
        elif strength > 0:
            ops += [A.Affine(rotate=(-10 * strength, 10 * strength), scale=(1 - 0.1 * strength, 1 + 0.1 * strength),
                             translate_percent=(-0.05 * strength, 0.05 * strength), p=0.5),
                    A.RandomBrightnessContrast(brightness_limit=0.2 * strength, contrast_limit=0.2 * strength, p=0.5)]
        return A.Compose([*ops, norm], seed=seed)
    # bicubic, as timm's pretrained models were evaluated; area averaging when shrinking. (The
    # cache never enlarges, so small photos are enlarged here: INTER_AREA alone enlarges blockily,
    # measured 0.986 vs 0.990-0.994 frozen-feature accuracy on dogs vs cats.)
    interp = {"interpolation": cv2.INTER_CUBIC, "area_for_downscale": "image"}
    if resize == "crop":
        ops = [A.SmallestMaxSize(max_size=max(size, round(size / crop_pct)), **interp), A.CenterCrop(size, size)]
    elif resize == "pad":
        ops = [A.LongestMaxSize(max_size=size, **interp),
               A.PadIfNeeded(size, size, border_mode=cv2.BORDER_CONSTANT, fill=0)]
    else:
        ops = [A.Resize(size, size, **interp)]
    if mirror:
        ops.append(A.HorizontalFlip(p=1.0))
    return A.Compose([*ops, norm])


def reseed(transform, seed: int) -> None:
    """Seed an albumentations pipeline for one image. What ``Compose.set_random_seed`` does, with
    one counter-based generator (Philox, no seed hashing) shared by every transform instead of one
    hashed generator each: measured 0.04 ms instead of 0.4 ms per 160-px image, where the
    augmentation itself takes 0.64 ms."""
    import random

    g, r = np.random.Generator(np.random.Philox(key=seed)), random.Random(seed)
    stack = [transform]
    while stack:  # nested ones too (OneOf's choices)
        t = stack.pop()
        t.random_generator, t.py_random = g, r
        stack.extend(getattr(t, "transforms", ()))


class ImageDataset:
    """(image tensor CHW float32, target vector) pairs: row ``rows[k]`` of ``images`` (a list in
    memory or a :class:`~kagglekit.vision.packed.PackedImages`) with ``targets[k]``. Keys are
    ``(k, epoch)``: the random augmentation of an image is drawn from its own seed (``seed``, the
    epoch and its row), the same in any worker or DDP process."""

    def __init__(self, images, rows: np.ndarray, targets: np.ndarray | None, transform, seed: int = 0):
        self.images, self.rows, self.targets, self.transform, self.seed = images, rows, targets, transform, seed

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key):
        import torch

        k, epoch = key if isinstance(key, tuple) else (key, 0)
        row = int(self.rows[k])
        reseed(self.transform, (self.seed * 1_000_003 + epoch * 104_729 + row) % 2**32)
        x = self.transform(image=self.images[row])["image"]
        x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
        y = torch.from_numpy(self.targets[k]) if self.targets is not None else torch.zeros(0)
        return x, y
