"""Images larger than memory: the pre-resized images packed once into one file of raw uint8 pixels
on disk, read lazily, image by image, by the DataLoader.

``kk train`` holds the pre-resized images in memory when they fit (fastest: epochs never decode a
file again) and streams them from a packed file when they would not (``cache = "auto"``, the
default; ``--cache memory`` or ``--cache disk`` to choose). The packed file is one flat byte array:
image ``i`` is ``h x w x 3`` bytes at ``offset[i]`` (shorter side ``side``, aspect kept, never
enlarged). Reads are ``preadv`` calls into a fresh array, so the pixels go through the operating
system's page cache, not the process's memory: its resident size stays flat however many images
there are, and every DataLoader worker and every DDP process shares the one page cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import DataError, KKError
from ..trainconfig import CACHE_MODES
from ..workspace import human_bytes

MEMORY_SHARE = 0.25  # "auto" holds images in memory when they take at most this share of the available memory


class PackedImages(Sequence):
    """A read-only sequence of uint8 HWC images backed by a packed file (see the module's doc).
    Unreadable source images (``bad``) read as black ``side x side`` images. Picklable: each
    process (DataLoader worker, DDP rank) opens its own file descriptor."""

    def __init__(self, path: Path):
        self.path = Path(path)
        with np.load(self.path.with_suffix(".idx.npz")) as z:
            self.offsets, self.shapes, self.ok = z["offsets"], z["shapes"], z["ok"]
            self.side = int(z["side"])
        self._fd: int | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def bad(self) -> frozenset[int]:
        return frozenset(np.flatnonzero(~self.ok).tolist())

    @property
    def nbytes(self) -> int:
        return int(self.shapes.prod(axis=1).sum() * 3)

    def _handle(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked worker opens its own
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not self.ok[i]:
            return np.zeros((self.side, self.side, 3), np.uint8)
        h, w = (int(v) for v in self.shapes[i])
        out = np.empty((h, w, 3), np.uint8)
        got = os.preadv(self._handle(), [memoryview(out).cast("B")], int(self.offsets[i]))
        if got != out.nbytes:
            raise DataError(f"{self.path}: packed image cache is truncated at image {i}; delete the file to "
                            "rebuild it")
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None, "_pid": -1}

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass


def _key(paths: list[str], side: int) -> str:
    from .data import _cache_key

    h = hashlib.sha1(f"{side}|{len(paths)}".encode())
    for p in paths:
        try:
            h.update(_cache_key(p, side).encode())
        except OSError:  # a missing file is reported when it is decoded
            h.update(f"missing|{p}".encode())
    return h.hexdigest()[:20]


def pack_images(paths: list[str], side: int, cache_dir: Path, *, skip_bad: bool = False,
                progress: bool = False, threads: int | None = None, chunk: int = 256) -> PackedImages:
    """The packed file of ``paths`` at shorter side ``side`` under ``cache_dir``, built once (keyed by
    every source file's path, size and mtime) and reused by later runs. Decoding runs on threads a
    chunk at a time, so building never holds more than ``chunk`` images in memory."""
    from .data import load_or_skip

    folder = Path(cache_dir) / f"packed{side}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_key(paths, side)}.u8"
    if path.is_file() and path.with_suffix(".idx.npz").is_file():
        return PackedImages(path)
    n = len(paths)
    need, free = estimated_bytes(n, side), shutil.disk_usage(folder).free
    if need > free:  # Kaggle's /kaggle/working holds ~20 GB: say so before filling it
        raise KKError(f"no space left on device for the image cache: packing {n} images at shorter side {side} "
                      f"needs about {human_bytes(need)} in {folder}, {human_bytes(free)} is free; use "
                      "--cache memory, smaller --sizes, or free space there")
    offsets, shapes, ok = np.zeros(n, np.int64), np.zeros((n, 2), np.int64), np.ones(n, bool)

    def one(p: str) -> np.ndarray | None:
        return load_or_skip(p, side, None, skip_bad)  # straight from the source: no PNG copies

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="packing images", unit="img", leave=False, disable=None)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    pos = 0
    try:
        with open(tmp, "wb") as f, ThreadPoolExecutor(threads or min(8, os.cpu_count() or 1)) as pool:
            for start in range(0, n, chunk):
                for i, arr in enumerate(pool.map(one, paths[start:start + chunk]), start):
                    if arr is None:
                        ok[i] = False
                        continue
                    arr = np.ascontiguousarray(arr, np.uint8)
                    offsets[i], shapes[i] = pos, arr.shape[:2]
                    f.write(arr.tobytes())
                    pos += arr.nbytes
                if bar is not None:
                    bar.update(min(chunk, n - start))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    idx_tmp = path.with_suffix(f".{os.getpid()}.idx.npz")
    np.savez(idx_tmp, offsets=offsets, shapes=shapes, ok=ok, side=np.int64(side))
    os.replace(tmp, path)  # pixels first, index last: an index always has its pixels
    os.replace(idx_tmp, path.with_suffix(".idx.npz"))
    return PackedImages(path)


def available_memory() -> int:
    """Bytes of memory available to new allocations (MemAvailable), or the physical total."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimated_bytes(n: int, side: int, aspect: float = 4 / 3) -> int:
    """Memory that ``n`` images cached at shorter side ``side`` take (photos are about 4:3)."""
    return int(n * side * side * aspect * 3)


def choose_mode(mode: str, n: int, side: int, copies: int = 1) -> str:
    """``memory`` or ``disk``: ``auto`` streams from disk when ``copies`` in-memory copies (one per
    DDP process) would take more than a quarter of the available memory."""
    if mode not in CACHE_MODES:
        raise KKError(f"--cache: expected one of {', '.join(CACHE_MODES)}, found {mode!r}")
    if mode != "auto":
        return mode
    return "disk" if estimated_bytes(n, side) * copies > MEMORY_SHARE * available_memory() else "memory"


def open_images(paths: list[str], side: int, cache_dir: Path, *, mode: str, skip_bad: bool = False,
                progress: bool = False) -> tuple[Sequence[np.ndarray], frozenset[int]]:
    """The images of ``paths`` (shorter side ``side``) as a sequence the loaders index, held in memory
    or streamed from a packed file (``mode`` is ``memory`` or ``disk``), and the indices of the
    unreadable ones (black placeholders, only with ``skip_bad``)."""
    if mode == "disk":
        packed = pack_images(paths, side, cache_dir, skip_bad=skip_bad, progress=progress)
        return packed, packed.bad
    from .data import load_images

    images = load_images(paths, side, cache_dir, skip_bad=skip_bad, progress=progress)
    bad = frozenset(i for i, im in enumerate(images) if im is None)
    blank = np.zeros((side, side, 3), np.uint8)
    return [blank if im is None else im for im in images], bad
