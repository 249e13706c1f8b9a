"""``kk train --devices N``: start N training processes with torchrun and collect rank 0's result.

The parent process writes what to train (the competition, its workspace and the resolved
configuration) to a private folder, runs ``python -m torch.distributed.run --standalone
--nproc_per_node N -m kagglekit.vision.launch <folder>``, and reads back the result rank 0 leaves
there. Each child joins the process group (see :mod:`.distributed`) and runs the ordinary
``train``: the same code path as one process.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import RunError
from ..spec import Competition
from ..workspace import Workspace
from .config import TrainConfig, TrainResult

EPOCH_HEADER = (f"{'fold':>4} {'phase':>6} {'size':>4} {'epoch':>5} {'train_loss':>10} {'valid_loss':>10} "
                f"{'score':>8} {'img/s':>7} {'time':>6}")


def format_epoch(row: dict[str, Any]) -> str:
    """One line of ``kk train``'s per-epoch table (see :data:`EPOCH_HEADER`)."""
    return (f"{row['fold']:>4} {row['phase']:>6} {row['size']:>4} {row['epoch']:>5} {row['train_loss']:>10.4f} "
            f"{row['valid_loss']:>10.4f} {row['cv']:>8.4f} {row['images_per_s']:>7.1f} {row['seconds']:>5.1f}s")


def torchrun_command(nproc: int, folder: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "kagglekit.vision.launch", str(folder)]


def launch(ws: Workspace, comp: Competition, cfg: TrainConfig, *, resume: str | None, submit: bool,
           progress: bool, new: bool = False, record: dict[str, Any] | None = None) -> TrainResult:
    """Train with ``cfg.devices`` processes; returns rank 0's result. The children print the epoch
    table themselves (their output is this process's)."""
    with tempfile.TemporaryDirectory(prefix="kk-ddp-") as tmp:
        folder = Path(tmp)
        with open(folder / "job.pkl", "wb") as f:
            pickle.dump({"ws": ws, "comp": comp, "cfg": cfg, "resume": resume, "submit": submit,
                         "progress": progress, "new": new, "record": record}, f)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        sys.stdout.flush()
        proc = subprocess.run(torchrun_command(cfg.devices, folder), env=env)
        if proc.returncode != 0 or not (folder / "result.pkl").is_file():
            raise RunError(f"kk train --devices {cfg.devices}: a training process failed (exit code "
                           f"{proc.returncode}); its error is printed above. An interrupted run continues with "
                           "kk train --resume RUN_ID")
        with open(folder / "result.pkl", "rb") as f:
            return pickle.load(f)


def main(folder: str) -> None:
    """One training process under torchrun."""
    from ..errors import one_line_warnings
    from .distributed import Dist, shutdown
    from .training import train

    with open(Path(folder) / "job.pkl", "rb") as f:
        job = pickle.load(f)
    rank = int(os.environ.get("RANK", "0"))
    one_line_warnings()
    log = (lambda row: print(format_epoch(row), flush=True)) if rank == 0 else None
    try:
        result = train(job["comp"], job["cfg"] if job["resume"] is None else None, workspace=job["ws"],
                       resume=job["resume"], progress=job["progress"], log=log, submit=job["submit"],
                       new=job["new"], record=job["record"])
        if Dist(rank).main:
            tmp = Path(folder) / "result.tmp"
            with open(tmp, "wb") as f:
                pickle.dump(result, f)
            os.replace(tmp, Path(folder) / "result.pkl")
    finally:
        shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
