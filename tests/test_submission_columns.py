"""A submission column that no model predicts never leaves kk silently: an error before training,
or, declared as a placeholder, the sample's values with a warning."""

import pandas as pd
import pytest

from kagglekit.errors import SubmissionError
from kagglekit.runs import RunStore
from kagglekit.tabular.baseline import baseline

from .conftest import make_tabular


def _extra_sample_column(ws, placeholders: str = ""):
    spec = make_tabular(ws.root)
    sample_path = ws.root / "data" / "synth" / "sample_submission.csv"
    sample = pd.read_csv(sample_path)
    sample["colour"] = "Black"  # a second submitted column, as in fashion-products
    sample.to_csv(sample_path, index=False)
    if placeholders:
        toml = spec / "competition.toml"
        toml.write_text(toml.read_text() + f"\n[submission]\nplaceholders = {placeholders}\n")


def test_an_unpredicted_column_is_refused_before_training(ws):
    _extra_sample_column(ws)
    with pytest.raises(SubmissionError, match=r"'colour' are predicted by no target.*\[\[targets\]\].*placeholders"):
        baseline("synth", models=("lgbm",), workspace=ws)
    assert RunStore(ws, "synth").runs(complete_only=False) == []  # nothing trained, nothing written


def test_a_declared_placeholder_is_submitted_with_a_warning(ws):
    _extra_sample_column(ws, '["colour"]')
    with pytest.warns(UserWarning, match="'colour' holds the sample submission's placeholder values"):
        result = baseline("synth", models=("lgbm",), workspace=ws)
    sub = pd.read_csv(result.submission)
    assert list(sub.columns) == ["row_id", "y", "colour"] and (sub["colour"] == "Black").all()
