"""``kk doctor``: what kagglekit finds on this machine and what ``kk train`` will do here, then a
short real training step with exactly those settings.

The first command on a new notebook or machine: versions, GPUs, cores and DataLoader workers, the
precision and why, weights, the hub, Kaggle credentials (never their values), data folders and
whether the output folder is writable; then a smoke test (a forward, backward and optimizer step of
a small timm model, through kk's own loaders and training step) that reports img/s. Every check
is ok, a note, or a failure; a failure names what would fail and how to fix it.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import KKError
from .machine import Plan

SMOKE_ARCH = "resnet18"


@dataclass
class Check:
    name: str
    status: str  # ok | note | fail
    detail: str


@dataclass
class DoctorReport:
    versions: dict[str, str]
    gpus: list[dict[str, Any]]
    cores: int
    plan: dict[str, Any] | None
    checks: list[Check] = field(default_factory=list)
    smoke: dict[str, Any] | None = None

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": not self.failures}


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "kagglekit": _version("kagglekit"), "torch": _version("torch"),
           "timm": _version("timm"), "albumentations": _version("albumentations")}
    try:
        import torch

        out["cuda"] = torch.version.cuda or "none (CPU build)"
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        out["cudnn"] = str(cudnn) if cudnn else "none"
    except ImportError:
        pass
    return out


def _weights(weights: str | None) -> Check:
    from .vision.model import WEIGHT_SUFFIXES

    source = weights or os.environ.get("KK_WEIGHTS_DIR")
    if not source:
        return Check("weights", "note", "no --weights and KK_WEIGHTS_DIR unset: pretrained weights come from the hub "
                                        "(or training starts from scratch offline)")
    where = Path(source).expanduser()
    if not where.exists():
        origin = "--weights" if weights else "KK_WEIGHTS_DIR"
        return Check("weights", "fail", f"{origin}={source}: no such file or folder; point it at a weight file or "
                                        "a folder of them")
    files = [where] if where.is_file() else sorted(p for p in where.rglob("*") if p.suffix in WEIGHT_SUFFIXES)
    if not files:
        return Check("weights", "fail", f"{where}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) there")
    names = [p.stem if p.parent == where or where.is_file() else p.parent.name for p in files]
    return Check("weights", "ok", f"{len(files)} in {where}: {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}")


def _hub() -> Check:
    from .vision.model import _hub_offline_configured, _hub_reachable

    if _hub_offline_configured():
        return Check("hub", "note", "HF_HUB_OFFLINE is set: weights only from local files")
    t = time.perf_counter()
    ok = _hub_reachable(timeout=2.0)
    took = time.perf_counter() - t
    return Check("hub", "ok" if ok else "note", f"reachable ({took:.1f} s)" if ok else
                 "unreachable (2 s timeout): use --weights or KK_WEIGHTS_DIR for pretrained models")


def _credentials() -> Check:
    from .kaggle_client import credentials_source

    source = credentials_source()
    return Check("kaggle credentials", "ok" if source else "note",
                 f"from {source}" if source else "none found (needed by kk download and kk submit only)")


def _data_folders() -> list[Check]:
    from .workspace import KAGGLE_INPUT

    out = []
    for name, folder in (("/kaggle/input", str(KAGGLE_INPUT)), ("KK_DATA_DIR", os.environ.get("KK_DATA_DIR"))):
        if not folder:
            continue
        p = Path(folder)
        if p.is_dir():
            subs = sorted(c.name for c in p.iterdir() if c.is_dir())
            out.append(Check(f"data {name}", "ok", f"{p}: {len(subs)} folders ({', '.join(subs[:6])}"
                                                   f"{' ...' if len(subs) > 6 else ''})"))
        elif name == "KK_DATA_DIR":
            out.append(Check(f"data {name}", "fail", f"KK_DATA_DIR={folder}: no such folder"))
    return out


def _output(out_dir: Path) -> Check:
    """Whether runs, caches and submissions can be written to ``out_dir``, and the free space."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".kk-doctor-"):
            pass
    except OSError as e:
        return Check("output", "fail", f"{out_dir} is not writable ({e.strerror}): run from a writable folder "
                                       "(on Kaggle, /kaggle/working) or set KK_HOME")
    free = shutil.disk_usage(out_dir).free / 2**30
    status = "ok" if free >= 1 else "note"
    return Check("output", status, f"{out_dir} writable, {free:.1f} GiB free"
                 + ("" if free >= 1 else ": image caches and checkpoints may not fit"))


def smoke_test(run_plan: Plan, seconds: float = 6.0, arch: str = SMOKE_ARCH, size: int = 64) -> dict[str, Any]:
    """Train ``arch`` (random init) on generated images for about ``seconds``, through kk's own
    loaders (the plan's workers, pinned memory) and training step (the plan's device, precision and
    gradient scaler, memory format): what ``kk train`` would run. Returns img/s and what ran."""
    import numpy as np
    import torch

    from .vision.config import TrainConfig
    from .vision.learner import make_learner
    from .vision.loaders import Loaders
    from .vision.model import Head, create_vision_model

    torch.set_num_threads(run_plan.threads)
    batch = min(run_plan.batch_size, 64 if run_plan.device != "cpu" else 32)
    rng = np.random.default_rng(0)
    n = batch * 4
    images = [rng.integers(0, 255, (size + 8, size + 8, 3), dtype=np.uint8) for _ in range(n)]
    y = rng.integers(0, 2, (n, 1)).astype(np.float32)
    cfg = TrainConfig(arch=arch, batch_size=batch, pretrained=False, sizes=(size,))
    model, _ = create_vision_model(arch, 2, pretrained=False)
    learner = make_learner(model, [Head("y", 0, 2, ("a", "b"))], run_plan)
    loaders = Loaders(images, y, cfg, (0.5,) * 3, (0.25,) * 3, ("squish", 1.0), 0, plan=run_plan)
    loader = loaders(np.arange(n), size, train=True)
    opt = learner.optimizer(1e-3, 1e-3, 0.01)
    learner.train_epoch(loader, opt, None)  # warm-up: workers start, kernels are chosen
    seen, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        loss, images_done = learner.train_epoch(loader, opt, None)
        seen += images_done
    if run_plan.device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t
    loaders.close()
    if not np.isfinite(loss):
        raise KKError(f"smoke test: the loss is {loss} after {seen} images in {run_plan.precision}; "
                      "try --precision fp32")
    return {"arch": arch, "size": size, "batch": batch, "images": seen, "seconds": round(elapsed, 2),
            "images_per_s": round(seen / elapsed, 1), "loss": round(float(loss), 4), "device": run_plan.device,
            "precision": run_plan.precision, "workers": run_plan.workers, "channels_last": run_plan.channels_last}


def doctor(*, weights: str | None = None, out_dir: Path | None = None, smoke: bool = True,
           smoke_seconds: float = 6.0, device: str = "auto", devices: int = 1) -> DoctorReport:
    """Everything ``kk doctor`` prints, as a report (``report.failures`` empty when all is well)."""
    from .machine import cpu_cores, plan, read_machine

    versions = _versions()
    report = DoctorReport(versions, [], cpu_cores(), None)
    if versions["torch"] == "not installed" or versions["timm"] == "not installed":
        report.checks.append(Check("vision extra", "fail", "torch and timm are not installed: pip install "
                                                            "'kagglekit[vision]' (kk baseline works without them)"))
    else:
        machine = read_machine()
        report.gpus = [{"name": g.name, "capability": f"{g.capability[0]}.{g.capability[1]}",
                        "memory_gib": round(g.memory_gib, 1)} for g in machine.gpus]
        try:
            run_plan = plan(machine, device=device, processes=devices)
        except KKError as e:
            report.checks.append(Check("plan", "fail", str(e)))
        else:
            report.plan = run_plan.as_json()
            if smoke:
                try:
                    report.smoke = smoke_test(run_plan, smoke_seconds)
                    report.checks.append(Check("smoke test", "ok", f"{report.smoke['images_per_s']} img/s"))
                except Exception as e:  # whatever breaks here would break kk train: name it
                    first = (str(e).strip().splitlines() or [""])[0][:300]
                    report.checks.append(Check("smoke test", "fail", f"a training step of {SMOKE_ARCH} on "
                                                                     f"{run_plan.device} in {run_plan.precision} "
                                                                     f"failed: {type(e).__name__}: {first}"))
        report.checks.append(_weights(weights))
        report.checks.append(_hub())
    report.checks.append(_credentials())
    report.checks.extend(_data_folders())
    if out_dir is None:
        from .workspace import Workspace

        try:
            out_dir = Workspace.find().out
        except KKError:
            out_dir = Path.cwd()
    report.checks.append(_output(out_dir))
    return report
