"""`kk run` end to end on the built-in competitions (generated data, known test labels): wall time,
final CV, held-out score of the submission; then a second `kk run`, which reuses every stage."""

from __future__ import annotations

from _common import kk

if __name__ == "__main__":
    for comp in ("playground-churn", "playground-shapes"):
        first, r = kk("run", comp)
        lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
        print(f"kk run {comp}: {first:.1f} s wall")
        for ln in lines:
            print("   " + ln)
        again, r2 = kk("run", comp)
        skipped = sum("skipped" in ln for ln in r2.stdout.splitlines())
        print(f"  second kk run {comp}: {again:.1f} s wall, {skipped} stages skipped")
