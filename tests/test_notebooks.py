"""The example notebooks run as a Kaggle user runs them (internet off, the files under a data folder)
and write a valid submission.csv; they are committed without outputs."""

import shutil

import nbformat
import pandas as pd
import pytest

from .conftest import REPO

NOTEBOOKS = REPO / "notebooks"


def test_notebooks_are_committed_without_outputs():
    books = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert len(books) >= 2
    for path in books:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name}: outputs committed"


def execute(name: str, data, tmp_path, monkeypatch) -> pd.DataFrame:
    pytest.importorskip("nbclient", reason="the dev extra (nbclient, ipykernel) runs the notebooks")
    from nbclient import NotebookClient

    shutil.copy(NOTEBOOKS / name, tmp_path / name)
    nb = nbformat.read(tmp_path / name, as_version=4)
    monkeypatch.setenv("KK_SHARED_DATA", str(data))  # the kernel inherits the environment
    monkeypatch.delenv("MPLBACKEND")  # the kernel's own inline backend, as in Jupyter and on Kaggle
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 2, "the plots are shown inline"
    return pd.read_csv(tmp_path / "submission.csv")


def test_titanic_notebook_writes_a_valid_submission(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sub = execute("titanic.ipynb", shared_data, tmp_path, monkeypatch)
    test = pd.read_csv(shared_data / "titanic" / "test.csv")
    assert list(sub.columns) == ["PassengerId", "Survived"]
    assert sub["PassengerId"].tolist() == test["PassengerId"].tolist()
    assert set(sub["Survived"]) <= {0, 1} and 0.2 < sub["Survived"].mean() < 0.6


@pytest.mark.slow
def test_images_notebook_writes_a_valid_submission(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sub = execute("mnist_tiny.ipynb", shared_data, tmp_path, monkeypatch)
    test_files = sorted(p.name for p in (shared_data / "mnist-tiny" / "test").rglob("*.png"))
    assert list(sub.columns) == ["name", "label"]
    assert sorted(sub["name"]) == test_files
    assert set(sub["label"].astype(str)) == {"3", "7"}
