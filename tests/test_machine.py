"""The machines users train on, described as they report themselves: every choice kk makes there is
a pure function of that report (kagglekit.machine), tested here without the hardware."""

import pytest

from kagglekit.errors import KKError, OptionError
from kagglekit.machine import (
    GPU,
    Machine,
    amp_precision,
    build_runs_on,
    out_of_memory_message,
    plan,
    read_machine,
)

P100 = GPU("Tesla P100-PCIE-16GB", (6, 0), 15.9)
T4 = GPU("Tesla T4", (7, 5), 14.7)
A100_40 = GPU("NVIDIA A100-SXM4-40GB", (8, 0), 39.4)
A100_80 = GPU("NVIDIA A100-SXM4-80GB", (8, 0), 79.2)
L4 = GPU("NVIDIA L4", (8, 9), 22.0)
H100 = GPU("NVIDIA H100 80GB HBM3", (9, 0), 79.1)
H200 = GPU("NVIDIA H200", (9, 0), 139.8)
GTX1080 = GPU("NVIDIA GeForce GTX 1080", (6, 1), 7.9)

# name: (machine, processes) -> device, precision, scaler, workers per process, pin, channels_last, batch
MACHINES = {
    "kaggle cpu": (Machine(4), 1, ("cpu", "fp32", False, 2, False, True, 32)),
    "kaggle p100": (Machine(4, (P100,)), 1, ("cuda", "fp16", True, 3, True, False, 64)),
    "kaggle 2 x t4, one process": (Machine(4, (T4, T4)), 1, ("cuda", "fp16", True, 3, True, True, 64)),
    "kaggle 2 x t4, --devices 2": (Machine(4, (T4, T4)), 2, ("cuda", "fp16", True, 1, True, True, 64)),
    "colab t4": (Machine(2, (T4,)), 1, ("cuda", "fp16", True, 1, True, True, 64)),
    "colab cpu": (Machine(2), 1, ("cpu", "fp32", False, 0, False, True, 32)),
    "a100 40gb": (Machine(12, (A100_40,)), 1, ("cuda", "bf16", False, 8, True, True, 160)),
    "a100 80gb": (Machine(12, (A100_80,)), 1, ("cuda", "bf16", False, 8, True, True, 256)),
    "l4": (Machine(8, (L4,)), 1, ("cuda", "bf16", False, 7, True, True, 96)),
    "h100, 8 of them": (Machine(32, (H100,) * 8), 8, ("cuda", "bf16", False, 3, True, True, 256)),
    "h200": (Machine(16, (H200,)), 1, ("cuda", "bf16", False, 8, True, True, 256)),
    "workstation 32 cores, no gpu": (Machine(32), 1, ("cpu", "fp32", False, 2, False, True, 32)),
    "gtx 1080 (sm 6.1)": (Machine(8, (GTX1080,)), 1, ("cuda", "fp32", False, 7, True, False, 32)),
}


@pytest.mark.parametrize("name", MACHINES)
def test_each_users_machine_gets_the_settings_it_can_run(name):
    machine, processes, expected = MACHINES[name]
    p = plan(machine, processes=processes)
    got = (p.device, p.precision, p.grad_scaler, p.workers, p.pin_memory, p.channels_last, p.batch_size)
    assert got == expected
    assert p.batch_size % processes == 0  # every process takes an equal share
    assert p.workers + 1 <= max(2, machine.cores // processes)  # workers never outnumber the cores
    assert set(p.why) >= {"device", "precision", "workers", "channels_last", "batch_size"}


@pytest.mark.parametrize("gpu", [P100, T4])
def test_gpus_without_bf16_get_fp16_and_refuse_bf16(gpu):
    """torch.cuda.is_bf16_supported() says True on these (emulation); the capability says no."""
    assert amp_precision(gpu)[0] == "fp16"
    with pytest.raises(OptionError, match=r"--precision bf16: .*sm 8\.0.*--precision fp16"):
        plan(Machine(4, (gpu,)), precision="bf16")


@pytest.mark.parametrize("gpu", [A100_40, L4, H100])
def test_ampere_and_newer_get_bf16_without_a_scaler(gpu):
    p = plan(Machine(8, (gpu,)))
    assert (p.precision, p.grad_scaler) == ("bf16", False)
    assert "bf16" in p.why["precision"]


def test_flags_are_kept_over_the_rules():
    p = plan(Machine(4, (T4,)), workers=0, batch_size=24, precision="fp32")
    assert (p.workers, p.batch_size, p.precision, p.grad_scaler) == (0, 24, "fp32", False)
    cpu16 = plan(Machine(2), precision="fp16")  # fp16 + scaler on a CPU: runnable here, so tested for real
    assert (cpu16.device, cpu16.precision, cpu16.grad_scaler) == ("cpu", "fp16", True)


def test_impossible_requests_are_one_line_with_the_fix():
    with pytest.raises(OptionError, match="--devices 2: this machine has 1 GPU; use --devices 1"):
        plan(Machine(4, (T4,)), processes=2)
    with pytest.raises(OptionError, match="--device cuda: no CUDA device"):
        plan(Machine(4), device="cuda")
    with pytest.raises(OptionError, match=r"--precision: expected .*found 'fp8'"):
        plan(Machine(4), precision="fp8")
    with pytest.raises(OptionError, match="--workers"):
        plan(Machine(4), workers=-1)


def test_bigger_images_get_smaller_batches():
    small, big = plan(Machine(4, (P100,)), size=224), plan(Machine(4, (P100,)), size=448)
    assert big.batch_size < small.batch_size and big.batch_size % 16 == 0


@pytest.mark.parametrize("gpu, n_train, batch", [
    (H200, 800, 16),       # flowers-small's 1,000 photos, 5 folds: 256 would leave 3 steps an epoch
    (H200, 400, 16),       # never below 16 for this reason
    (H200, 3_200, 64),
    (H200, 100_000, 256),  # a large set: the GPU's memory decides
    (T4, 800, 16),
    (T4, 100_000, 64),
    (None, 800, 16),       # the CPU's 32 too: 50 steps an epoch
    (None, 1_600, 32),
    (None, 100_000, 32),
])
def test_a_small_set_keeps_enough_steps_in_an_epoch_whatever_the_machine(gpu, n_train, batch):
    machine = Machine(16, (gpu,) if gpu else ())
    p = plan(machine, n_train=n_train)
    assert p.batch_size == batch
    if batch < plan(machine).batch_size:
        assert "50 steps an epoch" in p.why["batch_size"]
    else:
        assert "steps an epoch" not in p.why["batch_size"]
    assert plan(machine, n_train=n_train, batch_size=512).batch_size == 512  # a given batch is kept


def test_this_machine_reports_its_cores_and_no_gpu_here():
    import os

    m = read_machine()
    assert m.cores == len(os.sched_getaffinity(0))
    torch = pytest.importorskip("torch")
    assert len(m.gpus) == torch.cuda.device_count()
    if not m.gpus:
        assert plan(m).device == "cpu"


def test_out_of_memory_says_which_batch_and_accumulation_fit():
    p = plan(Machine(4, (T4, T4)), processes=2)
    msg = out_of_memory_message(p, "convnext_large", 224, accum=1)
    assert "Tesla T4 (15 GiB)" in msg and "--batch-size 64" in msg and "--batch-size 32 --accum 2" in msg


CU128 = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120")  # a torch build without Pascal
CU126 = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")


@pytest.mark.parametrize(("gpu", "arch_list", "runs"), [
    (P100, CU128, False), (P100, CU126, True), (T4, CU128, True), (L4, CU126, True),  # sm_86 binary runs on 8.9
    (H100, ("sm_80", "compute_80"), True), (H100, ("sm_80", "sm_86"), False), (T4, (), True)])
def test_a_torch_build_without_kernels_for_the_gpu_is_found_before_training(gpu, arch_list, runs):
    assert build_runs_on(gpu, arch_list) is runs
    machine = Machine(4, (gpu,), cuda_arch_list=arch_list)
    if runs:
        assert plan(machine).device == "cuda"
    else:
        with pytest.raises(KKError, match=rf"no CUDA kernels for {gpu.name} \({gpu.sm}\).*--device cpu"):
            plan(machine)
