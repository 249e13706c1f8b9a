"""``kk train``'s per-epoch table: its header and one line per epoch (printed by the CLI, and by
rank 0 of a run with several processes)."""

from __future__ import annotations

from typing import Any

EPOCH_HEADER = (f"{'fold':>4} {'phase':>6} {'size':>4} {'epoch':>5} {'train_loss':>10} {'valid_loss':>10} "
                f"{'score':>8} {'img/s':>7} {'time':>6}")


def format_epoch(row: dict[str, Any]) -> str:
    """One line of the table (see :data:`EPOCH_HEADER`)."""
    return (f"{row['fold']:>4} {row['phase']:>6} {row['size']:>4} {row['epoch']:>5} {row['train_loss']:>10.4f} "
            f"{row['valid_loss']:>10.4f} {row['cv']:>8.4f} {row['images_per_s']:>7.1f} {row['seconds']:>5.1f}s")
