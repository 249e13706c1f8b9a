"""Writes the example notebooks (outputs stripped): ``python notebooks/make_notebooks.py``.

They are the notebooks a Kaggle user runs with the internet off: kagglekit imported, the
competition declared inline over ``/kaggle/input/<slug>``, the submission written to
``submission.csv`` in the working folder. Outside Kaggle they read the real files of
``../shared/data`` (or ``$KK_SHARED_DATA``). ``tests/test_notebooks.py`` executes both.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

FIND_DATA = '''import os
from pathlib import Path

import kagglekit as kk

# On Kaggle the competition's files are under /kaggle/input; elsewhere, the copy beside the repository.
DATA = Path("/kaggle/input/{slug}")
if not DATA.exists():
    DATA = Path(os.environ.get("KK_SHARED_DATA", "../../shared/data")) / "{slug}"
print(DATA, sorted(p.name for p in DATA.iterdir()))'''

INSTALL = """On Kaggle, with the internet off: attach a dataset made by `kk bundle wheels/` on a machine
with internet, then install from it: `!pip install --no-index --find-links /kaggle/input/kk-wheels kagglekit`."""

WRITE_SUBMISSION = '''import shutil

import pandas as pd

shutil.copy(kk.submission(comp), "submission.csv")  # the best run's validated CSV, where Kaggle expects it
pd.read_csv("submission.csv").head()'''


def titanic() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell("# Titanic with kagglekit: a baseline, an ensemble, a submission\n\n"
                          "Random forest, LightGBM and CatBoost on shared stratified folds, their out-of-fold "
                          "predictions blended, and a validated `submission.csv`, in a few seconds on a CPU.\n\n"
                          + INSTALL),
        new_code_cell(FIND_DATA.format(slug="titanic")),
        new_markdown_cell("Declare the competition inline (no TOML file needed in a notebook). "
                          "`tabular` takes the same keys as a spec's `[tabular]` table."),
        new_code_cell('comp = kk.define_competition(\n'
                      '    "titanic", id="PassengerId", metric="accuracy", targets={"Survived": "binary"},\n'
                      '    data_dir=DATA, files={"sample_submission": "gender_submission.csv"},\n'
                      '    cv={"kind": "stratified", "k": 5},  # survivors spread evenly over random folds\n'
                      '    tabular={"drop": ["Name", "Ticket"], "categorical": ["Pclass"],\n'
                      '             "split": {"Cabin": " "}},  # "C23 C25" -> Cabin_1, Cabin_2\n'
                      ')\n'
                      'result = kk.baseline(comp)\n'
                      'result'),
        new_markdown_cell("Each model's cross-validated accuracy, with the spread over the five folds:"),
        new_code_cell('import matplotlib.pyplot as plt\n\n'
                      'fig, ax = plt.subplots(figsize=(5, 2.5))\n'
                      'ax.barh([r.model for r in result.results], [r.cv for r in result.results],\n'
                      '        xerr=[r.cv_std for r in result.results], color="#3b75af")\n'
                      'ax.set_xlim(0.75, 0.9)\n'
                      'ax.set_xlabel("CV accuracy (5 folds, ± s.d.)")\n'
                      'plt.show()'),
        new_markdown_cell("What LightGBM relied on (every run folder keeps its own plots):"),
        new_code_cell('from IPython.display import Image\n\n'
                      'lgbm = next(r for r in result.results if r.model == "lgbm")\n'
                      'Image(lgbm.run.path / "importance.png", width=520)'),
        new_markdown_cell("Blend the out-of-fold predictions of every run (greedy, Caruana's method). "
                          "The ensemble is a run like the others; `kk.submission` takes the best."),
        new_code_cell('blend = kk.ensemble(comp)\n'
                      'print(f"ensemble CV {blend.cv:.4f}; best single model {blend.best_member_cv:.4f}")\n'
                      'blend.members'),
        new_code_cell(WRITE_SUBMISSION),
    ]
    return new_notebook(cells=cells, metadata=_metadata())


def mnist_tiny() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell("# Images with kagglekit: learning-rate finder, training, what went wrong, submission\n\n"
                          "fastai's MNIST tiny (handwritten 3s and 7s, 28 px) on a CPU in under a minute: a small "
                          "timm CNN from scratch on five folds. On a Kaggle GPU, give a pretrained `arch` and its "
                          "weight file (`weights=`) instead.\n\n" + INSTALL),
        new_code_cell(FIND_DATA.format(slug="mnist-tiny")),
        new_code_cell('comp = kk.define_competition(\n'
                      '    "mnist-tiny", id="name", metric="accuracy", targets={"label": "multiclass"},\n'
                      '    data_dir=DATA, kind="image",\n'
                      '    files={"train": "labels.csv", "test": False, "sample_submission": False},\n'
                      '    image={"layout": "folder", "train_dirs": ["train", "valid"], "test_dir": "test"},\n'
                      '    submission={"columns": ["name", "label"]},\n'
                      ')\n'
                      'config = kk.TrainConfig(arch="resnet10t", sizes=(28,), epochs=1, pretrained=False, flip=False)'),
        new_markdown_cell("The learning-rate finder: the loss against a rising learning rate, and fastai's "
                          "valley suggestion."),
        new_code_cell('from IPython.display import Image\n\n'
                      'suggestion, plot = kk.lr_find(comp, config)\n'
                      'Image(plot, width=480)'),
        new_code_cell('config.lr = suggestion\n'
                      'result = kk.train(comp, config)\n'
                      'result'),
        new_markdown_cell("Where the out-of-fold predictions go wrong: the confusion matrix, then the photos "
                          "the model got most confidently wrong."),
        new_code_cell('Image(result.run.path / "confusion_matrix.png", width=320)'),
        new_code_cell('Image(result.run.path / "top_losses.png", width=640)'),
        new_code_cell(WRITE_SUBMISSION),
    ]
    return new_notebook(cells=cells, metadata=_metadata())


def _metadata() -> dict:
    return {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}}


NOTEBOOKS = {"titanic.ipynb": titanic, "mnist_tiny.ipynb": mnist_tiny}

if __name__ == "__main__":
    for name, make in NOTEBOOKS.items():
        nbformat.write(make(), HERE / name)
        print("wrote", HERE / name)
