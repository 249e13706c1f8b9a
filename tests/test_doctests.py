"""The public API's docstring examples run (the documentation shows them)."""

import doctest
import importlib

import pytest

MODULES = ["kagglekit.tabular.dates", "kagglekit.metrics", "kagglekit.tabular.models", "kagglekit.spec",
           "kagglekit.tabular.nn", "kagglekit.tabular._base"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
