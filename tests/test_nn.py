"""The neural family for tables (fastai's tabular model in torch): seeded, the best epoch kept, a
class missing from a fold, settings by table size, and a clear line when torch is missing."""

import numpy as np
import pandas as pd
import pytest

from kagglekit.errors import OptionError
from kagglekit.tabular.models import create_model, missing_extra

pytest.importorskip("torch")


def _frame(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"z": rng.normal(size=n), "w": rng.normal(size=n), "shop": rng.integers(0, 4, n)})
    y = (X["z"] - X["w"] + (X["shop"] == 2) + rng.normal(0, 0.5, n) > 0).astype(int).to_numpy()
    return X, y


def _fit(seed=0, **params):
    X, y = _frame()
    model = create_model("nn", task="classification", n_classes=2, seed=seed, params=params, n_jobs=1)
    return model.fit(X[:450], y[:450], X[450:], y[450:], categorical=("shop",)), X[450:], y[450:]


def test_the_same_seed_gives_the_same_model_and_another_seed_another():
    a, Xv, _ = _fit(seed=1)
    b, _, _ = _fit(seed=1)
    c, _, _ = _fit(seed=2)
    np.testing.assert_array_equal(a.predict(Xv), b.predict(Xv))
    assert not np.allclose(a.predict(Xv), c.predict(Xv))


def test_the_best_validation_epoch_is_the_one_kept():
    model, Xv, yv = _fit(epochs=12, lr=0.05)
    losses = [v for _, v in model.history_]
    assert len(losses) == 12 and model.best_iteration_ == int(np.argmin(losses)) + 1
    p = model.predict(Xv)[np.arange(len(yv)), yv]
    assert -np.mean(np.log(p)) == pytest.approx(min(losses), rel=1e-4)  # the kept weights score the best loss
    assert (model.predict(Xv).argmax(1) == yv).mean() > 0.75
    imp = dict(zip(Xv.columns, model.feature_importances_, strict=True))
    assert imp["z"] > 0 and imp["w"] > 0  # shuffling a signal column costs validation loss


def test_a_class_missing_from_the_fold_still_gets_a_column():
    X, y = _frame(seed=3)
    model = create_model("nn", task="classification", n_classes=3, seed=0, n_jobs=1).fit(X, y, categorical=("shop",))
    proba = model.predict(X.head(50))
    assert proba.shape == (50, 3) and np.allclose(proba.sum(1), 1) and proba[:, 2].max() < 0.05


def test_an_unseen_category_code_maps_to_the_unseen_level():
    model, Xv, _ = _fit()
    odd = Xv.head(5).copy()
    odd["shop"] = [0, 99, -3, 4, 1_000]  # beyond the fold's levels: treated as unseen (0)
    ref = odd.assign(shop=[0, 0, 0, 0, 0])
    np.testing.assert_allclose(model.predict(odd), model.predict(ref))


@pytest.mark.parametrize("n_rows, batch, epochs", [(891, 64, 20), (50_000, 256, 20), (500_000, 1024, 8)])
def test_batch_and_epochs_follow_the_tables_size(n_rows, batch, epochs):
    p = create_model("nn", task="regression", n_rows=n_rows).resolved_params()
    assert (p["batch_size"], p["epochs"]) == (batch, epochs)


def test_without_torch_the_family_says_how_to_install_it_and_the_defaults_leave_it_out(monkeypatch, ws):
    import sys

    from kagglekit.tabular.baseline import baseline

    from .conftest import make_tabular

    monkeypatch.setitem(sys.modules, "torch", None)  # as if not installed: importing it fails
    assert missing_extra("nn") == "pip install torch"
    X, y = _frame()
    with pytest.raises(OptionError, match="pip install torch"):
        create_model("nn", task="classification", n_classes=2).fit(X, y)
    monkeypatch.undo()  # scipy looks torch up in sys.modules too: hide it from kk's own check alone
    from kagglekit.tabular import nn

    monkeypatch.setattr(nn, "torch_available", lambda: False)
    make_tabular(ws.root, n=200, n_test=40)
    result = baseline("synth", workspace=ws, submit=False, params={"rf": {"n_estimators": 20}})
    assert "nn" not in [r.model for r in result.results]
    assert "nn left out: not installed here (pip install torch)" in result.notes


def test_titanic_nn_and_linear_run_and_the_ensemble_blends_them_with_the_trees(ws, monkeypatch, shared_data):
    import shutil

    from kagglekit.blend import ensemble
    from kagglekit.tabular.baseline import baseline

    from .conftest import REPO

    monkeypatch.setenv("KK_DATA_DIR", str(shared_data))
    shutil.copytree(REPO / "competitions" / "titanic", ws.root / "competitions" / "titanic")
    result = baseline("titanic", models=("lgbm", "linear", "nn"), workspace=ws, submit=False)
    by = {r.model: r for r in result.results}
    assert by["nn"].cv > 0.78 and by["linear"].cv > 0.78  # Titanic's trees reach about 0.83
    blend = ensemble("titanic", [r.run.id for r in result.results], workspace=ws)
    assert {rid for rid, _, _ in blend.members} == {r.run.id for r in result.results}
    assert blend.submission is not None and blend.submission.is_file()


@pytest.mark.parametrize("total,pct_start", [(40, 0.25), (7, 0.3), (1, 0.25)])
def test_the_hand_written_one_cycle_adamw_takes_torch_optimizers_steps(total, pct_start):
    """``_onecycle`` stands in for torch.optim.AdamW + OneCycleLR (whose import costs over a second):
    the same weights after every step, the momentum cycle and the last step included."""
    import torch

    from kagglekit.tabular._onecycle import OneCycleAdamW

    def net():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                   torch.nn.Linear(8, 1))

    ours, theirs = net(), net()
    opt = OneCycleAdamW(ours.parameters(), max_lr=0.05, total=total, weight_decay=0.01, pct_start=pct_start)
    ref = torch.optim.AdamW(theirs.parameters(), lr=0.05, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(ref, max_lr=0.05, total_steps=total, pct_start=pct_start)
    gen = torch.Generator().manual_seed(1)
    for _ in range(total):
        x, y = torch.randn(16, 5, generator=gen), torch.randn(16, 1, generator=gen)
        for model, step in ((ours, opt), (theirs, ref)):
            step.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            step.step()
        sched.step()
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(ours.parameters(), net().parameters(), strict=True))
