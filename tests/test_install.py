"""Outside the repository: ``kk init``, kagglekit's own specs and recipes shipped in the package,
and the built wheel installed into a fresh virtual environment."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kagglekit import workspace as workspace_module
from kagglekit.errors import SpecError
from kagglekit.pipeline import PACKAGED_RECIPES, list_recipes, load_recipe
from kagglekit.workspace import PACKAGED_COMPETITIONS, Workspace, init_workspace

from .conftest import REPO, write_spec


def test_init_makes_a_workspace_and_never_overwrites(tmp_path):
    with pytest.raises(SpecError, match="kk init"):
        Workspace.find(tmp_path)
    (tmp_path / ".gitignore").write_text("mine/\n")
    ws, created = init_workspace(tmp_path)
    assert Workspace.find(tmp_path).root == tmp_path.resolve() == ws.root
    assert {p.name for p in created} == {"competitions", "pipelines", "README.md"}  # not .gitignore: it was there
    assert (tmp_path / ".gitignore").read_text() == "mine/\n"
    assert init_workspace(tmp_path)[1] == []  # twice: nothing new, nothing touched
    r = subprocess.run([sys.executable, "-m", "kagglekit", "init", str(tmp_path / "fresh")], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "created" in r.stdout
    assert (tmp_path / "fresh" / ".gitignore").read_text().split() == ["runs/", "data/", "submissions/", ".kk_cache/"]


def test_packaged_specs_and_recipes_serve_any_workspace_and_its_own_override_them(tmp_path):
    ws, _ = init_workspace(tmp_path)
    assert {"playground-churn", "titanic", "dogs-vs-cats"} <= set(ws.competition_names())
    assert ws.own_competition_names() == []
    churn = ws.competition("playground-churn")
    assert churn.root == PACKAGED_COMPETITIONS / "playground-churn"
    assert ws.data_dir(churn) == ws.root / "data" / "playground-churn"  # data stays in the workspace
    write_spec(ws.root, "playground-churn", 'id = "id"\nmetric = "logloss"\n[[targets]]\nname = "y"\ntask = "binary"\n')
    assert ws.competition("playground-churn").metric == "logloss"  # the workspace's own wins
    assert {"tabular", "vision"} <= set(list_recipes(ws))
    assert load_recipe(ws, "tabular").path == PACKAGED_RECIPES / "tabular.toml"
    (ws.root / "pipelines" / "tabular.toml").write_text("[[stages]]\nname = 'only'\npipeline = 'baseline'\n")
    assert [s.name for s in load_recipe(ws, "tabular").stages] == ["only"]


def test_a_kaggle_notebook_needs_no_workspace(tmp_path, monkeypatch):
    """No competitions/ anywhere, /kaggle/working as the output: the packaged specs and recipes serve."""
    monkeypatch.setattr(workspace_module, "KAGGLE_WORKING", tmp_path)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.chdir(tmp_path)
    ws = Workspace.find()
    assert ws.out == tmp_path
    comp = ws.competition("playground-shapes")
    assert comp.builtin and ws.data_dir(comp) == tmp_path / "data" / "playground-shapes"
    assert [s.name for s in load_recipe(ws, "vision", comp).stages][-1] == "ensemble"


@pytest.mark.slow
def test_every_package_of_kagglekit_is_in_the_wheels_list():
    """pyproject lists its packages (competitions/ and pipelines/ are mapped into the package): a new
    subpackage left out of the list would be left out of the wheel."""
    import tomllib

    repo = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(repo).parts) for p in (repo / "kagglekit").rglob("__init__.py")}
    assert found <= listed and {"kagglekit.competitions", "kagglekit.recipes"} <= listed
    assert repo / "competitions" == PACKAGED_COMPETITIONS and repo / "pipelines" == PACKAGED_RECIPES


def test_wheel_in_a_fresh_venv_runs_from_an_empty_folder(tmp_path):
    """The built wheel, installed alone (its dependencies from this environment), in an empty folder:
    kk init, kk baseline playground-churn and kk run playground-churn."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(REPO)], check=True, capture_output=True)
    (wheel,) = dist.glob("kagglekit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "kagglekit/competitions/titanic/features.py" in names and "kagglekit/recipes/tabular.toml" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py, kk = venv / "bin" / "python", venv / "bin" / "kk"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KK_HOME")}
    where = subprocess.run([str(py), "-c", "import kagglekit; print(kagglekit.__file__)"], cwd=empty, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv))  # the wheel, not this checkout
    for args in (["init"], ["baseline", "playground-churn"], ["run", "playground-churn"]):
        r = subprocess.run([str(kk), *args], cwd=empty, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"kk {' '.join(args)}: {r.stdout}\n{r.stderr}"
    assert list((empty / "submissions" / "playground-churn").glob("*.csv"))
    assert "ensemble" in r.stdout


def test_dry_run_says_when_the_data_is_missing_and_generates_nothing(tmp_path):
    init_workspace(tmp_path)
    env = {**os.environ, "KK_HOME": str(tmp_path)}
    env.pop("KK_DATA_DIR", None)

    def kk(*args):
        return subprocess.run([sys.executable, "-m", "kagglekit", *args], capture_output=True, text=True, env=env)

    r = kk("run", "titanic", "--dry-run")
    assert r.returncode == 0 and "kk download titanic" in r.stdout and "0.0 min" not in r.stdout
    r = kk("run", "playground-churn", "--dry-run")
    assert r.returncode == 0 and "generated" in r.stdout
    assert not (tmp_path / "data").exists()  # a plan writes nothing
    r = kk("download", "playground-churn")
    assert r.returncode == 1 and "built into kagglekit" in r.stderr and "--force" not in r.stderr
