"""kagglekit: from raw Kaggle competition files to a strong, validated submission.

Public API (imported lazily, so ``import kagglekit`` stays light and never imports torch)::

    import kagglekit as kk
    result = kk.baseline("titanic")          # RF, LightGBM, linear, net on the shared folds, blended
    result = kk.train("mnist-tiny", kk.TrainConfig(arch="resnet18", sizes=(64,)))
    blend = kk.ensemble("titanic")           # greedy blend of the runs' OOF predictions
    path = kk.submission("titanic")          # validated CSV of the best run
    kk.add_datepart(df, "saledate")          # fastai's date parts
    comp = kk.define_competition("titanic", id="PassengerId", metric="accuracy",
                                 targets={"Survived": "binary"}, data_dir="/kaggle/input/titanic",
                                 files={"sample_submission": "gender_submission.csv"})
    kk.baseline(comp)                        # a competition declared inline, no TOML
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "baseline": "kagglekit.tabular.baseline",
    "train": "kagglekit.vision.launch",
    "doctor": "kagglekit.doctor",
    "TrainConfig": "kagglekit.trainconfig",
    "lr_find": "kagglekit.vision.lr_finder",
    "merge": "kagglekit.vision.results",
    "ensemble": "kagglekit.blend",
    "run_pipeline": "kagglekit.pipeline",
    "tune": "kagglekit.tuning",
    "submission": "kagglekit.submissions",
    "define_competition": "kagglekit.spec",
    "download": "kagglekit.kaggle_client",
    "submit": "kagglekit.kaggle_client",
    "fetch_submissions": "kagglekit.kaggle_client",
    "add_datepart": "kagglekit.tabular.dates",
    "TabularPreprocessor": "kagglekit.tabular.preprocess",
    "create_model": "kagglekit.tabular.models",
    "list_models": "kagglekit.tabular.models",
    "register_model": "kagglekit.tabular.models",
    "get_metric": "kagglekit.metrics",
    "list_metrics": "kagglekit.metrics",
    "register_metric": "kagglekit.metrics",
    "Workspace": "kagglekit.workspace",
    "load_spec": "kagglekit.spec",
    "Competition": "kagglekit.spec",
    "load_data": "kagglekit.data",
    "get_folds": "kagglekit.folds",
    "RunStore": "kagglekit.runs",
    "KKError": "kagglekit.errors",
    "check": "kagglekit.check",
}

__all__ = ["competition", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kagglekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (tab completion in notebooks), not the lazy loader's plumbing."""
    return sorted(["__version__", *__all__])


def competition(name: str) -> Any:
    """The validated spec of competition ``name`` in the current workspace."""
    from .workspace import Workspace

    return Workspace.find().competition(name)
