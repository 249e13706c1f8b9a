"""Every training path a user's machine takes that this CPU can also run, run for real: DataLoader
workers, fp16 autocast with a gradient scaler, bf16 autocast, channels_last and torch.compile. The
choice of path is kagglekit.machine's (tests/test_machine.py); here each path must train, and
give what the plain path gives where it should."""

import copy
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from kagglekit.vision import train  # noqa: E402
from kagglekit.vision.learner import Learner  # noqa: E402
from kagglekit.vision.model import Head  # noqa: E402

from .conftest import make_images  # noqa: E402

TINY = dict(arch="test_convnext", pretrained=False, sizes=(32,), epochs=2, batch_size=16, lr=5e-3, folds=(0,),
            submit=False, new=True)


def _oof(result) -> np.ndarray:
    return pd.read_parquet(result.run.path / "oof.parquet").drop(columns="image_id").to_numpy()


def _dtypes_seen(model) -> list:
    """The output dtypes of the model's linear and conv layers during the next forward passes."""
    seen: list = []
    for m in model.modules():
        if isinstance(m, torch.nn.Linear | torch.nn.Conv2d):
            m.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    return seen


def test_dataloader_workers_give_exactly_the_predictions_of_none(ws):
    """Persistent workers 1 and 2 (each image's augmentation has its own seed): identical runs."""
    make_images(ws.root, n=96, n_test=16, size=32)
    runs = {w: train("tiny", workspace=ws, num_workers=w, **TINY) for w in (0, 1, 2)}
    meta = {w: r.run.meta["machine"]["workers"] for w, r in runs.items()}
    assert meta == {0: 0, 1: 1, 2: 2}  # the workers really ran
    h0 = pd.read_csv(runs[0].run.path / "history.csv")
    assert h0["train_loss"].iloc[0] != h0["train_loss"].iloc[1]  # it trained
    for w in (1, 2):
        np.testing.assert_array_equal(_oof(runs[w]), _oof(runs[0]))
        pd.testing.assert_series_equal(pd.read_csv(runs[w].run.path / "history.csv")["train_loss"], h0["train_loss"])


def test_a_closed_loader_has_stopped_its_workers_and_their_feeder_threads():
    """kk stops a loader's workers itself and waits for the threads that fed them, so no thread is
    ending while the next loader forks (CPython gh-112275 hangs such a child before Python 3.12)."""
    import threading

    from kagglekit.machine import Plan
    from kagglekit.vision.config import TrainConfig
    from kagglekit.vision.loaders import Loaders

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 40, 3), dtype=np.uint8) for _ in range(24)]
    plan = Plan("cpu", 1, 1, 2, "fp32", False, False, False, 8)
    loaders = Loaders(images, np.zeros((24, 1), np.float32), TrainConfig(arch="test_convnext", batch_size=8),
                      (0.5,) * 3, (0.25,) * 3, ("squish", 1.0), 0, plan=plan)
    before = {t for t in threading.enumerate() if t.name == "QueueFeederThread"}
    train_loader, valid_loader = loaders(np.arange(16), 32, train=True), loaders(np.arange(16, 24), 32, train=False)
    for loader in (train_loader, valid_loader, train_loader):  # persistent: the train loader's workers stay
        assert sum(len(x) for x, _ in loader) > 0
    workers = [*train_loader._iterator._workers, *valid_loader._iterator._workers]
    feeders = {t for t in threading.enumerate() if t.name == "QueueFeederThread"} - before
    assert len(workers) == 4 and all(w.is_alive() for w in workers) and len(feeders) >= 3
    loaders.close()
    assert not any(w.is_alive() for w in workers) and not any(t.is_alive() for t in feeders)
    assert loaders.opened == [] and train_loader._iterator is None

    class Echo:  # a learner's predict: the loader's images, in order
        def predict(self, loader):
            return np.concatenate([x.reshape(len(x), -1)[:, :1].numpy() for x, _ in loader])

    before = set(threading.enumerate())
    out = loaders.predict(Echo(), np.arange(24), 32)
    assert out.shape == (24, 1) and loaders.opened == []
    assert not [t for t in threading.enumerate() if t not in before and t.name == "QueueFeederThread"]


def _accumulation_runs(precision: str):
    torch.manual_seed(0)
    base = timm.create_model("test_convnext", pretrained=False, num_classes=3)
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 3, (32, 1)).float()
    heads = [Head("y", 0, 3, ("a", "b", "c"))]
    learners = []

    def run(batch: int, accum: int):
        model = copy.deepcopy(base)
        learner = Learner(model, heads, torch.device("cpu"), accum, precision=precision)
        seen = _dtypes_seen(model)
        # SGD: the update is the gradient itself (Adam's first step is its sign: +-lr whatever the size)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        learner.train_epoch([(x[i:i + batch], y[i:i + batch]) for i in range(0, 32, batch)], opt, None)
        learners.append((learner, seen))
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    return run(32, 1), run(16, 2), run(16, 1), learners


def test_fp16_autocast_with_grad_scaler_accumulates_like_one_large_batch():
    """fp16 + torch.amp.GradScaler on the CPU device (the T4 / P100 path): 2 micro-batches of 16
    with accum 2 make the update of one batch of 32, as in fp32 (tests/test_vision.py)."""
    one_big, accumulated, two_small_steps, learners = _accumulation_runs("fp16")
    for learner, seen in learners:
        assert learner.scaler is not None and learner.scaler.get_scale() > 1  # scaled, and no overflow skipped it
        assert seen and all(d == torch.float16 for d in seen)  # autocast really ran in fp16
    torch.testing.assert_close(accumulated, one_big, rtol=1e-3, atol=1e-4)
    assert not torch.allclose(two_small_steps, one_big, rtol=1e-3, atol=1e-4)  # the test can fail
    fp32_big = _accumulation_runs("fp32")[0]
    assert not torch.equal(fp32_big, one_big)  # fp16 arithmetic did run...
    torch.testing.assert_close(one_big, fp32_big, rtol=0.05, atol=2e-3)  # ...and made the same update


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_a_run_trains_in_mixed_precision_on_the_cpu(ws, precision):
    make_images(ws.root, n=96, n_test=16, size=32)
    plain = train("tiny", workspace=ws, num_workers=0, **TINY)
    mixed = train("tiny", workspace=ws, num_workers=0, precision=precision, **TINY)
    assert mixed.run.meta["machine"]["precision"] == precision
    h_plain, h_mixed = (pd.read_csv(r.run.path / "history.csv") for r in (plain, mixed))
    assert np.isfinite(h_mixed[["train_loss", "valid_loss"]].to_numpy()).all()
    assert not np.array_equal(h_mixed["train_loss"], h_plain["train_loss"])  # lower precision did run
    np.testing.assert_allclose(h_mixed["train_loss"], h_plain["train_loss"], rtol=0.1)  # and trained alike


def test_bf16_autocast_runs_the_layers_in_bf16():
    model = timm.create_model("test_convnext", pretrained=False, num_classes=2)
    learner = Learner(model, [Head("y", 0, 2, ("a", "b"))], torch.device("cpu"), precision="bf16")
    seen = _dtypes_seen(model)
    learner.predict([(torch.randn(4, 3, 32, 32), torch.zeros(4, 1))])
    assert seen and all(d == torch.bfloat16 for d in seen)


def test_channels_last_is_only_a_memory_format():
    torch.manual_seed(0)
    base = timm.create_model("test_efficientnet", pretrained=False, num_classes=2).eval()
    heads, x = [Head("y", 0, 2, ("a", "b"))], [(torch.randn(4, 3, 32, 32), torch.zeros(4, 1))]
    nhwc = Learner(copy.deepcopy(base), heads, torch.device("cpu"), channels_last=True)
    nchw = Learner(copy.deepcopy(base), heads, torch.device("cpu"), channels_last=False)
    convs = [m.weight for m in nhwc.model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert not any(m.weight.is_contiguous(memory_format=torch.channels_last) for m in nchw.model.modules()
                   if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1 and m.weight.shape[1] > 1)
    np.testing.assert_allclose(nhwc.predict(x), nchw.predict(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_compiled_training_step_trains_like_the_eager_one(ws):
    """--compile (torch.compile, inductor with this machine's gcc) on a tiny model."""
    make_images(ws.root, n=64, n_test=16, size=32)
    eager = train("tiny", workspace=ws, num_workers=0, **{**TINY, "epochs": 1})
    compiled = train("tiny", workspace=ws, num_workers=0, compile=True, **{**TINY, "epochs": 1})
    h_e, h_c = (pd.read_csv(r.run.path / "history.csv") for r in (eager, compiled))
    np.testing.assert_allclose(h_c["train_loss"], h_e["train_loss"], rtol=1e-3)
    np.testing.assert_allclose(_oof(compiled), _oof(eager), rtol=1e-3, atol=1e-4)


def test_mnist_tiny_trains_with_two_workers_as_with_none(shared_data, tmp_path):
    """The issue's command on the real digits: ``--workers 2`` finishes, with the OOF of ``--workers 0``."""
    (tmp_path / "competitions").mkdir()
    env = {**os.environ, "KK_HOME": str(tmp_path), "KK_DATA_DIR": str(shared_data)}
    oofs = []
    for w in ("0", "2"):
        out = subprocess.run([sys.executable, "-m", "kagglekit", "train", "mnist-tiny", "--arch", "resnet10t",
                              "--sizes", "28", "--epochs", "1", "--folds", "0", "--pretrained", "false", "--workers", w,
                              "--new", "--no-submit"], capture_output=True, text=True, env=env, timeout=600)
        assert out.returncode == 0, out.stdout + out.stderr
        run = sorted((tmp_path / "runs" / "mnist-tiny").glob("2*"))[-1]
        oofs.append(pd.read_parquet(run / "oof.parquet").drop(columns="name").to_numpy())
    assert np.isfinite(oofs[0]).any()
    np.testing.assert_array_equal(oofs[1], oofs[0])
