"""The library as a Kaggle notebook uses it: lazy imports, inline competitions, /kaggle paths."""

import subprocess
import sys

import pytest

import kagglekit as kk

from .conftest import make_tabular


def test_public_api_is_lazy_and_complete():
    code = ("import sys, kagglekit as kk\n"
            "names = ['baseline','train','ensemble','submission','define_competition','add_datepart','tune']\n"
            "assert all(callable(getattr(kk, n)) for n in names)\n"
            "print(sorted(m for m in ('torch','timm','lightgbm','kaggle','optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # resolving the names imports none of the heavy libraries
    with pytest.raises(AttributeError):
        kk.not_a_function  # noqa: B018


def test_inline_competition_without_toml(tmp_path, monkeypatch):
    make_tabular(tmp_path)  # writes data/synth and a spec we will not use
    monkeypatch.chdir(tmp_path / "data")  # no competitions/ folder from here upward... except tmp_path's
    comp = kk.define_competition("inline", id="row_id", metric="accuracy", targets={"y": "binary"},
                                 data_dir=tmp_path / "data" / "synth", tabular={"date_columns": ["when"]},
                                 cv={"kind": "stratified", "k": 3})
    result = kk.baseline(comp, models=("lgbm",))
    assert result.best.cv > 0.75 and result.submission.is_file()
    # a notebook shows a summary, not a dataclass dump (#15.5)
    text = repr(result)
    assert text.startswith("<BaselineResult inline (accuracy): lgbm* 0.") and len(text) < 300
    assert "<table>" in result._repr_html_() and result.best.run.id in result._repr_html_()
    assert {"baseline", "train", "check", "__version__"} <= set(dir(kk)) and "import_module" not in dir(kk)
    path = kk.submission(comp)
    assert path == result.submission and len(list(path.parent.iterdir())) == 1  # the same bytes: no -2.csv copy
    with pytest.raises(kk.KKError, match="targets\\[0\\].task"):
        kk.define_competition("bad", id="row_id", metric="accuracy", targets={"y": "binry"})


def test_kaggle_notebook_paths(tmp_path, monkeypatch):
    """Inside a notebook (KAGGLE_KERNEL_RUN_TYPE set) outputs go to /kaggle/working and the final
    file is /kaggle/working/submission.csv."""
    import kagglekit.submissions as submission_mod
    import kagglekit.workspace as workspace_mod

    working = tmp_path / "kaggle" / "working"
    working.mkdir(parents=True)
    monkeypatch.setattr(workspace_mod, "KAGGLE_WORKING", working)
    monkeypatch.setattr(submission_mod, "KAGGLE_WORKING", working)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    make_tabular(tmp_path / "input")
    monkeypatch.chdir(tmp_path)
    comp = kk.define_competition("synth", id="row_id", metric="accuracy", targets={"y": "binary"},
                                 data_dir=tmp_path / "input" / "data" / "synth")
    result = kk.baseline(comp, models=("lgbm",))
    assert str(result.best.run.path).startswith(str(working / "runs" / "synth"))
    assert (working / "submission.csv").read_bytes() == result.submission.read_bytes()
