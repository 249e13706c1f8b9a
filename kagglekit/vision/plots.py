"""PNG plots a person would rather look at than read: lr finder, confusion matrix, top losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _figure(**kw):
    """A figure outside pyplot: nothing switches the user's backend or leaks open figures."""
    from matplotlib.figure import Figure

    return Figure(**kw)


def lr_find_png(lrs: np.ndarray, losses: np.ndarray, suggestion: float, path: Path, title: str = "") -> Path:
    fig = _figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(lrs, losses, color="#3b75af")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss (smoothed)")
    i = int(np.argmin(np.abs(np.log(lrs) - np.log(suggestion))))
    ax.plot([lrs[i]], [losses[i]], "o", color="#d62728", markersize=8, label=f"valley: {suggestion:.2e}")
    ax.legend()
    ax.set_title(f"learning-rate finder {title}".strip())
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def confusion_matrix_png(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], path: Path,
                         title: str = "") -> Path:
    k = len(classes)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y_true.astype(int), y_pred.astype(int)), 1)
    fig = _figure(figsize=(1.2 + 0.55 * k, 1.0 + 0.5 * k))
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    for i in range(k):
        for j in range(k):
            colour = "white" if cm[i, j] > cm.max() / 2 else "black"
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=colour)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def top_losses_png(paths: np.ndarray, y_true: np.ndarray, proba: np.ndarray, classes: list[str], path: Path,
                   n: int = 9) -> Path:
    """The images the model gets most wrong (highest cross-entropy): where mislabelled data hides."""
    from PIL import Image

    loss = -np.log(np.clip(proba[np.arange(len(y_true)), y_true.astype(int)], 1e-12, 1))
    order = np.argsort(-loss)[:n]
    cols = 3
    rows = max(1, int(np.ceil(len(order) / cols)))
    fig = _figure(figsize=(3 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols)
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, i in zip(np.atleast_1d(axes).ravel(), order, strict=False):
        try:
            with Image.open(paths[i]) as im:
                ax.imshow(im.convert("RGB"))
        except OSError:  # an unreadable image skipped in training (--skip-bad-images)
            ax.text(0.5, 0.5, f"unreadable:\n{Path(str(paths[i])).name}", ha="center", va="center", fontsize=8)
        p = proba[i]
        ax.set_title(f"pred {classes[int(p.argmax())]} / actual {classes[int(y_true[i])]}\n"
                     f"loss {loss[i]:.2f} / p(actual) {p[int(y_true[i])]:.2f}", fontsize=8)
    fig.suptitle("top losses (prediction / actual / loss / probability of actual)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def calibration_png(curve: list[tuple[float, float, int]], ece: float, path: Path, title: str = "") -> Path:
    """Reliability curve: accuracy against confidence per bin (points sized by count); the diagonal
    is perfect calibration, points below it are over-confident."""
    fig = _figure(figsize=(4.6, 4.4))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--", label="calibrated")
    if curve:
        c, a, n = (np.array(v, dtype=float) for v in zip(*curve, strict=True))
        ax.plot(c, a, color="#3b75af", lw=1.5)
        ax.scatter(c, a, s=20 + 200 * n / n.max(), color="#3b75af", zorder=3, label="OOF predictions")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title} ECE {ece:.3f}".strip())
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
