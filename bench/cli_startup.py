"""Cold start of `kk --help` against `python -c pass` (the floor), median of 7 runs each."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def timed(cmd: list[str], n: int = 7) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


if __name__ == "__main__":
    floor = timed([sys.executable, "-c", "pass"])
    help_ = timed([sys.executable, "-m", "kagglekit", "--help"])
    heavy = timed([sys.executable, "-c", "import pandas, sklearn, lightgbm"])
    print(f"python -c pass                       {floor:6.3f} s")
    print(f"kk --help                            {help_:6.3f} s   (+{help_ - floor:.3f} s over the floor)")
    print(f"for scale: import pandas+sklearn+lgbm {heavy:6.3f} s   (what --help avoids)")
    print("target: kk --help under 0.3 s:", "met" if help_ < 0.3 else "NOT met")
