"""An auxiliary target with missing labels: its rows leave that head's loss and score, every other
head still learns from them; a submitted target with missing labels stays refused."""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

import torch.nn.functional as F  # noqa: E402

from kagglekit.data import load_data  # noqa: E402
from kagglekit.errors import DataError  # noqa: E402
from kagglekit.metrics import get_metric  # noqa: E402
from kagglekit.predictions import encode_target  # noqa: E402
from kagglekit.submissions import read_submission, validate_submission  # noqa: E402
from kagglekit.vision import TrainConfig, train  # noqa: E402
from kagglekit.vision.learner import Learner  # noqa: E402
from kagglekit.vision.model import Head  # noqa: E402

from .conftest import make_images  # noqa: E402

NAN = float("nan")


def _learner(smoothing: float = 0.0) -> Learner:
    heads = [Head("kind", 0, 3, ("a", "b", "c")), Head("age", 3, 1, None, 0.0, 1.0, False)]
    model = torch.nn.Linear(5, 4)
    return Learner(model, heads, torch.device("cpu"), label_smoothing=smoothing)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_a_missing_label_leaves_only_its_own_heads_loss(smoothing):
    learner = _learner(smoothing)
    out = torch.randn(6, 4)
    y = torch.tensor([[0, 1.0], [1, NAN], [2, 0.5], [NAN, 2.0], [1, 1.0], [0, NAN]])
    kind, age = learner.head_losses(out, y)
    known_kind, known_age = ~torch.isnan(y[:, 0]), ~torch.isnan(y[:, 1])
    torch.testing.assert_close(kind, F.cross_entropy(out[known_kind, :3], y[known_kind, 0].long(),
                                                     label_smoothing=smoothing))
    torch.testing.assert_close(age, F.mse_loss(out[known_age, 3], y[known_age, 1]))
    full = torch.tensor([[0, 1.0], [1, 0.0], [2, 0.5], [1, 2.0], [1, 1.0], [0, 3.0]])
    assert not torch.isclose(learner.head_losses(out, full)[1], age)  # the test can fail


def test_a_batch_without_a_heads_labels_adds_nothing_and_trains_the_others():
    learner = _learner()
    out = torch.randn(4, 4, requires_grad=True)
    y = torch.tensor([[0, NAN], [1, NAN], [2, NAN], [1, NAN]])
    kind, age = learner.head_losses(out, y)
    assert float(age.detach()) == 0.0 and torch.isfinite(kind)
    (kind + age).backward()
    assert torch.isfinite(out.grad).all() and out.grad[:, :3].abs().sum() > 0 and out.grad[:, 3].abs().sum() == 0


def _blank(ws, column: str, rows: np.ndarray) -> pd.DataFrame:
    path = ws.root / "data" / "tiny" / "train.csv"
    df = pd.read_csv(path)
    df.loc[rows, column] = np.nan
    df.to_csv(path, index=False)
    return df


def test_kk_train_learns_an_auxiliary_target_with_missing_labels_and_scores_its_labelled_rows(ws):
    make_images(ws.root, n=200, n_test=20, size=32)
    df = _blank(ws, "colour", np.arange(0, 200, 4))  # a quarter of the colours unknown
    cfg = TrainConfig(arch="test_efficientnet", sizes=(32,), batch_size=16, pretrained=False, lr=2e-2,
                      num_workers=0, epochs=4)
    result = train("tiny", cfg, workspace=ws)
    oof = result.run.oof()
    assert not oof.filter(like="colour:").isna().any().any()  # every image still gets a colour prediction
    labelled = df["colour"].notna().to_numpy()
    classes = [c.split(":", 1)[1] for c in oof.columns if c.startswith("colour:")]
    y = encode_target(df["colour"][labelled], classes)
    by_hand = get_metric("accuracy")(y, oof.filter(like="colour:").to_numpy()[labelled])
    assert result.per_target["colour"] == pytest.approx(by_hand) and by_hand > 0.6  # chance is 1/3
    sub = read_submission(result.submission)
    assert validate_submission(load_data(ws.competition("tiny"), ws), sub) == []


def test_a_submitted_target_with_missing_labels_is_still_refused_and_an_empty_auxiliary_one_too(ws):
    make_images(ws.root, n=40, n_test=10)
    _blank(ws, "shape", np.array([3, 7]))
    with pytest.raises(DataError, match="target column 'shape' has 2 missing values"):
        load_data(ws.competition("tiny"), ws)
    path = ws.root / "data" / "tiny" / "train.csv"
    pd.read_csv(path).assign(shape="circle").to_csv(path, index=False)
    _blank(ws, "colour", np.arange(40))
    with pytest.raises(DataError, match="auxiliary target 'colour' has no labels"):
        load_data(ws.competition("tiny"), ws)
