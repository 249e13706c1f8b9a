"""Writing files safely: atomic writes through a temporary file and a rename, with the permissions
a plain ``open()`` would give. Used by every module that writes (runs, folds, submissions, the
Kaggle client, the built-in data); imports nothing of kagglekit's."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def umask_mode(directory: bool = False) -> int:
    """Permissions a plain ``open()`` / ``mkdir()`` would give: 0666 / 0777 less the process umask
    (mkstemp's 0600 and mkdtemp's 0700 would lock other users of a shared runs/ or data/ folder out
    of files they need, e.g. for kk merge)."""
    return (0o777 if directory else 0o666) & ~_umask()


@functools.cache
def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (setting it to read it back
    would briefly give files created by other threads, e.g. the image cache's, no mask at all)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def unique_dir(parent: Path, name: str, tries: int = 1000) -> Path:
    """Create and return a new folder ``parent/name``, or ``name-2``, ``name-3``... when taken: an
    atomic mkdir, so two processes never get the same folder and nothing earlier is reused."""
    parent.mkdir(parents=True, exist_ok=True)
    for i in range(tries):
        path = parent / (name if i == 0 else f"{name}-{i + 1}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{parent}: {name} and {tries - 1} numbered variants are all taken")
