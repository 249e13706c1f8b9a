"""``kk train``'s entry: the run's configuration, then one training process, or N under torchrun.

:func:`train` resolves what to train (the competition, the configuration from the spec's
``[train]`` table and the flags, or an interrupted run's own) and either trains in this process
(:func:`.training.train_here`) or, with ``devices`` > 1, writes the job to a private folder, runs
``python -m torch.distributed.run --standalone --nproc_per_node N -m kagglekit.vision.launch
<folder>`` and reads back the result rank 0 leaves there. Each child joins the process group (see
:mod:`.distributed`) and runs the same ``train_here``: the same code path as one process.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import RunError, SpecError
from ..runs import RunStore
from ..spec import Competition
from ..trainconfig import TrainConfig
from ..workspace import Workspace, resolve
from .config import TrainResult, config_of, machine_plan, resolve_config
from .progress import format_epoch
from .training import Log, train_here


def train(competition: str | Competition, config: TrainConfig | None = None, *, workspace: Workspace | None = None,
          resume: str | None = None, progress: bool = False, log: Log | None = None, submit: bool = True,
          new: bool = False, record: dict[str, Any] | None = None, **overrides: Any) -> TrainResult:
    """Fine-tune ``config.arch`` on every fold (or ``config.folds``) and store the run. Unset
    settings come from the competition's ``[train]`` table, then TrainConfig's defaults;
    ``overrides`` (flags, recipe stages) go on top. ``resume`` continues an interrupted run with its
    own configuration. With ``devices`` > 1, one DDP process per device trains. A finished run with
    the same configuration on the same data and folds is returned instead of training again, unless
    ``new``. ``record`` adds entries to the new run's config."""
    t0 = time.perf_counter()
    ws, comp = resolve(competition, workspace)
    if comp.kind != "image":
        raise SpecError(f"{comp.name} is a tabular competition; use 'kk baseline {comp.name}' instead of train")
    run_path = None
    if resume:
        run = RunStore(ws, comp.name).get(resume, include_incomplete=True)
        if run.complete:
            raise RunError(f"run {resume} is already complete; nothing to resume")
        cfg, run_path = config_of(run.config), run.path
    else:
        cfg = resolve_config(comp, config, overrides)
    job: dict[str, Any] = {"ws": ws, "comp": comp, "cfg": cfg, "run_path": run_path, "submit": submit,
                           "progress": progress, "new": new, "record": record}
    from .distributed import launched

    if (cfg.devices > 1 or cfg.nnodes > 1) and not launched():
        machine_plan(cfg, cfg.devices)  # --devices 2 on a machine with one GPU: one line, before torchrun
        return launch(job)
    return train_here(**job, log=log, t0=t0)


def torchrun_command(cfg: TrainConfig, folder: Path) -> list[str]:
    """torchrun for ``cfg``: ``--standalone`` on one machine; across ``nnodes`` machines, torchrun's
    static rendezvous at node 0's ``master`` address, so that node ``node_rank`` holds the global
    ranks ``node_rank * devices`` onwards and node 0 holds rank 0, which writes the run."""
    if cfg.nnodes > 1:
        assert cfg.master is not None
        host, _, port = cfg.master.rpartition(":")
        where = [f"--nnodes={cfg.nnodes}", f"--node-rank={cfg.node_rank}", f"--master-addr={host}",
                 f"--master-port={port}"]
    else:
        where = ["--standalone"]
    return [sys.executable, "-m", "torch.distributed.run", *where, f"--nproc-per-node={cfg.devices}",
            "-m", "kagglekit.vision.launch", str(folder)]


def launch(job: dict[str, Any]) -> TrainResult:
    """Train ``job`` (train_here's arguments) with ``job["cfg"].devices`` processes; returns rank 0's
    result. The children print the epoch table themselves (their output is this process's)."""
    cfg = job["cfg"]
    devices = cfg.devices
    with tempfile.TemporaryDirectory(prefix="kk-ddp-") as tmp:
        folder = Path(tmp)
        with open(folder / "job.pkl", "wb") as f:
            pickle.dump(job, f)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        sys.stdout.flush()
        proc = subprocess.run(torchrun_command(cfg, folder), env=env)
        if proc.returncode != 0 or not (folder / "result.pkl").is_file():
            raise RunError(f"kk train --devices {devices}: a training process failed (exit code "
                           f"{proc.returncode}); its error is printed above. An interrupted run continues with "
                           "kk train --resume RUN_ID")
        with open(folder / "result.pkl", "rb") as f:
            result = pickle.load(f)
    result.written_here = cfg.node_rank == 0  # node 0's rank 0 wrote the run, on node 0's disk
    return result


def main(folder: str) -> None:
    """One training process under torchrun."""
    from ..errors import one_line_warnings
    from .distributed import shutdown

    with open(Path(folder) / "job.pkl", "rb") as f:
        job = pickle.load(f)
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    one_line_warnings()
    log = (lambda row: print(format_epoch(row), flush=True)) if rank == 0 else None
    try:
        result = train_here(**job, log=log)
        if local_rank == 0:  # every node's kk train returns rank 0's result
            tmp = Path(folder) / "result.tmp"
            with open(tmp, "wb") as f:
                pickle.dump(result, f)
            os.replace(tmp, Path(folder) / "result.pkl")
    finally:
        shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
