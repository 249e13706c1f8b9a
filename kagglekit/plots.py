"""Plots over a competition's runs (``kk runs --plot``): drawn on ``matplotlib.figure.Figure``,
never through pyplot, so a notebook's backend is left alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .runs import Run


def cv_vs_lb(runs: list[Run]) -> list[dict[str, Any]]:
    """(run id, CV, public, private) of every run that has leaderboard scores."""
    out = []
    for r in runs:
        lb = r.lb or {}
        if r.cv is None or (lb.get("public") is None and lb.get("private") is None):
            continue
        out.append({"id": r.id, "cv": float(r.cv), "public": lb.get("public"), "private": lb.get("private")})
    return out


def correlation(points: list[dict[str, Any]], board: str) -> float | None:
    """Pearson correlation of CV with the ``board`` score; None with fewer than 3 points."""
    pairs = np.array([(p["cv"], p[board]) for p in points if p[board] is not None], dtype=float)
    if len(pairs) < 3 or np.ptp(pairs[:, 0]) == 0 or np.ptp(pairs[:, 1]) == 0:
        return None
    return float(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1])


def cv_vs_lb_png(points: list[dict[str, Any]], metric: str, path: Path, title: str) -> Path:
    """CV against public and private leaderboard scores, one point per submitted run, with the
    diagonal: points far off it are where the CV stopped telling the truth."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    cv = np.array([p["cv"] for p in points])
    for board, marker, colour in (("public", "o", "C0"), ("private", "s", "C3")):
        pts = [(p["cv"], p[board]) for p in points if p[board] is not None]
        if pts:
            r = correlation(points, board)
            label = f"{board} LB" + (f" (r = {r:.2f})" if r is not None else "")
            ax.scatter(*zip(*pts, strict=True), marker=marker, color=colour, label=label, alpha=0.8)
    lo = min(cv.min(), *(p[b] for p in points for b in ("public", "private") if p[b] is not None))
    hi = max(cv.max(), *(p[b] for p in points for b in ("public", "private") if p[b] is not None))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="LB = CV")
    ax.set_xlabel(f"CV ({metric})")
    ax.set_ylabel(f"leaderboard ({metric})")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
