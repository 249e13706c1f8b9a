
import pandas as pd
import pytest

from kagglekit.data import load_data
from kagglekit.errors import SpecError
from kagglekit.pipeline import load_recipe, run_pipeline
from kagglekit.runs import RunStore
from kagglekit.submissions import read_submission, validate_submission

from .conftest import make_images, make_tabular


@pytest.fixture
def recipes(ws):
    """A workspace with no pipelines/ of its own: kagglekit's packaged recipes are used."""
    (ws.root / "pipelines").mkdir()
    return ws


def test_shipped_recipes_parse(recipes):
    tab = load_recipe(recipes, "tabular")
    assert [s.name for s in tab.stages] == ["rf", "lgbm", "catboost", "linear", "nn", "ensemble"]
    vis = load_recipe(recipes, "vision")
    assert [s.name for s in vis.stages] == ["small", "large", "ensemble"]
    assert vis.stages[1].params["sizes"] == [128, 224]


def test_recipe_errors(recipes):
    with pytest.raises(SpecError, match="did you mean 'tabular'"):
        load_recipe(recipes, "tabulr")
    (recipes.root / "pipelines" / "bad.toml").write_text(
        "[[stages]]\nname='x'\npipeline='baseline'\nmodel=['rf']\n")
    with pytest.raises(SpecError, match="did you mean 'models'"):
        load_recipe(recipes, "bad")
    (recipes.root / "pipelines" / "bad.toml").write_text("[[stages]]\nname='x'\npipeline='basline'\n")
    with pytest.raises(SpecError, match="did you mean 'baseline'"):
        load_recipe(recipes, "bad")


def test_kk_run_tabular_end_to_end_and_skips_finished_stages(recipes):
    ws = recipes
    make_tabular(ws.root)
    plan = run_pipeline("synth", "tabular", workspace=ws, dry_run=True)
    assert [o.status for o in plan.outcomes] == ["planned"] * 6 and RunStore(ws, "synth").runs() == []
    first = run_pipeline("synth", "tabular", workspace=ws)
    assert [o.status for o in first.outcomes] == ["ran"] * 6
    data = load_data(ws.competition("synth"), ws)
    assert validate_submission(data, read_submission(first.submission)) == []
    members = [o.runs[0].cv for o in first.outcomes[:5]]  # rf, lgbm, catboost, linear, nn
    assert first.cv >= max(members)
    again = run_pipeline("synth", "tabular", workspace=ws)
    assert [o.status for o in again.outcomes] == ["skipped"] * 6
    assert again.submission == first.submission and len(RunStore(ws, "synth").runs()) == 6
    # changed data: the stages run again
    p = ws.root / "data" / "synth" / "train.csv"
    pd.read_csv(p).iloc[:-5].to_csv(p, index=False)
    third = run_pipeline("synth", "tabular", workspace=ws)
    assert [o.status for o in third.outcomes] == ["ran"] * 6


def test_kk_run_leaves_out_an_uninstalled_family_and_says_how_to_install_it(recipes, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "catboost", None)  # as if the extra were not installed
    make_tabular(recipes.root)
    result = run_pipeline("synth", "tabular", workspace=recipes)
    assert [o.status for o in result.outcomes] == ["ran", "ran", "absent", "ran", "ran", "ran"]
    assert "pip install 'kagglekit[catboost]'" in result.outcomes[2].note
    assert result.submission is not None and result.outcomes[5].runs


def test_spec_overrides_stage_parameters(recipes):
    ws = recipes
    folder = make_tabular(ws.root)
    with open(folder / "competition.toml", "a") as f:
        f.write("\n[stages.lgbm]\nparams = { lgbm = { num_leaves = 5 } }\n")
    recipe = load_recipe(ws, "tabular", ws.competition("synth"))
    assert recipe.stages[1].params["params"] == {"lgbm": {"num_leaves": 5}}
    with open(folder / "competition.toml", "a") as f:
        f.write("\n[stages.lgbn]\nseed = 1\n")
    with pytest.raises(SpecError, match="did you mean 'lgbm'"):
        load_recipe(ws, "tabular", ws.competition("synth"))


def test_kk_run_image_ladder(recipes):
    ws = recipes
    folder = make_images(ws.root)
    with open(folder / "competition.toml", "a") as f:
        f.write("""
[stages.small]
arch = "test_efficientnet"
sizes = [16]
epochs = 1
pretrained = false
[stages.large]
arch = "test_efficientnet"
sizes = [16, 24]
epochs = 2
accum = 2
tta = 1
pretrained = false
""")
    result = run_pipeline("tiny", "vision", workspace=ws)
    assert [o.status for o in result.outcomes] == ["ran"] * 3
    data = load_data(ws.competition("tiny"), ws)
    assert validate_submission(data, read_submission(result.submission)) == []
    assert result.holdout is not None
    assert [o.status for o in run_pipeline("tiny", "vision", workspace=ws).outcomes] == ["skipped"] * 3


def test_a_baseline_stage_takes_bags_and_repeats(recipes):
    make_tabular(recipes.root)
    (recipes.root / "pipelines" / "steady.toml").write_text(
        "[[stages]]\nname='lgbm'\npipeline='baseline'\nmodels=['lgbm']\nbags=2\nrepeats=2\n")
    (recipes.root / "pipelines" / "plain.toml").write_text(
        "[[stages]]\nname='lgbm'\npipeline='baseline'\nmodels=['lgbm']\n")
    est = {r: run_pipeline("synth", r, workspace=recipes, dry_run=True).outcomes[0].estimate_s
           for r in ("plain", "steady")}
    assert est["steady"] - 2 == pytest.approx(4 * (est["plain"] - 2))  # 4 fits where the plain stage makes 1
    out = run_pipeline("synth", "steady", workspace=recipes)
    run = out.outcomes[0].runs[0]
    assert (run.config["bags"], run.config["repeats"]) == (2, 2) and len(run.scores["repeat_cv"]) == 2
