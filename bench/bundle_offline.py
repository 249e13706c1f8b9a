"""`kk bundle` end to end: wheels for the core install, then the notebook's install line in a fresh
venv with --no-index (pip uses no network), then kagglekit runs a baseline from that venv."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO

if __name__ == "__main__":
    tmp = Path(tempfile.mkdtemp(prefix="kk-bundle-"))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kagglekit", "bundle", str(tmp / "wheels")], check=True, cwd=REPO)
    wheels = sorted((tmp / "wheels").glob("*.whl"))
    size = sum(w.stat().st_size for w in wheels) / 2**20
    print(f"bundle: {len(wheels)} wheels, {size:.0f} MiB, {time.perf_counter() - t:.1f} s")
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    py = tmp / "venv" / "bin" / "python"
    t = time.perf_counter()
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(tmp / "wheels"),
                    "kagglekit"], check=True)
    print(f"offline install (--no-index): {time.perf_counter() - t:.1f} s")
    code = (f"import kagglekit as kk, os; os.chdir({str(REPO)!r}); "
            "r = kk.baseline('playground-churn', models=('lgbm',)); "
            "print(f'baseline from the offline venv: CV {r.best.cv:.4f}, submission {r.submission}')")
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp)
    print(out.stdout.strip() or out.stderr.strip().splitlines()[-1])
