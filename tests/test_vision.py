"""The image pipeline on tiny generated images and tiny timm models: seconds on a CPU."""

import time
import warnings

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from kagglekit.data import load_data  # noqa: E402
from kagglekit.errors import DataError, KKError, RunError, SpecError  # noqa: E402
from kagglekit.submissions import read_submission, validate_submission  # noqa: E402
from kagglekit.vision import TrainConfig, lr_find, merge, train  # noqa: E402
from kagglekit.vision.learner import Learner, valley  # noqa: E402
from kagglekit.vision.model import Head, create_vision_model, find_weight_file  # noqa: E402

from .conftest import make_images, write_spec  # noqa: E402

FAST = dict(arch="test_efficientnet", sizes=(24,), batch_size=16, pretrained=False, lr=5e-3, num_workers=0)


def test_gradient_accumulation_equals_one_large_batch():
    """2 micro-batches of 16 with accum=2 give the same weights as 1 batch of 32 (no batch norm)."""
    torch.manual_seed(0)
    base = timm.create_model("test_convnext", pretrained=False, num_classes=3)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in base.modules())
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 3, (32, 1)).float()
    heads = [Head("y", 0, 3, ("a", "b", "c"))]

    def run(batch: int, accum: int):
        import copy

        model = copy.deepcopy(base)
        learner = Learner(model, heads, torch.device("cpu"), accum)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        loader = [(x[i:i + batch], y[i:i + batch]) for i in range(0, 32, batch)]
        learner.train_epoch(loader, opt, None)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    one_big = run(32, 1)
    accumulated = run(16, 2)
    two_small_steps = run(16, 1)
    torch.testing.assert_close(accumulated, one_big, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(two_small_steps, one_big, rtol=1e-4, atol=1e-5)  # the test can fail


def test_multi_target_heads_learn_and_only_submitted_target_is_written(ws):
    make_images(ws.root, n=300, n_test=40, size=32)
    result = train("tiny", TrainConfig(epochs=8, **{**FAST, "sizes": (32,), "lr": 2e-2}), workspace=ws)
    # chance is 1/3 for both targets
    assert result.per_target["colour"] > 0.8
    assert result.per_target["shape"] > 0.45
    sub = read_submission(result.submission)
    assert list(sub.columns) == ["image_id", "shape"]
    data = load_data(ws.competition("tiny"), ws)
    assert validate_submission(data, sub) == []
    assert result.holdout is not None
    run = result.run
    assert {"shape:circle", "colour:red"} <= set(run.oof().columns)
    for png in ("confusion_matrix.png", "top_losses.png"):
        assert (run.path / png).stat().st_size > 1000
    history = pd.read_csv(run.path / "history.csv")
    assert set(history.fold) == {0, 1} and {"train_loss", "valid_loss", "shape", "colour"} <= set(history.columns)


def test_weights_load_from_a_local_file_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = timm.create_model("resnet10t", pretrained=False, num_classes=1000)
    path = tmp_path / "resnet10t.pth"
    torch.save(src.state_dict(), path)
    t = time.perf_counter()
    model, source = create_vision_model("resnet10t", 5, pretrained=True, weights=str(path))
    assert time.perf_counter() - t < 20 and source == f"file {path}"
    torch.testing.assert_close(model.conv1[0].weight, src.conv1[0].weight)  # body weights loaded
    assert model.get_classifier().out_features == 5  # head re-created for our classes
    # a folder of weight files (KK_WEIGHTS_DIR) works too
    monkeypatch.setenv("KK_WEIGHTS_DIR", str(tmp_path))
    assert find_weight_file(tmp_path, "resnet10t") == path
    model2, source2 = create_vision_model("resnet10t", 2, pretrained=True)
    torch.testing.assert_close(model2.conv1[0].weight, src.conv1[0].weight)
    # no weights anywhere: a clear error when pretrained is required, random init with a warning on auto
    monkeypatch.delenv("KK_WEIGHTS_DIR")
    with pytest.raises(KKError, match="KK_WEIGHTS_DIR"):
        create_vision_model("resnet10t", 2, pretrained=True)
    with pytest.warns(UserWarning, match="random initialisation"):
        assert create_vision_model("resnet10t", 2, pretrained="auto")[1] == "random init"


def test_fine_tune_freezes_body_for_pretrained_weights(ws, tmp_path):
    make_images(ws.root)
    src = timm.create_model("test_efficientnet", pretrained=False, num_classes=10)
    weights = tmp_path / "test_efficientnet.pth"
    torch.save(src.state_dict(), weights)
    result = train("tiny", TrainConfig(epochs=1, folds=(0,), **{**FAST, "pretrained": True, "weights": str(weights)}),
                   workspace=ws)
    history = pd.read_csv(result.run.path / "history.csv")
    assert history.phase.tolist() == ["probe", "stage"]  # the head fitted on frozen features, then fine-tuning
    assert result.weights_source.startswith("file ")
    # fastai's frozen epochs are still there on request
    again = train("tiny", TrainConfig(epochs=1, folds=(0,), probe=False, freeze_epochs=1,
                                      **{**FAST, "pretrained": True, "weights": str(weights)}), workspace=ws)
    assert pd.read_csv(again.run.path / "history.csv").phase.tolist() == ["frozen", "stage"]
    assert result.submission is None  # one fold of two: no submission from a partial run


def test_unknown_arch_suggests_a_name(ws):
    make_images(ws.root)
    with pytest.raises(SpecError, match="did you mean 'resnet18'"):
        train("tiny", TrainConfig(**{**FAST, "arch": "resnet81"}), workspace=ws)


def test_corrupt_image_is_named_or_skipped(ws):
    make_images(ws.root)
    data = load_data(ws.competition("tiny"), ws)
    bad = data.train["path"].iloc[3]
    with open(bad, "wb") as f:
        f.write(b"not a png")
    with pytest.raises(DataError, match=bad.split("/")[-1]):
        train("tiny", TrainConfig(epochs=1, **FAST), workspace=ws)
    bad_test = data.test["path"].iloc[2]
    with open(bad_test, "wb") as f:
        f.write(b"not a png either")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = train("tiny", TrainConfig(epochs=1, skip_bad_images=True, **FAST), workspace=ws, submit=False)
    assert any("skipping unreadable image" in str(x.message) for x in w)
    assert r.run.complete
    # #14.8: what was skipped is recorded; the unreadable test image gets the training prior, and the
    # unreadable training image is out of the scores
    assert r.run.meta["skipped_images"] == {"train": [bad], "test": [bad_test]}
    test = r.run.test()
    prior = data.train.loc[data.train["path"] != bad, "shape"].value_counts(normalize=True)
    row = test.iloc[2]
    assert all(abs(row[f"shape:{c}"] - prior[c]) < 1e-9 for c in prior.index)
    from kagglekit.folds import get_folds
    from kagglekit.predictions import score_predictions, target_info

    folds = get_folds(data, ws)
    oof = r.run.oof()
    targets = target_info(data.comp, data.train)
    preds = {h: oof[[c for c in oof.columns if c.startswith(h + ":")]].to_numpy() for h in ("shape", "colour")}
    keep = np.flatnonzero(data.train["path"].to_numpy() != bad)
    assert r.cv == pytest.approx(score_predictions(data.comp, data.train, preds, targets, rows=keep)["cv"])
    assert len(folds.fold) == len(data.train)


def test_lr_find_restores_model_and_suggests_valley(ws):
    make_images(ws.root)
    suggestion, path = lr_find("tiny", workspace=ws, **FAST)
    assert 1e-7 < suggestion < 10 and path.suffix == ".png" and path.stat().st_size > 1000
    # the sweep leaves the model as it found it
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    heads = [Head("shape", 0, 3, ("a", "b", "c")), Head("colour", 3, 3, ("r", "g", "b"))]
    learner = Learner(model, heads, torch.device("cpu"))
    loader = [(torch.randn(8, 3, 24, 24), torch.randint(0, 3, (8, 2)).float()) for _ in range(5)]
    lrs, losses, s = learner.lr_find(loader, num_it=20)
    assert len(lrs) == len(losses) <= 20 and np.all(np.diff(lrs) > 0)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_valley_on_a_known_curve():
    lrs = np.logspace(-6, 1, 70)
    losses = np.concatenate([np.full(20, 2.0), np.linspace(2.0, 0.5, 30), np.linspace(0.5, 5, 20)])
    s = valley(lrs, losses)
    assert lrs[20] < s < lrs[49]  # inside the descending stretch
    # a plateau that drifts down by rounding (a zero-initialised head starts at ln C) is not the valley
    drift = np.concatenate([np.log(2) - np.arange(40) * 1e-6, np.linspace(np.log(2), 0.45, 20),
                            np.linspace(0.45, 1.8, 10)])
    lrs = np.logspace(-7, 1, 70)
    assert lrs[40] < valley(lrs, drift) < lrs[59]


def test_progressive_resizing_tta_and_resume(ws):
    make_images(ws.root)
    cfg = TrainConfig(epochs=2, tta=2, **{**FAST, "sizes": (16, 24)})
    calls = []

    def crash_in_fold_1(row):
        calls.append(row)
        if row["fold"] == 1 and row["epoch"] == 0:
            raise KeyboardInterrupt  # the machine went away after fold 1's first epoch

    with pytest.raises(KeyboardInterrupt) as stopped:
        train("tiny", cfg, workspace=ws, log=crash_in_fold_1)
    from kagglekit.runs import RunStore

    partial = RunStore(ws, "tiny").runs(complete_only=False)[0]
    assert str(stopped.value) == f"continue with: kk train tiny --resume {partial.id}"  # what Ctrl-C prints
    fold0 = partial.path / "fold_0" / "preds.npz"
    mtime = fold0.stat().st_mtime_ns
    assert [(r["size"], r["epoch"]) for r in calls if r["fold"] == 0] == [(16, 0), (24, 0)]
    resumed_rows = []
    result = train("tiny", workspace=ws, resume=partial.id, log=resumed_rows.append)
    assert fold0.stat().st_mtime_ns == mtime  # the finished fold was not trained again
    assert [(r["fold"], r["size"], r["epoch"]) for r in resumed_rows] == [(1, 24, 0)]  # continued, not restarted
    assert result.run.id == partial.id and result.run.complete and result.submission is not None
    assert result.cv_no_tta is not None and result.run.scores["tta"] == 2
    with pytest.raises(RunError, match="already complete"):
        train("tiny", workspace=ws, resume=partial.id)


def test_folds_on_different_machines_merge_into_one_run(ws):
    make_images(ws.root)
    a = train("tiny", TrainConfig(epochs=1, folds=(0,), **FAST), workspace=ws)
    b = train("tiny", TrainConfig(epochs=1, folds=(1,), **FAST), workspace=ws)
    assert a.submission is None and np.isnan(a.run.oof()["shape:circle"]).any()
    merged = merge("tiny", [a.run.id, b.run.id], workspace=ws)
    assert merged.folds_done == [0, 1] and merged.submission is not None
    assert not merged.run.oof().drop(columns="image_id").isna().any().any()
    c = train("tiny", TrainConfig(epochs=2, folds=(1,), **FAST), workspace=ws, submit=False)
    with pytest.raises(RunError, match="differ in epochs"):
        merge("tiny", [a.run.id, c.run.id], workspace=ws)
    # the default ensemble blends complete runs only and reports the partial ones
    from kagglekit.blend import ensemble

    blend = ensemble("tiny", workspace=ws, submit=False)
    assert [m[0] for m in blend.members] == [merged.run.id]
    assert {s.split()[0] for s in blend.skipped} == {a.run.id, b.run.id, c.run.id}


def test_tabular_competition_is_refused(ws):
    write_spec(ws.root, "tab", "id='id'\nmetric='accuracy'\n[[targets]]\nname='y'\ntask='binary'\n")
    with pytest.raises(SpecError, match="kk baseline tab"):
        train("tab", TrainConfig(**FAST), workspace=ws)


def test_final_predictions_use_the_best_checkpoint_at_its_own_size(ws):
    """With progressive resizing the best epoch may come from an early, smaller stage: the fold's
    OOF predictions must reproduce the score that epoch was chosen for."""
    make_images(ws.root)
    r = train("tiny", TrainConfig(epochs=4, folds=(0,), **{**FAST, "sizes": (16, 24)}), workspace=ws)
    preds = np.load(r.run.path / "fold_0" / "preds.npz")
    history = pd.read_csv(r.run.path / "history.csv")
    for head in ("colour", "shape"):  # keep = loss: each head's epoch of its own lowest validation loss
        best_row = history.loc[history[f"valid_loss:{head}"].idxmin()]
        assert int(preds[f"size:{head}"]) == best_row["size"]
    assert r.cv == pytest.approx(best_row["shape"])  # the submitted head scores as its kept epoch did


def test_16_bit_greyscale_keeps_its_grey_levels(tmp_path):
    """#14.8: a 16-bit PNG with 78 grey levels came out as pure black and white."""
    from PIL import Image

    from kagglekit.vision.data import load_images

    levels = np.linspace(0, 65535, 78).astype(np.uint16)
    arr = np.repeat(levels[None, :], 10, axis=0)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode in ("I;16", "I")
    (img,) = load_images([str(tmp_path / "deep.png")], 224)
    assert img.shape == (10, 78, 3) and img.dtype == np.uint8
    assert len(np.unique(img[..., 0])) == 78 and img[0, 0, 0] == 0 and img[0, -1, 0] == 255
    assert np.all(np.diff(img[0, :, 0].astype(int)) > 0)  # the order of the grey levels is kept


def test_resume_runs_no_code_from_a_crafted_checkpoint(ws, tmp_path):
    """#14.4: --resume loaded last.pt with weights_only=False, so a crafted file ran code."""
    from kagglekit.errors import RunError
    from kagglekit.runs import RunStore

    make_images(ws.root)
    cfg = TrainConfig(epochs=2, **FAST)

    def stop(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train("tiny", cfg, workspace=ws, log=stop)
    run = RunStore(ws, "tiny").runs(complete_only=False)[0]
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"model": Payload()}, run.path / "fold_0" / "last.pt")
    with pytest.raises(RunError, match=r"fold_0/last.pt: not a plain kagglekit checkpoint"):
        train("tiny", workspace=ws, resume=run.id)
    assert not marker.exists()


@pytest.mark.parametrize("tta_is_better", [True, False])
def test_tta_is_used_only_when_it_does_not_hurt_the_oof_score(ws, tta_is_better):
    from kagglekit.folds import get_folds
    from kagglekit.predictions import encode_target
    from kagglekit.vision.config import make_heads
    from kagglekit.vision.results import assemble

    make_images(ws.root, n=60, n_test=10, size=16)
    data = load_data(ws.competition("tiny"), ws)
    folds = get_folds(data, ws)
    heads, _ = make_heads(data.comp, data.train)
    rng = np.random.default_rng(0)
    fold_preds = {}
    for f, _, va in folds.split(range(folds.k)):
        p = {"valid_idx": va}
        for h in heads:
            truth = np.eye(len(h.classes))[encode_target(data.train[h.name].iloc[va], list(h.classes))]
            noisy = rng.dirichlet(np.ones(len(h.classes)), len(va))
            good, bad = 0.9 * truth + 0.1 * noisy, noisy
            p[f"oof:{h.name}"], p[f"oof_tta:{h.name}"] = (bad, good) if tta_is_better else (good, bad)
            p[f"test:{h.name}"] = p[f"test_tta:{h.name}"] = np.full((len(data.test), len(h.classes)), 0.5)
        fold_preds[f] = p
    res = assemble(data, folds, heads, fold_preds)
    assert res.best == ("tta" if tta_is_better else "plain")
    assert res.scores[res.best]["cv"] >= res.scores["plain"]["cv"]
