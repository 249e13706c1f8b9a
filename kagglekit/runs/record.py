"""What a run records beside its predictions: the library versions and git commit it ran with, and
JSON written atomically (numpy values and paths as plain JSON)."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write_bytes

_VERSIONED = ("kagglekit", "numpy", "pandas", "scikit-learn", "lightgbm", "torch", "timm", "albumentations")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit(folder: Path) -> str | None:
    """The workspace's git commit, with ``+dirty`` when it has uncommitted changes. Commands a
    repository's config can make git run (``core.fsmonitor``) are switched off: a workspace
    copied from elsewhere must not run code when a run is recorded."""
    git = ["git", "-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false"]
    try:
        head = subprocess.run([*git, "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                              timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer | np.floating):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


