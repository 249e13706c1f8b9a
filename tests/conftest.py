"""Shared fixtures: an isolated environment and small synthetic workspaces in tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    for var in ("KK_HOME", "KK_DATA_DIR", "KK_DEBUG", "KK_WEIGHTS_DIR", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE",
                "KK_FOLD_WORKERS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real competition data not found at {SHARED_DATA} (only present beside the repo)")
    return SHARED_DATA


def write_spec(ws: Path, name: str, toml: str) -> Path:
    folder = ws / "competitions" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "competition.toml").write_text(textwrap.dedent(toml))
    return folder


def make_tabular(ws: Path, name: str = "synth", task: str = "binary", n: int = 400, n_test: int = 100,
                 metric: str | None = None, seed: int = 0, cv: str = "kind = 'kfold'\nk = 4") -> Path:
    """A synthetic tabular competition with signal, a date, a categorical and missing values."""
    rng = np.random.default_rng(seed)
    m = n + n_test
    x1 = rng.normal(size=m)
    x2 = rng.normal(size=m)
    cat = rng.choice(["a", "b", "c"], m)
    signal = 1.5 * x1 - x2 + (cat == "a") * 1.0
    if task == "binary":
        y = (signal + rng.normal(0, 0.5, m) > 0).astype(int)
        metric = metric or "accuracy"
    elif task == "multiclass":
        y = np.digitize(signal + rng.normal(0, 0.3, m), [-1, 1])
        y = np.array(["low", "mid", "high"])[y]
        metric = metric or "accuracy"
    else:
        y = np.exp(1 + 0.5 * signal + rng.normal(0, 0.1, m))
        metric = metric or "rmsle"
    dates = pd.date_range("2021-01-01", periods=m, freq="D").strftime("%Y-%m-%d")
    df = pd.DataFrame({"row_id": np.arange(m), "x1": x1, "x2": x2, "cat": cat, "when": dates, "y": y})
    df.loc[rng.random(m) < 0.1, "x2"] = np.nan
    df.loc[rng.random(m) < 0.1, "cat"] = np.nan
    data = ws / "data" / name
    data.mkdir(parents=True, exist_ok=True)
    df.iloc[:n].to_csv(data / "train.csv", index=False)
    df.iloc[n:].drop(columns="y").to_csv(data / "test.csv", index=False)
    sample = df.iloc[n:][["row_id"]].assign(y=0 if task != "multiclass" else "low")
    sample.to_csv(data / "sample_submission.csv", index=False)
    df.iloc[n:][["row_id", "y"]].to_csv(data / "solution.csv", index=False)
    return write_spec(ws, name, f"""
        id = "row_id"
        metric = "{metric}"
        [files]
        solution = "solution.csv"
        [[targets]]
        name = "y"
        task = "{task}"
        [cv]
        {cv}
        [tabular]
        date_columns = ["when"]
        """)


@pytest.fixture
def ws_path(tmp_path) -> Path:
    (tmp_path / "competitions").mkdir()
    return tmp_path


@pytest.fixture
def ws(ws_path):
    from kagglekit.workspace import Workspace

    return Workspace.at(ws_path)


def save_run(ws, data, oof: dict, test: dict, label: str = "m", fold_id: str | None = None):
    """Store a run with the given OOF/test predictions (``{target: array}``) as a pipeline would."""
    from kagglekit.folds import get_folds
    from kagglekit.predictions import score_predictions, target_info, to_frame
    from kagglekit.runs import RunStore

    comp = data.comp
    targets = target_info(comp, data.train)
    folds = get_folds(data, ws)
    w = RunStore(ws, comp.name).create("tabular", label, {"models": [label]})
    w.save_predictions(to_frame(data.train[comp.id_column], comp.id_column, oof, targets),
                       to_frame(data.test[comp.id_column], comp.id_column, test, targets))
    w.save_scores({"cv": score_predictions(comp, data.train, oof, targets)["cv"]})
    return w.finish(comp, ws, fold_id=fold_id or folds.id, targets=targets, timings={})


def make_images(ws: Path, name: str = "tiny", n: int = 160, n_test: int = 40, size: int = 24, k: int = 2) -> Path:
    """A tiny two-target image competition (shape submitted, colour auxiliary) in ``ws``."""
    from kagglekit.builtin import shapes

    data = ws / "data" / name
    data.mkdir(parents=True, exist_ok=True)
    shapes(data, n=n + n_test, n_test=n_test, size=size)
    return write_spec(ws, name, f"""
        id = "image_id"
        metric = "accuracy"
        kind = "image"
        [files]
        solution = "solution.csv"
        [[targets]]
        name = "shape"
        task = "multiclass"
        [[targets]]
        name = "colour"
        task = "multiclass"
        submit = false
        [cv]
        kind = "multilabel-stratified"
        k = {k}
        [image]
        layout = "csv"
        train_path = "images/{{image_id}}"
        test_path = "images/{{image_id}}"
        """)
