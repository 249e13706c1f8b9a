import numpy as np
import pandas as pd
import pytest

from kagglekit.data import load_data
from kagglekit.errors import OptionError, SpecError
from kagglekit.submissions import read_submission, validate_submission
from kagglekit.tabular import TabularPreprocessor, add_datepart, plan_columns
from kagglekit.tabular.baseline import baseline, parse_overrides

from .conftest import make_tabular, write_spec


def test_add_datepart_hand_computed():
    df = pd.DataFrame({"saledate": ["2020-02-29", "2020-12-31", "2021-03-31", None, "2021-01-01 13:45:30"],
                       "x": range(5)})
    out = add_datepart(df, "saledate", time=True)
    assert "saledate" not in out and "x" in out and "saleYear" in out  # prefix drops trailing "date"
    assert "saledate" in df  # the input is not modified
    r = out.iloc[0]  # 29 February 2020, a Saturday
    assert (r.saleYear, r.saleMonth, r.saleDay, r.saleDayofweek, r.saleDayofyear) == (2020, 2, 29, 5, 60)
    assert r.saleIs_month_end == 1 and r.saleIs_month_start == 0 and r.saleIs_quarter_end == 0
    r = out.iloc[1]  # 31 December 2020: ISO week 53, year end
    assert r.saleWeek == 53 and r.saleIs_year_end == 1 and r.saleIs_quarter_end == 1 and r.saleDayofyear == 366
    r = out.iloc[2]  # 31 March 2021: quarter end, not year end
    assert r.saleIs_quarter_end == 1 and r.saleIs_year_end == 0 and r.saleIs_month_end == 1
    assert out.iloc[3].drop("x").isna().all()  # missing date: NaN parts, no crash
    r = out.iloc[4]  # 1 January 2021 belongs to ISO week 53 of 2020
    assert r.saleWeek == 53 and r.saleIs_year_start == 1 and (r.saleHour, r.saleMinute, r.saleSecond) == (13, 45, 30)
    assert r.saleElapsed == pd.Timestamp("2021-01-01 13:45:30").timestamp()
    assert out.iloc[0].saleElapsed == pd.Timestamp("2020-02-29").timestamp()


def test_add_datepart_prefix_and_no_time_parts():
    df = pd.DataFrame({"datetime": pd.to_datetime(["2011-01-01 05:00"]), "Date": ["2011-01-01"]})
    out = add_datepart(add_datepart(df, "datetime"), "Date")
    assert "datetimeYear" in out and "Year" in out and "datetimeHour" not in out


def test_preprocessor_fits_on_training_fold_only():
    train = pd.DataFrame({"c": ["a", "b", "a", None], "x": [1.0, np.nan, 3.0, 5.0]})
    valid = pd.DataFrame({"c": ["only_in_valid", "a", None, "b"], "x": [np.nan, 100.0, 200.0, 300.0]})
    plan = plan_columns(train, categorical=("c",))
    pre = TabularPreprocessor(plan=plan).fit(train)
    out = pre.transform(valid)
    # the validation-only category maps to the same code as missing: 0
    assert out["c"].tolist() == [0, 1, 0, 2]
    # missing values are filled with the training median, not the validation one
    assert out["x"].iloc[0] == 3.0 and out["x_na"].tolist() == [1, 0, 0, 0]
    assert pre.medians_["x"] == 3.0


def test_plan_drops_text_and_constant_columns():
    n = 200
    df = pd.DataFrame({"name": [f"person {i}" for i in range(n)], "const": 1, "num": np.arange(n),
                       "cat": ["a", "b"] * (n // 2)})
    plan = plan_columns(df, exclude={"num": "the id column"})
    assert plan.categorical == ("cat",) and plan.continuous == ()
    assert "text or id-like" in plan.dropped["name"] and plan.dropped["const"] == "a single value"
    assert plan.dropped["num"] == "the id column"


@pytest.mark.parametrize("task, metric, good", [("binary", "accuracy", 0.8), ("multiclass", "accuracy", 0.7),
                                               ("regression", "rmsle", None)])
def test_baseline_end_to_end(ws, task, metric, good):
    make_tabular(ws.root, task=task)
    result = baseline("synth", workspace=ws)
    assert [r.model for r in result.results] == ["rf", "lgbm", "linear", "nn"]  # the defaults, torch installed
    for r in result.results:
        assert len(r.fold_scores) == 4
        oof = r.run.oof()
        assert len(oof) == 400 and not oof.drop(columns="row_id").isna().any().any()
        assert (r.run.path / "importance.png").is_file() and (r.run.path / "importance.csv").is_file()
        if good is not None:
            assert r.cv > good
    data = load_data(ws.competition("synth"), ws)
    sub = read_submission(result.submission)
    assert validate_submission(data, sub) == []
    assert result.holdout is not None
    if task == "regression":
        naive = np.sqrt(np.mean((np.log1p(data.train.y) - np.log1p(data.train.y).mean()) ** 2))
        assert result.best.cv < 0.5 * naive
        assert result.best.run.config["target_transform"] == "log1p"


def test_baseline_is_reproducible(ws):
    make_tabular(ws.root)
    a = baseline("synth", models=("lgbm",), workspace=ws, submit=False)
    b = baseline("synth", models=("lgbm",), workspace=ws, submit=False, new=True)  # trained again, not reused
    pd.testing.assert_frame_equal(a.results[0].run.oof(), b.results[0].run.oof())
    assert a.results[0].run.path != b.results[0].run.path and not b.results[0].reused


def test_leakage_guard_drops_columns_absent_from_test(ws):
    folder = make_tabular(ws.root)
    train = pd.read_csv(ws.root / "data/synth/train.csv")
    train["leak"] = train["y"]  # present only in train, like bike sharing's casual/registered
    train.to_csv(ws.root / "data/synth/train.csv", index=False)
    result = baseline("synth", models=("lgbm",), workspace=ws, submit=False)
    assert "absent from the test file" in result.plan.dropped["leak"]
    assert result.best.cv < 0.99
    assert folder.exists()


def test_param_overrides_and_errors(ws):
    make_tabular(ws.root)
    assert parse_overrides(["lgbm.num_leaves=7", "rf.max_depth=none", "lgbm.learning_rate=0.1"]) == {
        "lgbm": {"num_leaves": 7, "learning_rate": 0.1}, "rf": {"max_depth": None}}
    with pytest.raises(OptionError, match="expected MODEL.NAME=VALUE"):
        parse_overrides(["num_leaves=7"])
    with pytest.raises(SpecError, match="did you mean 'num_leaves'"):
        baseline("synth", models=("lgbm",), params={"lgbm": {"num_leave": 3}}, workspace=ws)
    r = baseline("synth", models=("lgbm",), params={"lgbm": {"num_leaves": 4}}, workspace=ws, submit=False)
    assert r.results[0].run.config["params"]["num_leaves"] == 4


def test_time_budget_bounds_training(ws):
    make_tabular(ws.root, n=3000, task="regression")
    free = baseline("synth", models=("rf",), workspace=ws, submit=False,
                    params={"rf": {"n_estimators": 600}})
    bounded = baseline("synth", models=("rf",), workspace=ws, submit=False, time_budget=0.5,
                       params={"rf": {"n_estimators": 600}})
    # behaviour, not a timing: the bounded forest stopped growing, the free one grew every tree
    assert free.results[0].run.scores["best_iterations"] == [600] * 4  # 4 folds
    assert all(50 <= t < 600 for t in bounded.results[0].run.scores["best_iterations"])


def test_feature_hook_is_called_on_train_and_test(ws):
    folder = make_tabular(ws.root)
    (folder / "features.py").write_text(
        "def add_features(df):\n    df['x_sum'] = df['x1'] + df['x2'].fillna(0)\n    return df\n")
    r = baseline("synth", models=("lgbm",), workspace=ws, submit=False)
    assert "x_sum" in r.plan.used and r.results[0].run.config["feature_hook"]
    (folder / "features.py").write_text("def add_features(df):\n    return df.iloc[:10]\n")
    with pytest.raises(SpecError, match="must keep every row"):
        baseline("synth", models=("lgbm",), workspace=ws, submit=False)


def test_image_competition_is_refused(ws):
    write_spec(ws.root, "img", "id='id'\nmetric='accuracy'\nkind='image'\n[[targets]]\nname='y'\ntask='binary'\n"
                                "[image]\nlayout='folder'\ntrain_dirs=['train']\n")
    with pytest.raises(SpecError, match="kk train img"):
        baseline("img", workspace=ws)


def test_feature_hook_mistakes_are_caught(ws):
    """#14.2: a hook that reorders rows, reads the target back in, raises, or makes a feature from a
    column the test file lacks."""
    folder = make_tabular(ws.root)
    hook = folder / "features.py"
    hook.write_text("def add_features(df):\n    return df.sort_values('x1')\n")
    with pytest.raises(SpecError, match=r"features.py: add_features changed the order of the rows \(row 0 holds"):
        baseline("synth", models=("lgbm",), workspace=ws, submit=False)
    hook.write_text("def add_features(df):\n    return df.sort_values('x1').drop(columns='row_id')\n")
    with pytest.raises(SpecError, match="its index is not the input's"):
        baseline("synth", models=("lgbm",), workspace=ws, submit=False)
    hook.write_text("import pandas as pd\n\n\ndef add_features(df):\n"
                    f"    y = pd.read_csv({str(ws.root / 'data' / 'synth' / 'train.csv')!r})['y']\n"
                    "    df['hint'] = y\n    return df\n")
    with pytest.raises(SpecError, match="column 'hint' equals the target 'y' on every train row"):
        baseline("synth", models=("lgbm",), workspace=ws, submit=False)
    hook.write_text("def add_features(df):\n    x = 1\n    return df['no_such_column']\n")
    with pytest.raises(SpecError) as e:
        baseline("synth", models=("lgbm",), workspace=ws, submit=False)
    assert str(e.value).startswith(f"{hook}:3: KeyError: ") and "\n" not in str(e.value)
    # a feature all-missing in test (made from a train-only column) is dropped with a note
    hook.write_text("import numpy as np\n\n\ndef add_features(df):\n"
                    "    df['only_train'] = np.where(df['row_id'] < 400, df['x1'], np.nan)\n    return df\n")
    r = baseline("synth", models=("lgbm",), workspace=ws, submit=False)
    assert "only_train" not in r.plan.used and "missing in every test row" in r.plan.dropped["only_train"]


def test_a_perfect_cv_is_flagged(ws):
    make_tabular(ws.root)
    data = ws.root / "data" / "synth"
    for name in ("train.csv", "test.csv"):  # a column that is the target in train (and noise in test)
        df = pd.read_csv(data / name)
        df["status"] = df["y"] if "y" in df else np.random.default_rng(0).integers(0, 2, len(df))
        df.to_csv(data / name, index=False)
    r = baseline("synth", models=("lgbm",), workspace=ws, submit=False)
    assert r.best.cv == 1.0
    assert r.notes[0].startswith("suspicious: lgbm scored a perfect CV (accuracy 1.0000)")
    assert "kk check synth" in r.notes[0]


@pytest.mark.parametrize("where", ["../elsewhere.py", "/tmp/anything.py"])
def test_feature_hook_must_live_in_the_competition_folder(ws, where):
    folder = make_tabular(ws.root)
    spec = folder / "competition.toml"
    spec.write_text(spec.read_text().replace("[tabular]", f"[tabular]\nfeatures = {where!r}"))
    (folder.parent / "elsewhere.py").write_text("raise SystemExit('ran')\n")
    with pytest.raises(SpecError, match="outside the competition's folder"):
        baseline("synth", models=("lgbm",), workspace=ws, submit=False)


def test_a_run_records_the_parameters_its_model_really_used(ws):
    make_tabular(ws.root, task="regression")
    r = baseline("synth", models=("rf",), workspace=ws, submit=False)
    assert r.results[0].run.config["params"]["max_features"] == 0.5  # the regression forest's, not "sqrt"


def test_bags_average_the_fits_of_consecutive_seeds(ws):
    make_tabular(ws.root, task="binary")
    one = [baseline("synth", models=("lgbm",), seed=s, submit=False, workspace=ws).results[0].run for s in (7, 8)]
    bagged = baseline("synth", models=("lgbm",), seed=7, bags=2, submit=False, workspace=ws).results[0].run
    assert bagged.config["bags"] == 2 and "bags" not in one[0].config  # identities of unbagged runs unchanged
    expected = (one[0].oof()["y:1"] + one[1].oof()["y:1"]) / 2
    assert np.allclose(bagged.oof()["y:1"], expected)
    assert np.allclose(bagged.test()["y:1"], (one[0].test()["y:1"] + one[1].test()["y:1"]) / 2)
    assert not np.allclose(one[0].oof()["y:1"], one[1].oof()["y:1"])  # the seeds did differ


def test_repeated_kfold_averages_the_oof_of_each_split(ws):
    from dataclasses import replace

    from kagglekit.folds import get_folds

    make_tabular(ws.root, task="binary")
    comp = ws.competition("synth")
    other = replace(comp, cv=replace(comp.cv, seed=comp.cv.seed + 1))  # the second split of repeats = 2
    one = [baseline(c, models=("lgbm",), seed=s, submit=False, workspace=ws).results[0].run
           for c, s in ((comp, 7), (other, 8))]
    rep = baseline("synth", models=("lgbm",), seed=7, repeats=2, submit=False, workspace=ws).results[0]
    run = rep.run
    assert run.config["repeats"] == 2 and "repeats" not in one[0].config  # identities of plain runs unchanged
    assert np.allclose(run.oof()["y:1"], (one[0].oof()["y:1"] + one[1].oof()["y:1"]) / 2)
    assert np.allclose(run.test()["y:1"], (one[0].test()["y:1"] + one[1].test()["y:1"]) / 2)
    assert np.allclose(run.scores["repeat_cv"], [one[0].scores["cv"], one[1].scores["cv"]])
    data = load_data(comp, ws)
    assert run.meta["fold_id"] == one[0].meta["fold_id"] == get_folds(data, ws).id  # paired with every run
    with_repeats = replace(comp, cv=replace(comp.cv, repeats=3))
    assert get_folds(load_data(with_repeats, ws), ws).id == run.meta["fold_id"]  # [cv] repeats keeps the folds
    assert len(rep.fold_scores) == comp.cv.k
    with pytest.raises(OptionError, match="--repeats"):
        baseline("synth", models=("lgbm",), repeats=0, submit=False, workspace=ws)


def test_repeats_in_the_spec_keep_the_shared_folds_and_refuse_a_time_ordered_cv(tmp_path):
    from kagglekit.spec import parse_spec

    base = {"slug": "x", "id": "id", "metric": "rmse", "targets": [{"name": "y", "task": "regression"}]}
    spec = parse_spec({**base, "cv": {"kind": "kfold", "repeats": 3}}, tmp_path / "competition.toml")
    assert spec.cv.repeats == 3
    with pytest.raises(SpecError, match="repeats") as e:
        parse_spec({**base, "cv": {"kind": "time-ordered", "time": "t", "repeats": 2}}, tmp_path / "competition.toml")
    assert "competition.toml" in str(e.value) and "one split" in str(e.value)
    with pytest.raises(SpecError, match="from 1 to 20"):
        parse_spec({**base, "cv": {"repeats": 0}}, tmp_path / "competition.toml")
