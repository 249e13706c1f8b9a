"""The machine kk trains on, and every choice that depends on it.

:func:`read_machine` is the one place that asks the hardware (cores, GPUs, their compute capability
and memory). Everything else is a pure function of the :class:`Machine` it returns, so the choices
kk makes on machines this code never ran on (Kaggle's P100 and 2 x T4 notebooks, Colab's T4, an
A100, an H100) are tested by describing those machines (``tests/test_machine.py``).

The rules, with their reasons:

- **precision**: bf16 autocast from compute capability 8.0 (Ampere: bf16 tensor cores, no loss
  scaling); fp16 autocast with a gradient scaler on sm 7.x (V100, T4: fp16 tensor cores, no bf16)
  and sm 6.0 (P100: fp16 at twice fp32's rate); fp32 elsewhere (sm 6.1 runs fp16 at 1/64 of fp32;
  on CPUs bf16 autocast was ~30% slower than fp32 here). ``torch.cuda.is_bf16_supported()`` is not
  the question: it answers True on a T4 and a P100 (emulation), where cuDNN has no bf16 convolution.
- **workers**: each training process's share of the cores, less one for the process itself. On a
  GPU the main process only feeds the device, so one core of two is enough for it; on a CPU the
  model needs the cores, and data loading is a small part of a step.
- **pin memory**: on CUDA (page-locked host buffers for asynchronous copies).
- **channels_last**: on CPUs (measured 1.5x faster training here) and on GPUs with tensor cores
  (sm 7.0+); not on older GPUs, where cuDNN's NHWC kernels are slower.
- **batch size** (when none is given): 32 on a CPU; on a GPU, 4 images of 224 px per GiB of its
  memory, to the nearest multiple of 16, between 16 and 256 (T4, P100: 64; L4: 96; A100 40 GB: 160;
  80 GB and more: 256); on either, no larger than keeps 50 optimizer steps in an epoch of the
  training images, and never below 16 for that. A GPU's memory must not change what a small set
  learns (flowers-small on an H200: batch 256, 3 steps an epoch, OOF accuracy 0.911; batch 32,
  0.927), and a small set learns more from more, noisier steps (flowers-small on the CPU, 800
  photos a fold: batch 32 0.932 / log loss 0.196, batch 16 0.938 / 0.194; bench/transfer_flowers.py).
  A run records the batch it used; a model too large for it ends in one line that gives the
  --batch-size and --accum making the same update in less memory.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from .errors import KKError, OptionError, did_you_mean, one_of

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class GPU:
    """One CUDA device, as the driver describes it."""

    name: str
    capability: tuple[int, int]  # (major, minor): 6.0 P100, 7.5 T4, 8.0 A100, 8.9 L4, 9.0 H100
    memory_gib: float

    @property
    def sm(self) -> str:
        return f"sm {self.capability[0]}.{self.capability[1]}"


@dataclass(frozen=True)
class Machine:
    """What a machine reports: the cores this process may use, its GPUs, Apple's MPS."""

    cores: int
    gpus: tuple[GPU, ...] = ()
    mps: bool = False
    cuda_arch_list: tuple[str, ...] = ()  # what this torch build was compiled for: sm_75, ..., compute_90


@dataclass(frozen=True)
class Plan:
    """How ``kk train`` runs on a machine; ``why`` gives the reason of each choice in words."""

    device: str  # cpu | cuda | mps
    processes: int  # training processes (DDP), one per GPU
    threads: int  # torch's intra-op threads in each process
    workers: int  # DataLoader worker processes of each training process
    precision: str  # fp32 | fp16 | bf16: the autocast dtype (fp32: no autocast)
    grad_scaler: bool
    pin_memory: bool
    channels_last: bool
    batch_size: int  # the global batch (split over the processes)
    gpu: GPU | None = None
    why: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        return asdict(self)


def cpu_cores() -> int:
    """Cores this process may run on (its affinity, e.g. a container's share), else all of them."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def read_machine() -> Machine:
    """Ask this machine (the only function here that does): cores, CUDA devices, MPS."""
    import torch

    gpus: tuple[GPU, ...] = ()
    if torch.cuda.is_available():
        props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
        gpus = tuple(GPU(p.name, (p.major, p.minor), p.total_memory / 2**30) for p in props)
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    arch_list = tuple(torch.cuda.get_arch_list()) if gpus else ()
    return Machine(cpu_cores(), gpus, mps, arch_list)


def build_runs_on(gpu: GPU, arch_list: tuple[str, ...]) -> bool:
    """Whether a torch build compiled for ``arch_list`` has kernels for ``gpu``: a binary for the
    same major capability and a lower or equal minor (sm_80 runs on sm 8.6), or PTX (compute_XY)
    of a lower or equal capability, which the driver compiles. An empty list: unknown, assumed yes."""
    if not arch_list:
        return True
    for a in arch_list:
        kind, _, num = a.partition("_")
        if not num.isdigit():
            continue
        cap = (int(num[:-1]), int(num[-1]))
        if (kind == "sm" and cap[0] == gpu.capability[0] and cap[1] <= gpu.capability[1]) or \
                (kind == "compute" and cap <= gpu.capability):
            return True
    return False


def choose_device(machine: Machine, device: str = "auto") -> str:
    """``--device``: auto takes a GPU when there is one (CUDA, else Apple's MPS), else the CPU."""
    if device not in DEVICES:
        raise OptionError(f"--device: expected {one_of(DEVICES)}, found {device!r}{did_you_mean(device, DEVICES)}")
    if device == "auto":
        return "cuda" if machine.gpus else "mps" if machine.mps else "cpu"
    if device == "cuda" and not machine.gpus:
        raise OptionError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    if device == "mps" and not machine.mps:
        raise OptionError("--device mps: Apple's MPS is not available here; use --device cpu or auto")
    return device


def amp_precision(gpu: GPU | None) -> tuple[str, str]:
    """(precision, reason) for autocast on ``gpu`` (None: the CPU)."""
    if gpu is None:
        return "fp32", "CPU: bf16 autocast ran ~30% slower than fp32 on a CPU, fp16 has no fast CPU kernels"
    major, minor = gpu.capability
    if major >= 8:
        return "bf16", f"{gpu.name} ({gpu.sm}) has bf16 tensor cores; bf16 needs no loss scaling"
    if major == 7:
        return "fp16", f"{gpu.name} ({gpu.sm}) has fp16 tensor cores and no bf16 (sm 8.0+); with a gradient scaler"
    if (major, minor) == (6, 0):
        return "fp16", f"{gpu.name} ({gpu.sm}) runs fp16 at twice fp32's rate and has no bf16; with a gradient scaler"
    return "fp32", f"{gpu.name} ({gpu.sm}) runs fp16 far slower than fp32 and has no bf16"


def check_precision(precision: str, gpu: GPU | None, device: str) -> None:
    """Refuse a precision the device cannot run: bf16 on a GPU below sm 8.0 (cuDNN has no bf16
    convolutions there: errors or emulated speed)."""
    if precision not in PRECISIONS:
        raise OptionError(f"--precision: expected {one_of(PRECISIONS)}, found {precision!r}"
                          f"{did_you_mean(precision, PRECISIONS)}")
    if precision == "bf16" and gpu is not None and gpu.capability < (8, 0):
        raise OptionError(f"--precision bf16: {gpu.name} ({gpu.sm}) has no bf16 (it needs sm 8.0, Ampere or newer); "
                          "use --precision fp16 (with a gradient scaler) or auto")
    if precision != "fp32" and device == "mps":
        raise OptionError(f"--precision {precision}: kk trains in fp32 on Apple's MPS; use --precision auto or fp32")


def default_workers(cores: int, processes: int = 1, device: str = "cpu") -> int:
    """DataLoader workers of each of ``processes`` training processes on ``cores`` cores."""
    share = cores // max(1, processes)
    if device == "cuda":  # the main process only feeds the GPU: one core is enough for it
        return 0 if share < 2 else min(8, share - 1)
    return 0 if share <= 2 else min(2, share // 2)  # the model needs the cores; loading is a small part


MIN_STEPS_PER_EPOCH = 50  # batch 16 on 800 training images: see the batch size rule above


def default_batch_size(gpu: GPU | None, size: int = 224, processes: int = 1, n_train: int | None = None) -> int:
    """The global batch when none is given: 32 on a CPU; on a GPU, 4 images of 224 px per GiB, to
    the nearest multiple of 16 (then of ``processes``), between 16 and 256; with ``n_train`` (the
    training images of a fold), at most the power of two that keeps ``MIN_STEPS_PER_EPOCH`` steps
    an epoch, but not below 16 for that reason."""
    if gpu is None:
        batch = 32
    else:
        per_gib = 4 * (224 / max(size, 1)) ** 2
        batch = int(min(256, max(16, round(gpu.memory_gib * per_gib / 16) * 16)))
    if n_train:
        cap = 1 << max(4, int(n_train / MIN_STEPS_PER_EPOCH).bit_length() - 1)  # a power of two, 16 or more
        batch = min(batch, cap)
    step = max(1, processes)
    return max(step, batch // step * step)


def plan(machine: Machine, *, device: str = "auto", processes: int = 1, workers: int | None = None,
         precision: str = "auto", batch_size: int | None = None, size: int = 224,
         n_train: int | None = None) -> Plan:
    """How ``kk train`` runs on ``machine``: device, threads, workers, precision and its gradient
    scaler, pinned memory, memory format and batch size. Given values (flags) are kept; the others
    follow the rules in this module's docstring."""
    dev = choose_device(machine, device)
    if dev == "cuda" and processes > len(machine.gpus):
        raise OptionError(f"--devices {processes}: this machine has {len(machine.gpus)} GPU"
                          f"{'s' if len(machine.gpus) != 1 else ''}; use --devices {len(machine.gpus)} or fewer")
    gpu = machine.gpus[0] if dev == "cuda" else None
    if gpu is not None and not build_runs_on(gpu, machine.cuda_arch_list):
        raise KKError(f"this torch build has no CUDA kernels for {gpu.name} ({gpu.sm}): it was built for "
                      f"{', '.join(machine.cuda_arch_list)}; install a torch wheel built for an older CUDA that still "
                      f"supports {gpu.sm} (e.g. CUDA 12.6 for sm 6.0), or train with --device cpu")
    why: dict[str, str] = {"device": f"--device {device}" if device != "auto" else
                           (f"{len(machine.gpus)} x {gpu.name}" if gpu else "Apple MPS" if dev == "mps" else "no GPU")}
    check_precision(precision, gpu, dev)
    if precision == "auto":
        prec, why["precision"] = amp_precision(gpu) if dev != "mps" else ("fp32", "MPS: fp32")
    else:
        prec, why["precision"] = precision, f"--precision {precision}"
    share = machine.cores // max(1, processes)
    if workers is None:
        n_workers = default_workers(machine.cores, processes, dev)
        why["workers"] = (f"{machine.cores} cores / {processes} process{'es' if processes > 1 else ''} = {share} each: "
                          + ("one feeds the GPU, the rest load images" if dev == "cuda" else
                             "the model needs them" if n_workers == 0 else "half load images"))
    else:
        if workers < 0:
            raise OptionError(f"--workers: expected 0 or more worker processes, found {workers}")
        n_workers, why["workers"] = workers, f"--workers {workers}"
    threads = max(1, share - n_workers) if dev == "cuda" else max(1, share)
    channels_last = dev == "cpu" or (gpu is not None and gpu.capability >= (7, 0))
    why["channels_last"] = ("CPU: measured 1.5x faster" if dev == "cpu" else "tensor cores want NHWC" if channels_last
                            else "no tensor cores: NCHW kernels are faster")
    if batch_size is None:
        batch = default_batch_size(gpu, size, processes, n_train)
        why["batch_size"] = (f"{gpu.memory_gib:.0f} GiB at {size} px" if gpu else "CPU default")
        if batch < default_batch_size(gpu, size, processes):
            why["batch_size"] += f", capped for {MIN_STEPS_PER_EPOCH} steps an epoch of {n_train} images"
    else:
        batch, why["batch_size"] = batch_size, f"--batch-size {batch_size}"
    return Plan(device=dev, processes=processes, threads=threads, workers=n_workers, precision=prec,
                grad_scaler=prec == "fp16", pin_memory=dev == "cuda",
                channels_last=channels_last, batch_size=batch, gpu=gpu, why=why)


def out_of_memory_message(run_plan: Plan, arch: str, size: int, accum: int) -> str:
    """What to do when a batch does not fit on the GPU: half the batch, twice the accumulation
    (the same update in half the memory)."""
    where = f"{run_plan.gpu.name} ({run_plan.gpu.memory_gib:.0f} GiB)" if run_plan.gpu else run_plan.device
    half = max(run_plan.processes, run_plan.batch_size // 2 // run_plan.processes * run_plan.processes)
    return (f"out of memory on {where}: {arch} at {size} px with --batch-size {run_plan.batch_size} does not fit; "
            f"use --batch-size {half} --accum {accum * 2} (the same update in half the memory), or smaller --sizes")
