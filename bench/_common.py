"""Helpers for the benchmark scripts: where the repo and the shared data are, and timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the real competition files beside the repo, or elsewhere (KK_SHARED_DATA, e.g. on a GPU machine)
SHARED = Path(os.environ.get("KK_SHARED_DATA", REPO.parent / "shared" / "data"))


def need_shared(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        print(f"skipped: {path} not found (real data lives beside the repo in ../shared/data)")
        sys.exit(0)
    return path


def kk(*args: str, env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``kk`` in a fresh process; return (wall seconds, completed process)."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "kagglekit", *args], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, "KK_DATA_DIR": str(SHARED), **(env or {})})
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"kk {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return wall, r


def newest_runs(competition: str, n: int) -> list[dict]:
    _, r = kk("runs", competition, "--json")
    rows = json.loads(r.stdout)
    return sorted(rows, key=lambda s: s["created"] or "", reverse=True)[:n]


def new_workspace(name: str, data: Path, prefix: str):
    """A fresh temporary workspace with the spec ``kk new`` writes for ``name`` (its files under
    ``data``, which becomes ``KK_DATA_DIR``). Returns (workspace, spec file). ``kk new`` unedited."""
    import tempfile

    from kagglekit.scaffold import new_competition
    from kagglekit.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix=prefix))
    (root / "competitions").mkdir()
    os.environ["KK_DATA_DIR"] = str(data)
    ws = Workspace.at(root)
    spec, _ = new_competition(name, ws)
    return ws, spec
