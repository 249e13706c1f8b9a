"""Paddy, the course's own multi-target case, on a generated paddy-shaped folder: the shipped spec
(disease submitted, variety as an auxiliary head) plus the numeric ``age`` column as a regression
head, through the same code path as every photo set with several targets."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from kagglekit.submissions import read_submission, validate_submission  # noqa: E402
from kagglekit.vision import train  # noqa: E402
from kagglekit.workspace import PACKAGED_COMPETITIONS  # noqa: E402

from .conftest import write_spec  # noqa: E402

LABELS = ("blast", "hispa", "normal")
VARIETIES = ("ADT45", "KarnatakaPonni")


def _paddy(root, per_label=12, n_test=6):
    from PIL import Image

    rng = np.random.default_rng(0)
    data = root / "data" / "paddy-disease-classification"
    rows = []
    for k, label in enumerate(LABELS):
        folder = data / "train_images" / label
        folder.mkdir(parents=True)
        for i in range(per_label):
            name = f"{100 * k + i}.jpg"
            img = np.full((40, 30, 3), 60 * k + 40, np.uint8) + rng.integers(0, 25, (40, 30, 3), dtype=np.uint8)
            Image.fromarray(img).save(folder / name)  # portrait, like paddy's 480x640 photos
            rows.append({"image_id": name, "label": label, "variety": VARIETIES[i % 2], "age": 45 + 5 * k + i % 4})
    pd.DataFrame(rows).to_csv(data / "train.csv", index=False)
    (data / "test_images").mkdir()
    for i in range(n_test):
        Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(data / "test_images" / f"t{i}.jpg")
    pd.DataFrame({"image_id": [f"t{i}.jpg" for i in range(n_test)], "label": ""}).to_csv(
        data / "sample_submission.csv", index=False)


def test_paddy_trains_disease_variety_and_age_heads_and_submits_the_disease(ws):
    _paddy(ws.root)
    spec = (PACKAGED_COMPETITIONS / "paddy-disease-classification" / "competition.toml").read_text()
    spec = spec.replace("[cv]", '[[targets]]\nname = "age"\ntask = "regression"\nsubmit = false\n\n[cv]')
    write_spec(ws.root, "paddy-disease-classification", spec)
    result = train("paddy-disease-classification", workspace=ws, arch="test_convnext", pretrained=False,
                   sizes=(32,), epochs=2, batch_size=8, lr=5e-3, folds=None, num_workers=0, new=True)
    per_target = result.run.scores["per_target"]
    assert set(per_target) >= {"label", "variety", "age"}  # every head scored: two classes and a value
    oof = pd.read_parquet(result.run.path / "oof.parquet")
    assert {c for c in oof.columns if c.startswith("age")} and oof.notna().all().all()
    sub = read_submission(result.submission)
    assert list(sub.columns) == ["image_id", "label"] and set(sub["label"]) <= set(LABELS)
    from kagglekit.data import load_data

    comp = ws.competition("paddy-disease-classification")
    assert validate_submission(load_data(comp, ws), sub) == []
