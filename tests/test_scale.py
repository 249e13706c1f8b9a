"""Scale: DDP training with several processes (gloo on CPU) and images streamed from a packed file."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from kagglekit.errors import DataError, KKError, OptionError  # noqa: E402
from kagglekit.vision import TrainConfig, merge, train  # noqa: E402
from kagglekit.vision.data import load_images  # noqa: E402
from kagglekit.vision.distributed import Dist  # noqa: E402
from kagglekit.vision.loaders import ShardedBatches  # noqa: E402
from kagglekit.vision.packed import choose_mode, open_images, pack_images  # noqa: E402

from .conftest import make_images  # noqa: E402

# test_convnext has no batch norm: two processes with half a batch each make exactly one process's update;
# each process with a DataLoader worker of its own (Kaggle's 2 x T4 path), against one process with none
DDP = ["--arch", "test_convnext", "--pretrained", "false", "--sizes", "32", "--epochs", "2", "--batch-size", "16",
       "--accum", "2", "--tta", "2", "--workers", "1", "--no-submit"]


def _kk(ws, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KK_HOME": str(ws.root)}
    return subprocess.run([sys.executable, "-m", "kagglekit", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_two_gloo_processes_train_exactly_as_one_and_merge_with_other_folds(ws):
    make_images(ws.root, n=160, n_test=40, size=32)
    two = _kk(ws, "train", "tiny", *DDP, "--folds", "0", "--devices", "2")
    assert two.returncode == 0, two.stdout + two.stderr
    runs = sorted((ws.root / "runs" / "tiny").glob("2*"))
    assert len(runs) == 1  # only rank 0 wrote a run
    ddp_run = runs[0]
    again = _kk(ws, "train", "tiny", *DDP, "--folds", "0", "--devices", "2")  # identical: reused, not retrained
    assert again.returncode == 0 and "reused" in again.stdout, again.stdout + again.stderr
    assert sorted((ws.root / "runs" / "tiny").glob("2*")) == [ddp_run]
    meta = json.loads((ddp_run / "meta.json").read_text())
    assert meta["devices"] == 2 and meta["folds_done"] == [0] and meta["machine"]["workers"] == 1
    one = train("tiny", workspace=ws, arch="test_convnext", pretrained=False, sizes=(32,), epochs=2, batch_size=16,
                accum=2, tta=2, num_workers=0, folds=(0,), submit=False, new=True)  # not the DDP run, reused
    assert not one.reused and one.run.path != ddp_run
    h2 = pd.read_csv(ddp_run / "history.csv")
    h1 = pd.read_csv(one.run.path / "history.csv")
    assert len(h1) == len(h2) == 2
    for col in ("train_loss", "valid_loss"):
        np.testing.assert_allclose(h2[col], h1[col], rtol=1e-4)
    assert h1["train_loss"].iloc[0] != h1["train_loss"].iloc[1]  # it trained: the comparison could fail
    o1 = pd.read_parquet(one.run.path / "oof.parquet").drop(columns="image_id").to_numpy()
    o2 = pd.read_parquet(ddp_run / "oof.parquet").drop(columns="image_id").to_numpy()
    np.testing.assert_allclose(o2, o1, rtol=1e-3, atol=1e-5, equal_nan=True)
    # folds on several machines: a DDP run's fold 0 merges with fold 1 trained by one process
    other = train("tiny", workspace=ws, arch="test_convnext", pretrained=False, sizes=(32,), epochs=2, batch_size=16,
                  accum=2, tta=2, num_workers=0, folds=(1,), submit=False)
    merged = merge("tiny", [ddp_run.name, other.run.id], workspace=ws)
    assert merged.folds_done == [0, 1] and merged.submission is not None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_nodes_on_localhost_train_exactly_as_one_process(ws):
    """Two "machines" (two kk train commands, one gloo process each) meet at node 0's address with
    torchrun's rendezvous: the same losses and OOF predictions as one process with the same global
    batch; node 0 writes the one run, node 1 says where it is."""
    make_images(ws.root, n=160, n_test=40, size=32)
    master = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "KK_HOME": str(ws.root)}
    command = [sys.executable, "-m", "kagglekit", "train", "tiny", *DDP, "--folds", "0", "--nnodes", "2", "--master",
               master]
    nodes = [subprocess.Popen([*command, "--node-rank", str(r)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env) for r in (1, 0)]  # node 1 starts first and waits for node 0
    outputs = [p.communicate(timeout=600)[0] for p in nodes]
    assert all(p.returncode == 0 for p in nodes), "\n".join(outputs)
    runs = sorted((ws.root / "runs" / "tiny").glob("2*"))
    assert len(runs) == 1 and (runs[0] / "meta.json").is_file()
    assert f"node 0 wrote run {runs[0].name}" in outputs[0]
    assert json.loads((runs[0] / "meta.json").read_text())["devices"] == 2  # two processes in all
    one = train("tiny", workspace=ws, arch="test_convnext", pretrained=False, sizes=(32,), epochs=2, batch_size=16,
                accum=2, tta=2, num_workers=0, folds=(0,), submit=False, new=True)
    h1, h2 = (pd.read_csv(p / "history.csv") for p in (one.run.path, runs[0]))
    np.testing.assert_allclose(h2["train_loss"], h1["train_loss"], rtol=1e-4)
    np.testing.assert_allclose(h2["valid_loss"], h1["valid_loss"], rtol=1e-4)
    o1, o2 = (pd.read_parquet(p / "oof.parquet").drop(columns="image_id").to_numpy() for p in (one.run.path, runs[0]))
    np.testing.assert_allclose(o2, o1, rtol=1e-3, atol=1e-5, equal_nan=True)


def test_several_nodes_need_node_zeros_address_and_a_rank_among_them():
    with pytest.raises(OptionError, match="--master: with --nnodes 2, expected HOST:PORT"):
        TrainConfig(nnodes=2, node_rank=1)
    with pytest.raises(OptionError, match="a node rank from 0 to 1"):
        TrainConfig(nnodes=2, node_rank=2, master="h:1")
    with pytest.raises(OptionError, match="multiple of 4"):
        TrainConfig(batch_size=18, devices=2, nnodes=2, master="h:1")
    from kagglekit.vision.launch import torchrun_command

    cmd = torchrun_command(TrainConfig(devices=2, nnodes=3, node_rank=1, master="10.0.0.5:29500"), "job")
    assert {"--nnodes=3", "--node-rank=1", "--master-addr=10.0.0.5", "--master-port=29500", "--nproc-per-node=2"} \
        <= set(cmd) and "--standalone" not in cmd


def test_devices_must_split_the_batch_evenly():
    with pytest.raises(OptionError, match="multiple of 3"):
        TrainConfig(batch_size=32, devices=3)
    with pytest.raises(OptionError, match="--devices"):
        TrainConfig(devices=0)


def test_each_rank_takes_an_equal_share_of_every_global_batch():
    one = list(ShardedBatches(10, 4, seed=1, drop_last=False, dist=Dist()))
    ranks = [list(ShardedBatches(10, 4, seed=1, drop_last=False, dist=Dist(r, 2))) for r in range(2)]
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 3
    for b, (a, c) in enumerate(zip(*ranks, strict=True)):
        assert len(a) == len(c)  # a short last batch is topped up: no rank waits for another
        assert set(a) | set(c) >= set(one[b])
    # a second pass is a new epoch: another order, and the epoch travels with each key
    sampler = ShardedBatches(10, 4, seed=1, drop_last=True, dist=Dist())
    first, second = list(sampler), list(sampler)
    assert [k for k, _ in sum(first, [])] != [k for k, _ in sum(second, [])]
    assert {e for _, e in sum(second, [])} == {1}


def _photos(folder, n=12):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        w, h = (40 + 4 * i, 30) if i % 2 else (30, 44)
        p = folder / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def test_packed_images_read_back_exactly_what_memory_holds(tmp_path):
    paths = _photos(tmp_path / "img")
    in_memory = load_images(paths, 24, None)
    packed = pack_images(paths, 24, tmp_path / "cache")
    assert len(packed) == len(paths) and packed.bad == frozenset()
    for a, b in zip(in_memory, packed, strict=True):
        assert a.shape == b.shape and min(b.shape[:2]) == 24
        np.testing.assert_array_equal(a, b)
    assert packed.nbytes == sum(a.nbytes for a in in_memory)
    # reused, not rebuilt, by the next run; rebuilt when a source file changes
    assert pack_images(paths, 24, tmp_path / "cache").path == packed.path
    os.utime(paths[0], ns=(1, 1))
    assert pack_images(paths, 24, tmp_path / "cache").path != packed.path
    # a DataLoader worker (another process) gets a picklable handle that opens its own file
    clone = pickle.loads(pickle.dumps(packed))
    np.testing.assert_array_equal(clone[3], in_memory[3])


def test_unreadable_images_are_named_or_skipped_in_the_packed_file(tmp_path):
    paths = _photos(tmp_path / "img", n=4)
    (tmp_path / "img" / "1.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="1.jpg"):
        pack_images(paths, 24, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.u8"))  # no half-written file is left to be reused
    with pytest.warns(UserWarning, match="1.jpg"):
        images, bad = open_images(paths, 24, tmp_path / "cache", mode="disk", skip_bad=True)
    assert bad == {1} and images[1].shape == (24, 24, 3) and not images[1].any()


def test_auto_cache_streams_when_images_would_not_fit():
    assert choose_mode("auto", 1000, 64) == "memory"
    assert choose_mode("auto", 10**9, 224) == "disk"  # ~200 TB
    assert choose_mode("memory", 10**9, 224) == "memory"  # asked for: as asked
    with pytest.raises(KKError, match="memory, disk"):
        choose_mode("ram", 10, 10)


def test_streamed_training_gives_the_same_run_as_in_memory(ws):
    make_images(ws.root, n=120, n_test=20, size=32)
    kw = dict(arch="test_convnext", pretrained=False, sizes=(32,), epochs=1, batch_size=16, num_workers=0,
              folds=(0,), submit=False)
    mem = train("tiny", workspace=ws, cache="memory", **kw)
    disk = train("tiny", workspace=ws, cache="disk", new=True, **kw)  # the same run otherwise: reused
    assert disk.run.meta["cache"] == "disk" and mem.run.meta["cache"] == "memory"
    assert list((ws.cache_dir / "tiny" / "images").rglob("*.u8"))
    np.testing.assert_allclose(pd.read_csv(disk.run.path / "history.csv")["train_loss"],
                               pd.read_csv(mem.run.path / "history.csv")["train_loss"], rtol=1e-6)


@pytest.mark.parametrize(("world", "device", "has_bn", "frozen", "expected"), [
    (2, "cuda", True, False, True),    # 2 x T4, a model from scratch with batch norm: the global batch's statistics
    (1, "cuda", True, False, False),   # one process already sees the whole batch
    (2, "cuda", True, True, False),    # pretrained, frozen statistics: nothing to synchronise
    (2, "cuda", False, False, False),  # no batch norm (convnext's layer norm)
    (2, "cpu", True, False, False),    # gloo: torch's SyncBatchNorm runs on GPUs only
])
def test_sync_batchnorm_is_chosen_by_the_machine_and_the_model(world, device, has_bn, frozen, expected):
    from kagglekit.vision.distributed import sync_batchnorm

    assert sync_batchnorm(world, device, has_bn, frozen) is expected
