import os
import subprocess
import sys

import pytest

optuna = pytest.importorskip("optuna")

from kagglekit.errors import SpecError  # noqa: E402
from kagglekit.pipeline import baseline_from_recipe, load_recipe  # noqa: E402
from kagglekit.runs import RunStore  # noqa: E402
from kagglekit.tuning import tune  # noqa: E402

from .conftest import REPO, make_tabular  # noqa: E402


def test_tune_writes_recipe_plots_and_a_tuned_run(ws):
    make_tabular(ws.root, n=300)
    r = tune("synth", model="lgbm", trials=10, seed=0, workspace=ws)
    assert r.n_trials == 10 and r.n_complete + r.n_pruned == 10
    assert r.storage.startswith("sqlite:///") and "runs/synth/tune" in r.storage
    assert r.recipe is not None and r.recipe.parent == ws.root / "pipelines"
    models, params = baseline_from_recipe(ws, r.recipe.stem, ws.competition("synth"))
    assert models == ("lgbm",) and params["lgbm"]["num_leaves"] == r.best_params["num_leaves"]
    assert [s.pipeline for s in load_recipe(ws, r.recipe.stem).stages] == ["baseline", "ensemble"]
    assert any(p.name.endswith("-history.png") for p in r.plots)
    assert r.run_id and r.tuned_cv is not None and r.default_cv is not None
    store = RunStore(ws, "synth")
    assert store.get(r.run_id).labels() == ["lgbm (tuned)"]  # kk runs tells tuned from default
    assert sorted(x.labels()[0] for x in store.runs()) == ["lgbm", "lgbm (tuned)"]  # one default run, not two
    tune("synth", model="lgbm", trials=1, seed=2, workspace=ws)  # finalising again adds no default run
    assert sum(x.labels() == ["lgbm"] for x in store.runs()) == 1
    # re-running continues the same study
    again = tune("synth", model="lgbm", trials=3, seed=1, workspace=ws, finalize=False)
    assert again.n_trials == 14  # 10, 1 more above, then 3


def test_tune_refuses_unknown_model(ws):
    make_tabular(ws.root)
    with pytest.raises(SpecError, match="did you mean 'lgbm'"):
        tune("synth", model="lgbn", trials=1, workspace=ws)


def test_two_concurrent_workers_share_one_study(ws):
    """Two processes on one SQLite study: every trial is recorded once, none lost or run twice."""
    make_tabular(ws.root, n=300)
    db = ws.root / "shared.db"
    url = f"sqlite:///{db}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "kagglekit", "tune", "synth", "--trials", "6", "--storage", url, "--study", "shared",
           "--no-finalize", "--threads", "1"]
    procs = [subprocess.Popen(cmd, cwd=ws.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=url)
    trials = study.get_trials()
    assert len(trials) == 12
    assert sorted(t.number for t in trials) == list(range(12))
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == 12  # no trial was evaluated twice


def test_tune_an_image_model_on_a_subset_of_folds(ws):
    from kagglekit.runs import RunStore

    from .conftest import make_images

    make_images(ws.root)
    image = {"sizes": [16], "batch_size": 16, "pretrained": False, "folds": 1, "max_epochs": 2}
    r = tune("tiny", model="test_efficientnet", trials=3, seed=0, workspace=ws, image=image)
    assert r.n_trials == 3 and set(r.best_params) == {"lr", "epochs", "aug"}
    recipe = load_recipe(ws, r.recipe.stem, ws.competition("tiny"))
    stage = recipe.stages[0]
    assert stage.pipeline == "train" and stage.params["arch"] == "test_efficientnet"
    assert stage.params["lr"] == pytest.approx(r.best_params["lr"]) and stage.params["sizes"] == [16]
    assert RunStore(ws, "tiny").runs(complete_only=False) == []  # trial runs live apart from the run store
