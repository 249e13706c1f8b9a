"""Identical runs are not piled up: the same configuration on the same data and folds reuses the
finished run (baseline, ensemble, train, kk run's stages, submissions) unless ``new``."""

import os

import pytest

from kagglekit.blend import ensemble
from kagglekit.pipeline import run_pipeline
from kagglekit.runs import RunStore
from kagglekit.tabular.baseline import baseline

from .conftest import make_images, make_tabular


def _ids(ws, name="synth"):
    return sorted(r.id for r in RunStore(ws, name).runs())


def test_identical_baseline_and_ensemble_reuse_their_runs_and_files(ws):
    make_tabular(ws.root)
    first = baseline("synth", models=("lgbm",), workspace=ws)
    runs_before = _ids(ws)
    again = baseline("synth", models=("lgbm",), workspace=ws)
    assert again.results[0].reused and again.results[0].run.id == first.results[0].run.id
    assert again.results[0].cv == first.results[0].cv
    assert _ids(ws) == runs_before
    assert again.submission == first.submission  # the same file, no -2.csv
    assert sorted(os.listdir(ws.root / "submissions" / "synth")) == [first.submission.name]
    # a different configuration is a new run; so is --new
    other = baseline("synth", models=("lgbm",), seed=7, workspace=ws)
    assert not other.results[0].reused and other.results[0].run.id not in runs_before
    forced = baseline("synth", models=("lgbm",), workspace=ws, new=True)
    assert not forced.results[0].reused and forced.results[0].run.id not in runs_before
    members = [first.results[0].run.id, other.results[0].run.id]
    blend = ensemble("synth", members, method="mean", workspace=ws)
    count = len(_ids(ws))
    blend_again = ensemble("synth", members[::-1], method="mean", workspace=ws)  # order does not matter
    assert blend_again.reused and blend_again.run.id == blend.run.id and len(_ids(ws)) == count
    assert blend_again.cv == blend.cv and blend_again.submission == blend.submission
    assert not ensemble("synth", members, method="rank", workspace=ws).reused


def test_kk_run_reuses_identical_baseline_runs_made_outside_it(ws):
    make_tabular(ws.root)
    made = baseline("synth", workspace=ws, submit=False)  # rf, lgbm, linear, nn: four of the recipe's stages
    result = run_pipeline("synth", "tabular", workspace=ws)
    stages = [o for o in result.outcomes if o.stage.pipeline == "baseline"]  # rf, lgbm, catboost, linear, then nn
    assert [o.status for o in stages] == ["reused", "reused", "ran", "reused", "reused"]
    assert sorted(o.runs[0].id for o in stages if o.status == "reused") == sorted(r.run.id for r in made.results)
    assert "stage_key" not in stages[0].runs[0].config  # a run is never rewritten, not even to tag it
    again = run_pipeline("synth", "tabular", workspace=ws)
    assert [o.status for o in again.outcomes if o.stage.pipeline == "ensemble"] in (["skipped"], ["reused"])
    assert again.cv == result.cv


def test_identical_train_is_reused_and_speed_settings_do_not_count(ws):
    pytest.importorskip("timm")
    from kagglekit.vision import train

    make_images(ws.root, n=80, n_test=20, size=32)
    kw = dict(arch="test_convnext", pretrained=False, sizes=(32,), epochs=1, batch_size=16, folds=(0,),
              submit=False)
    first = train("tiny", workspace=ws, num_workers=0, **kw)
    again = train("tiny", workspace=ws, num_workers=1, cache="disk", **kw)  # speed settings, same run
    assert again.reused and again.run.id == first.run.id and again.cv == first.cv
    assert not train("tiny", workspace=ws, num_workers=0, new=True, **kw).reused
    assert not train("tiny", workspace=ws, num_workers=0, **{**kw, "epochs": 2}).reused
