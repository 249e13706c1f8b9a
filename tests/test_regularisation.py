"""The fine-tuning toolbox: a probe regularised by inner CV, weight averaging (EMA) that predicts,
the kept epoch (loss, metric, last), layer-wise learning rates, stochastic depth, mixup/cutmix, and
the multiclass report of a run."""

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from kagglekit.errors import OptionError, SpecError  # noqa: E402
from kagglekit.vision import TrainConfig, train  # noqa: E402
from kagglekit.vision.fold import Checkpointer  # noqa: E402
from kagglekit.vision.learner import Learner  # noqa: E402
from kagglekit.vision.model import Head, create_vision_model, param_groups  # noqa: E402
from kagglekit.vision.probe import choose_c, fit_head  # noqa: E402

from .conftest import make_images  # noqa: E402

TINY = dict(arch="test_convnext", pretrained=False, sizes=(32,), epochs=2, batch_size=16, lr=5e-3, folds=(0,),
            num_workers=0, submit=False, new=True)


def test_probe_c_by_inner_cv_regularises_noisy_features():
    """Few rows, many noisy dimensions: C=1 memorises them; the inner CV picks a smaller C whose
    held-out loss is lower."""
    rng = np.random.default_rng(0)
    n, d = 120, 200
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[:, 0] += y * 0.8  # one weak real signal among 200 dimensions
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=3)
    model.classifier = torch.nn.Linear(d, 3)
    learner = Learner(model, [Head("y", 0, 3, ("a", "b", "c"))], torch.device("cpu"))
    feats, ys, ids = torch.from_numpy(x), torch.from_numpy(y[:, None].astype(np.float32)), torch.arange(n)
    (c,), losses = choose_c(learner, feats, ys, ids)
    assert c < 1.0 and losses[c][0] < losses[1.0][0]
    assert fit_head(learner, feats, ys, l2=1 / (2 * n * 1.0)) < fit_head(learner, feats, ys, l2=1 / (2 * n * c))


def test_a_heads_probe_does_not_depend_on_the_other_heads():
    """One linear layer: each head's rows are fitted on their own, so a near-separable auxiliary head
    (which wants many L-BFGS steps) leaves the other head's fit exactly as it is alone. Fitted
    jointly under one step budget, it would not be (a difference of 0.004 in the weights here)."""
    rng = np.random.default_rng(2)
    n, d = 300, 64
    x = torch.from_numpy(rng.normal(size=(n, d)).astype(np.float32))
    kind = ((x[:, 0] + torch.from_numpy(rng.normal(size=n).astype(np.float32))) > 0).float()
    separable = (x[:, 1:20].sum(1) > 0).float()

    def fitted(heads: list, ys: torch.Tensor, max_iter: int = 15) -> torch.Tensor:
        model = timm.create_model("test_efficientnet", pretrained=False, num_classes=sum(h.size for h in heads))
        model.classifier = torch.nn.Linear(d, sum(h.size for h in heads))
        torch.nn.init.zeros_(model.classifier.weight), torch.nn.init.zeros_(model.classifier.bias)
        fit_head(Learner(model, heads, torch.device("cpu")), x, ys, l2=[1 / (2 * n * 0.3), 1 / (2 * n * 100.0)][
            :len(heads)], max_iter=max_iter)
        return model.classifier.weight[:2].detach().clone()

    alone = fitted([Head("kind", 0, 2, ("0", "1"))], kind[:, None])
    both = fitted([Head("kind", 0, 2, ("0", "1")), Head("sep", 2, 2, ("0", "1"), submit=False)],
                  torch.stack([kind, separable], 1))
    torch.testing.assert_close(both, alone)
    assert not torch.allclose(fitted([Head("kind", 0, 2, ("0", "1"))], kind[:, None], max_iter=2), alone)


def test_probe_c_per_head_when_the_targets_want_different_regularisation():
    """Two heads on one linear layer: a clean target (signal in 40 dimensions, wants a large C) and
    a noisy one (one weak dimension, wants a small C). Each gets its own C, each head's rows are
    penalised by its own, and the pair beats one shared C on the held-out loss of both heads."""
    rng = np.random.default_rng(1)
    n, d = 300, 120
    x = rng.normal(size=(n, d)).astype(np.float32)
    clean = (x[:, :40].sum(1) > 0).astype(np.float32)
    noisy = ((x[:, 40] * 0.5 + rng.normal(size=n)) > 0).astype(np.float32)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=4)
    model.classifier = torch.nn.Linear(d, 4)
    heads = [Head("clean", 0, 2, ("0", "1")), Head("noisy", 2, 2, ("0", "1"))]
    learner = Learner(model, heads, torch.device("cpu"))
    ys = torch.from_numpy(np.stack([clean, noisy], 1))
    tr, va = slice(0, 200), slice(200, None)
    cs, losses = choose_c(learner, torch.from_numpy(x[tr]), ys[tr], torch.arange(200))
    assert cs[0] > cs[1], (cs, losses)
    shared = min(losses, key=lambda c: losses[c].sum())

    def held_out(c_each: list[float]) -> np.ndarray:
        fit_head(learner, torch.from_numpy(x[tr]), ys[tr], l2=[1 / (2 * 200 * c) for c in c_each])
        with torch.no_grad():
            out = model.get_classifier()(torch.from_numpy(x[va]))
            return np.array([float(p) for p in learner.head_losses(out, ys[va], smoothing=0.0)])

    per, one = held_out(cs), held_out([shared, shared])
    assert per[0] < one[0] - 0.02 and per[1] < one[1] + 1e-4, (per, one)


class FakeLearner:
    """What Checkpointer.epoch_end reads: weights to save (tagged ``tag``), no optimizer."""

    def __init__(self, tag):
        self.model = self.eval_model = torch.nn.Linear(1, 1)
        torch.nn.init.constant_(self.eval_model.weight, tag)
        self.opt = self.sched = self.ema = None
        self.steps = 0


def _row(epoch: int, cv: float, loss: float) -> dict:
    return {"epoch": epoch, "cv": cv, "valid_loss": loss, "size": 32}


@pytest.mark.parametrize(("keep", "kept"), [("loss", 1), ("metric", 2), ("last", 3)])
def test_the_kept_epoch_follows_the_rule(tmp_path, keep, kept):
    ckpt = Checkpointer(tmp_path, "accuracy", 32, keep=keep)
    for epoch, (cv, loss) in enumerate([(0.80, 0.50), (0.85, 0.30), (0.90, 0.45), (0.88, 0.60)]):
        ckpt.epoch_end(FakeLearner(epoch), _row(epoch, cv, loss), 0)
    [(path, size, heads)] = ckpt.choices()
    assert (path.name, size, heads) == ("best.pt", 32, [""])
    assert float(torch.load(path, weights_only=True)["weight"]) == kept
    resumed = Checkpointer(tmp_path, "accuracy", 32, keep=keep)  # the account survives a resume
    assert resumed.kept == ckpt.kept and resumed.kept[0]["at"] == kept


def test_a_checkpoint_from_before_per_head_keep_resumes_with_its_kept_epoch(tmp_path):
    torch.save({"phase": 1, "epoch": 0, "best": 0.85, "best_loss": 0.30, "best_size": 24, "history": []},
               tmp_path / "last.pt")  # what kk wrote before the per-head account
    ckpt = Checkpointer(tmp_path, "accuracy", 32)
    assert ckpt.kept == [{"at": -1, "cv": 0.85, "loss": 0.30, "size": 24}]
    ckpt.epoch_end(FakeLearner(5), _row(1, 0.88, 0.40), 1)  # worse loss: best.pt of before still predicts
    assert ckpt.kept[0]["at"] == -1 and ckpt.choices()[0][1] == 24


def test_several_heads_each_keep_their_own_best_epoch(tmp_path):
    """keep = loss with several heads: each head predicts from the epoch of its own lowest
    validation loss, not the one their (weighted) sum picks; heads that agree share one file."""
    ckpt = Checkpointer(tmp_path, "accuracy", 32, heads=["a", "b", "c"])
    losses = [(0.9, 0.5, 0.4), (0.6, 0.3, 0.5), (0.4, 0.7, 0.45)]  # a: epoch 2, b: epoch 1, c: epoch 0
    for epoch, (la, lb, lc) in enumerate(losses):
        row = {**_row(epoch, 0.5, la + lb + lc), "size": 16 * (epoch + 1),
               "valid_loss:a": la, "valid_loss:b": lb, "valid_loss:c": lc}
        ckpt.epoch_end(FakeLearner(epoch), row, 0)
    # the summed loss would keep epoch 1 for all three (1.4 against 1.8 and 1.55)
    got = {tuple(heads): (float(torch.load(path, weights_only=True)["weight"]), size)
           for path, size, heads in ckpt.choices()}
    assert got == {("a",): (2.0, 48), ("b",): (1.0, 32), ("c",): (0.0, 16)}

    (tmp_path / "shared").mkdir()
    shared = Checkpointer(tmp_path / "shared", "accuracy", 32, heads=["a", "b"])
    for epoch, loss in enumerate([0.5, 0.3, 0.4]):
        shared.epoch_end(FakeLearner(epoch), {**_row(epoch, 0.5, 2 * loss), "valid_loss:a": loss,
                                              "valid_loss:b": loss}, 0)
    [(path, size, heads)] = shared.choices()  # one prediction pass serves both heads
    assert heads == ["a", "b"] and float(torch.load(path, weights_only=True)["weight"]) == 1.0


def test_ema_weights_validate_and_predict(ws):
    """With keep = last, the OOF predictions are the last epoch's: their log loss (summed over the two
    targets) is that epoch's validation loss, which was measured on the averaged weights."""
    from kagglekit.data import load_data

    make_images(ws.root, n=96, n_test=16, size=32)
    plain = train("tiny", workspace=ws, ema=0.0, keep="last", **TINY)
    averaged = train("tiny", workspace=ws, ema=0.999, keep="last", **TINY)
    h_plain, h_ema = (pd.read_csv(r.run.path / "history.csv") for r in (plain, averaged))
    np.testing.assert_allclose(h_ema["train_loss"], h_plain["train_loss"], rtol=1e-5)  # the same training...
    assert not np.allclose(h_ema["valid_loss"], h_plain["valid_loss"])  # ...validated on other weights
    train_rows = load_data(ws.competition("tiny"), ws).train
    for result, history in ((plain, h_plain), (averaged, h_ema)):
        oof = pd.read_parquet(result.run.path / "oof.parquet")
        rows = oof.drop(columns="image_id").notna().all(axis=1).to_numpy()
        total = 0.0
        for target in ("shape", "colour"):
            classes = sorted(train_rows[target].unique())
            p = oof[[f"{target}:{c}" for c in classes]].to_numpy()[rows]
            y = np.searchsorted(classes, train_rows[target].to_numpy()[rows])
            total += float(-np.log(p[np.arange(len(y)), y]).mean())
        assert total == pytest.approx(history["valid_loss"].iloc[-1], rel=1e-4)


def test_layer_decay_gives_each_layer_its_rate():
    model, _ = create_vision_model("tf_efficientnet_lite0", 5, pretrained=False)
    groups = param_groups(model, 1e-3, 1e-5, 0.01, layer_decay=0.8)
    lrs = {g["name"].split("_")[0]: g["lr"] for g in groups}
    top = max(int(k[5:]) for k in lrs)
    assert lrs[f"layer{top}"] == pytest.approx(1e-3)  # the head
    assert lrs["layer0"] == pytest.approx(1e-3 * 0.8 ** top)  # the stem
    assert sorted(lrs.values()) == [lrs[f"layer{i}"] for i in range(top + 1)]  # deeper: higher
    head_params = {id(p) for p in model.get_classifier().parameters()}
    assert all(id(p) in head_params for g in groups if g["name"].startswith(f"layer{top}") for p in g["params"])
    flat = param_groups(model, 1e-3, 1e-5, 0.01)
    assert {g["lr"] for g in flat} == {1e-3, 1e-5}


def test_drop_path_reaches_the_model():
    model, _ = create_vision_model("tf_efficientnet_lite0", 5, pretrained=False, drop_path_rate=0.2)
    rates = [m.drop_prob for m in model.modules() if type(m).__name__ == "DropPath"]
    assert rates and max(rates) == pytest.approx(0.2, abs=0.02)


def test_mixup_trains_one_classification_target(ws):
    from kagglekit.scaffold import new_competition

    from .test_transfer import _photos

    for seed, label in enumerate(("daisy", "rose", "tulip")):  # one target
        _photos(ws.root / "data" / "petals" / "train" / label, [f"{label}{i}.jpg" for i in range(12)], seed=seed)
    new_competition("petals", ws)
    mixed = train("petals", workspace=ws, mixup=0.4, cutmix=1.0, label_smoothing=0.1, **{**TINY, "batch_size": 8})
    plain = train("petals", workspace=ws, label_smoothing=0.1, **{**TINY, "batch_size": 8})
    h_mixed, h_plain = (pd.read_csv(r.run.path / "history.csv")["train_loss"] for r in (mixed, plain))
    assert np.isfinite(h_mixed).all() and not np.allclose(h_mixed, h_plain)  # the batches were mixed


def test_the_mixed_loss_is_timms_soft_target_loss_for_one_head():
    from timm.data.mixup import mixup_target

    heads = [Head("y", 0, 3, ("a", "b", "c"))]
    learner = Learner(model=torch.nn.Identity(), heads=heads, device=torch.device("cpu"), label_smoothing=0.1)
    out, y = torch.randn(8, 3), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    lam = 0.3
    ours = lam * learner.loss(out, y[:, None].float()) + (1 - lam) * learner.loss(out, y.flip(0)[:, None].float())
    soft = mixup_target(y, 3, lam=lam, smoothing=0.1)  # what timm's Mixup hands a soft-target loss
    timms = -(soft * torch.log_softmax(out, 1)).sum(1).mean()
    assert float(ours) == pytest.approx(float(timms), rel=1e-5)


def test_the_mixer_blends_or_pastes_and_is_seeded():
    from kagglekit.vision.mixing import Mixer

    x = torch.rand(6, 3, 16, 16)
    blended, lam = Mixer(mixup=0.4, seed=1)(x.clone())
    assert 0 < lam < 1 and torch.allclose(blended, lam * x + (1 - lam) * x.flip(0), atol=1e-6)
    again, lam2 = Mixer(mixup=0.4, seed=1)(x.clone())
    assert lam2 == lam and torch.equal(again, blended)
    pasted, lam_box = Mixer(cutmix=1.0, seed=3)(x.clone())
    own = (pasted == x).all(1).float().mean().item()  # the share of each image still its own pixels
    assert own == pytest.approx(lam_box, abs=1e-6) and 0 < lam_box < 1


def test_mixup_mixes_every_target_of_a_multi_target_set_and_a_regression(ws):
    make_images(ws.root, n=96, n_test=16, size=32)  # two class targets: shape and colour
    mixed = train("tiny", workspace=ws, mixup=0.4, cutmix=1.0, **TINY)
    plain = train("tiny", workspace=ws, **TINY)
    h_mixed, h_plain = (pd.read_csv(r.run.path / "history.csv")["train_loss"] for r in (mixed, plain))
    assert np.isfinite(h_mixed).all() and not np.allclose(h_mixed, h_plain)
    heads = [Head("age", 0, 1, None, 30.0, 10.0), Head("gender", 1, 2, ("f", "m"))]
    learner = Learner(model=torch.nn.Identity(), heads=heads, device=torch.device("cpu"))
    out, y = torch.randn(4, 3), torch.tensor([[0.5, 0], [-1.0, 1], [0.2, 1], [1.5, 0]])
    mixed_target = 0.25 * y[:, 0] + 0.75 * y.flip(0)[:, 0]
    loss = 0.25 * learner.loss(out, y) + 0.75 * learner.loss(out, y.flip(0))
    mse_mixed = torch.nn.functional.mse_loss(out[:, 0], mixed_target)
    ce = 0.25 * torch.nn.functional.cross_entropy(out[:, 1:], y[:, 1].long()) \
        + 0.75 * torch.nn.functional.cross_entropy(out[:, 1:], y.flip(0)[:, 1].long())
    # MSE against both values = MSE against the mixed value + a constant in the outputs
    const = 0.25 * 0.75 * ((y[:, 0] - y.flip(0)[:, 0]) ** 2).mean()
    assert float(loss) == pytest.approx(float(mse_mixed + const + ce), rel=1e-5)


def test_each_targets_loss_carries_its_spec_weight(ws):
    from kagglekit.vision.config import make_heads

    make_images(ws.root, n=40, n_test=8, size=24)
    spec = ws.root / "competitions" / "tiny" / "competition.toml"
    spec.write_text(spec.read_text().replace('name = "colour"', 'name = "colour"\nweight = 0.25'))
    comp = ws.competition("tiny")
    assert [t.weight for t in comp.targets] == [1.0, 0.25]
    heads, y = make_heads(comp, __import__("kagglekit").data.load_data(comp, ws).train)
    learner = Learner(model=torch.nn.Identity(), heads=heads, device=torch.device("cpu"))
    out = torch.randn(len(y), heads[-1].stop)
    yt = torch.from_numpy(y)
    parts = [torch.nn.functional.cross_entropy(out[:, h.start:h.stop], yt[:, i].long()) for i, h in enumerate(heads)]
    assert float(learner.loss(out, yt)) == pytest.approx(float(parts[0] + 0.25 * parts[1]), rel=1e-5)
    spec.write_text(spec.read_text().replace("weight = 0.25", "weight = 0"))
    with pytest.raises(SpecError, match="weight.*expected a positive weight"):
        ws.competition("tiny")


def test_a_run_reports_classes_and_calibration(ws):
    make_images(ws.root, n=96, n_test=16, size=32)
    result = train("tiny", workspace=ws, **{**TINY, "folds": None})
    scores = json.loads((result.run.path / "scores.json").read_text())
    assert {r["class"] for r in scores["per_class"]} == {"circle", "square", "triangle"}
    assert 0 <= scores["calibration"]["ece"] <= 1 and scores["logloss"] > 0
    assert (result.run.path / "calibration.png").stat().st_size > 1000


def test_bad_toolbox_values_are_refused():
    with pytest.raises(OptionError, match="--keep: expected one of loss, metric, last, found 'best'"):
        TrainConfig(keep="best")
    with pytest.raises(OptionError, match="--probe-c: expected a number or 'auto'"):
        TrainConfig(probe_c="lots")


@pytest.mark.slow
def test_the_ladder_recipe_loads_each_archs_own_weights_and_says_what_the_blend_gains(ws, tmp_path, monkeypatch):
    """kk run's ladder on one folder of weight files: each stage loads its own arch's file, and the
    ensemble says in log loss whether it beats its best member beyond the folds' noise."""
    from safetensors.torch import save_file

    from kagglekit.pipeline import run_pipeline
    from kagglekit.scaffold import new_competition

    from .test_transfer import _photos

    weights = tmp_path / "weights"
    weights.mkdir()
    for arch in ("tf_efficientnet_lite0", "tf_efficientnet_lite2"):  # one file each, as the folder holds them
        save_file(timm.create_model(arch, pretrained=False).state_dict(), weights / f"{arch}.safetensors")
    monkeypatch.setenv("KK_WEIGHTS_DIR", str(weights))
    for seed, label in enumerate(("daisy", "rose", "tulip")):
        _photos(ws.root / "data" / "petals" / "train" / label, [f"{label}{i}.jpg" for i in range(10)], seed=seed)
    spec = new_competition("petals", ws)[0]
    text = spec.read_text().replace('arch = "resnet18"', "batch_size = 8\nepochs = 1")
    spec.write_text(text + '\n[stages.lite0]\nsizes = [32]\n\n[stages.lite2]\nsizes = [32, 40]\n')
    result = run_pipeline("petals", "ladder", workspace=ws)
    assert [o.stage.name for o in result.outcomes] == ["lite0", "lite2", "ensemble"]
    runs = {o.stage.name: o.runs[0] for o in result.outcomes}
    for stage in ("lite0", "lite2"):
        assert runs[stage].config["arch"] == f"tf_efficientnet_{stage}"
        source = str(np.load(runs[stage].path / "fold_0" / "preds.npz")["weights_source"])
        assert source == f"file {weights / f'tf_efficientnet_{stage}.safetensors'}"
    notes = runs["ensemble"].scores.get("notes", [])
    assert any(n.startswith("in log loss, the blend") for n in notes), notes


def test_epochs_follow_the_size_of_the_set():
    from kagglekit.vision.config import default_epochs

    assert default_epochs(400) == 1  # dogs vs cats: the probe is most of the model
    assert default_epochs(800) == 4  # flowers: fine-tuning earns its keep
    assert default_epochs(100_000) == 10
    ladder = [default_epochs(n) for n in range(100, 5000, 100)]
    assert ladder == sorted(ladder)  # more photos, never fewer epochs


def test_a_run_records_the_epochs_it_chose(ws):
    make_images(ws.root, n=96, n_test=16, size=32)
    result = train("tiny", workspace=ws, **{k: v for k, v in TINY.items() if k != "epochs"})
    assert result.run.config["epochs"] == 1  # 48 training images a fold
    assert len(pd.read_csv(result.run.path / "history.csv")) == 1


def test_trivial_augment_draws_one_operation_per_image_reproducibly():
    """policy = "trivial": each image gets one of fourteen operations (identity among them), drawn
    from the image's own seed: the same seed gives the same picture, and about one image in
    fourteen (or more: weak draws) keeps the crop's pixels untouched."""
    from kagglekit.vision.data import build_transforms, reseed

    ramp = np.linspace(60, 180, 40)
    image = np.stack([np.add.outer(ramp, ramp) / 2, np.add.outer(ramp, -ramp) / 2 + 120,
                      np.full((40, 40), 100.0)], axis=-1).astype(np.uint8)
    crop_only = build_transforms(32, (0.5,) * 3, (0.5,) * 3, train=True, flip=False, strength=1.0, policy="trivial")
    crop_only.transforms = crop_only.transforms[:1] + crop_only.transforms[-1:]  # drop the policy
    tf = build_transforms(32, (0.5,) * 3, (0.5,) * 3, train=True, flip=False, strength=1.0, policy="trivial")
    assert type(tf.transforms[-2]).__name__ == "OneOf" and len(tf.transforms[-2].transforms) == 14

    def view(pipeline, seed: int) -> np.ndarray:
        reseed(pipeline, seed)
        return pipeline(image=image)["image"]

    np.testing.assert_array_equal(view(tf, 3), view(tf, 3))
    untouched = sum(np.array_equal(view(tf, s), view(crop_only, s)) for s in range(280))
    # the identity's 280 / 14 = 20, plus draws too weak to change a pixel (posterize at 8 bits,
    # solarize above the brightest pixel): measured 39; the rest are changed
    assert 15 <= untouched <= 90, untouched


def test_the_policy_trains_and_a_wrong_one_is_refused(ws):
    make_images(ws.root, n=64, n_test=8, size=32)
    result = train("tiny", workspace=ws, policy="trivial", **{**TINY, "epochs": 1})
    assert json.loads((result.run.path / "config.json").read_text())["policy"] == "trivial"
    with pytest.raises(OptionError, match="--policy: expected one of basic, trivial, found 'rand'"):
        TrainConfig(policy="rand")


def test_an_rmsle_regression_head_fits_in_log_space_and_predicts_back(tmp_path):
    from kagglekit.errors import DataError
    from kagglekit.spec import define_competition
    from kagglekit.vision.config import make_heads
    from kagglekit.vision.model import split_outputs

    train_rows = pd.DataFrame({"image": ["a", "b", "c", "d"], "age": [1.0, 9.0, 30.0, 80.0]})
    comp = define_competition("ages", id="image", metric="rmsle", targets={"age": "regression"}, root=tmp_path)
    heads, y = make_heads(comp, train_rows)
    assert heads[0].log and np.allclose(y[:, 0] * heads[0].std + heads[0].mean, np.log1p(train_rows["age"]), atol=1e-5)
    back = split_outputs(y, heads)["age"]
    np.testing.assert_allclose(back, train_rows["age"], rtol=1e-4)
    rmse = define_competition("ages", id="image", metric="rmse", targets={"age": "regression"}, root=tmp_path)
    plain, y_plain = make_heads(rmse, train_rows)
    assert not plain[0].log and np.allclose(split_outputs(y_plain, plain)["age"], train_rows["age"], rtol=1e-4)
    with pytest.raises(DataError, match="negative values, which RMSLE cannot score"):
        make_heads(comp, train_rows.assign(age=[-1.0, 2.0, 3.0, 4.0]))
