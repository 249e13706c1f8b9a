"""``kk bundle DIR``: a folder of wheels (kagglekit and its dependencies) to upload as a Kaggle
dataset, so a notebook with internet off installs with ``pip install --no-index --find-links``."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .errors import KKError

PROJECT = Path(__file__).resolve().parents[1]


def requirements(extras: tuple[str, ...] = ()) -> list[str]:
    """kagglekit's requirements: the core ones plus those of ``extras`` (markers resolved)."""
    wanted, out = set(extras), []
    reqs = metadata.requires("kagglekit") or []
    changed = True
    while changed:  # "all" = kagglekit[vision,kaggle,tune]: expand self-references first
        changed = False
        for req in reqs:
            spec, _, marker = req.partition(";")
            m = re.search(r'extra\s*==\s*"([^"]+)"', marker)
            inner = re.match(r"kagglekit\[([^\]]+)\]", spec.strip())
            if inner and m and m.group(1) in wanted and not set(inner.group(1).split(",")) <= wanted:
                wanted |= set(inner.group(1).split(","))
                changed = True
    for req in reqs:
        spec, _, marker = req.partition(";")
        m = re.search(r'extra\s*==\s*"([^"]+)"', marker)
        if (m is None or m.group(1) in wanted) and not spec.strip().startswith("kagglekit"):
            out.append(spec.strip())
    return out


# Kaggle's notebook image runs glibc 2.35: wheels for any of these platforms install there
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def bundle(dest: Path | str, *, extras: tuple[str, ...] = (), deps: bool = True, python_version: str | None = None,
           platforms: tuple[str, ...] = PLATFORMS) -> list[Path]:
    """Build kagglekit's wheel into ``dest`` and download its dependencies' wheels for the notebook's
    Python (``python_version``, default this one's) and platform."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if not (PROJECT / "pyproject.toml").is_file():
        raise KKError(f"kk bundle builds kagglekit's wheel from its source checkout; none at {PROJECT}")
    _pip(["wheel", "--no-deps", "--no-build-isolation", "-w", str(dest), str(PROJECT)])
    if deps:
        pv = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
        platform_args = [a for p in platforms for a in ("--platform", p)]
        _pip(["download", "-d", str(dest), "--only-binary=:all:", "--python-version", pv, *platform_args,
              "--implementation", "cp", *requirements(extras)])
    return sorted(dest.glob("*.whl"))


def _pip(args: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", *args, "-q", "--disable-pip-version-check"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise KKError(f"pip {args[0]} failed: {tail[0]}")
