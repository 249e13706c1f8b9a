"""`kk tune titanic --model lgbm --trials 50`: default vs tuned CV and wall time; then N trials run by
one single-threaded worker against the same N shared by two concurrent single-threaded workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime

from _common import REPO, SHARED, kk, need_shared

N = 60


def workers(study: str, count: int, trials_each: int) -> float:
    url = f"sqlite:///{REPO / 'runs/titanic/tune' / f'{study}.db'}"
    cmd = [sys.executable, "-m", "kagglekit", "tune", "titanic", "--trials", str(trials_each), "--storage", url,
           "--study", study, "--threads", "1", "--no-finalize"]
    env = {**os.environ, "KK_DATA_DIR": str(SHARED)}
    t = time.perf_counter()
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(count)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            sys.exit(err.decode())
    return time.perf_counter() - t


if __name__ == "__main__":
    need_shared("titanic")
    stamp = datetime.now().strftime("%H%M%S")
    wall, r = kk("tune", "titanic", "--model", "lgbm", "--trials", "50", "--study", f"bench50-{stamp}",
                 "--name", f"titanic-lgbm-bench-{stamp}", "--seed", "0")
    print(r.stdout.strip())
    (REPO / "pipelines" / f"titanic-lgbm-bench-{stamp}.toml").unlink(missing_ok=True)  # a bench, not a user's recipe
    print(f"kk tune titanic --trials 50: {wall:.1f} s wall")
    one = workers(f"one-{stamp}", 1, N)
    two = workers(f"two-{stamp}", 2, N // 2)
    print(f"{N} trials, one single-threaded worker:         {one:6.1f} s")
    print(f"{N} trials, two concurrent single-threaded workers: {two:6.1f} s ({one / two:.2f}x faster)")
