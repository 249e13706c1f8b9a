"""kk check: adversarial validation finds a planted drift, leak checks find planted leaks, and
train/test drawn from one population are called alike."""

import json

import numpy as np
import pandas as pd
import pytest

from kagglekit.check import check, single_feature_auc

from .conftest import write_spec


def _comp(ws_path, name, train: pd.DataFrame, test: pd.DataFrame, *, task="regression", metric="rmse",
          tabular="", cv="kind = 'kfold'\nk = 4"):
    data = ws_path / "data" / name
    data.mkdir(parents=True)
    train.to_csv(data / "train.csv", index=False)
    test.drop(columns="y").to_csv(data / "test.csv", index=False)
    test[["id"]].assign(y=0).to_csv(data / "sample_submission.csv", index=False)
    write_spec(ws_path, name, f"""
        id = "id"
        metric = "{metric}"
        [[targets]]
        name = "y"
        task = "{task}"
        [cv]
        {cv}
        [tabular]
        {tabular}
        """)


def _frame(rng, n, start=0):
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"id": np.arange(start, start + n), "x1": x1, "x2": x2,
                         "colour": rng.choice(["red", "green", "blue"], n), "y": 2 * x1 - x2 + rng.normal(0, .1, n)})


def test_train_and_test_from_one_population_look_alike(ws_path, ws):
    rng = np.random.default_rng(0)
    df = _frame(rng, 1000)
    _comp(ws_path, "alike", df.iloc[:800], df.iloc[800:])
    r = check("alike", workspace=ws)
    assert r.auc < 0.6
    assert r.drop == [] and r.findings == []
    assert "look alike" in r.verdict[0] and r.cv == {"kind": "kfold"}
    assert all(f.auc < 0.7 for f in r.features)


def test_the_train_vs_test_model_can_take_a_sample_and_still_sees_a_shift(ws_path, ws):
    rng = np.random.default_rng(0)
    train, test = _frame(rng, 3000), _frame(rng, 1000, start=3000)
    test["x1"] += 1.5  # a shifted test set
    _comp(ws_path, "shifted", train, test)
    full, sampled = check("shifted", workspace=ws, write=False), check("shifted", workspace=ws, write=False,
                                                                       max_rows=800)
    assert (full.n_train, full.n_test) == (3000, 1000) and (sampled.n_train, sampled.n_test) == (600, 200)
    assert full.auc > 0.75 and sampled.auc > 0.75 and sampled.features[0].name == "x1"


def test_planted_day_of_month_drift_is_named_and_its_date_parts_dropped(ws_path, ws):
    # bike sharing's split: every month's days 1-19 train, 20-end test, hours in each day
    rng = np.random.default_rng(1)
    when = pd.date_range("2011-01-01", "2012-12-31 23:00", freq="6h")
    df = _frame(rng, len(when)).assign(when=when.strftime("%Y-%m-%d %H:%M:%S"))
    df["y"] = np.exp(1 + 0.3 * df["x1"] + 0.2 * (when.hour.to_numpy() > 8))
    is_test = when.day.to_numpy() >= 20
    _comp(ws_path, "drift", df[~is_test], df[is_test], metric="rmsle",
          tabular='date_columns = ["when"]\ndate_time = true')
    r = check("drift", workspace=ws)
    assert r.auc > 0.95
    top = r.features[0]
    assert top.name == "whenDay" and top.auc > 0.95 and top.out_of_range == 1.0
    assert top.train_range == "1 to 19" and top.test_range == "20 to 31"
    assert "whenDay" in r.drop and "whenDayofyear" in r.drop and "whenElapsed" in r.drop
    assert "x1" not in r.drop and "whenHour" not in r.drop
    assert r.auc_after_drop is not None
    assert all(f.out_of_range < 0.5 for f in r.features if f.name not in r.drop)
    assert any("whenDay" in v and "[tabular] drop" in v for v in r.verdict)
    # the report is written where a person can use it: rows ranked by test-likeness
    ranked = pd.read_csv(r.folder / "test_likeness.csv")
    assert len(ranked) == (~is_test).sum() and ranked["p_test"].is_monotonic_decreasing
    late_days = pd.to_datetime(ranked["id"].map(dict(zip(df["id"], df["when"], strict=True)))).dt.day
    assert late_days.head(100).mean() > late_days.mean()  # the most test-like train rows are the latest days
    assert json.loads((r.folder / "report.json").read_text())["auc"] == pytest.approx(r.auc)
    assert (r.folder / "separation.png").stat().st_size > 1000


def test_following_the_advice_in_the_spec_leaves_nothing_out_of_range(ws_path, ws):
    rng = np.random.default_rng(2)
    when = pd.date_range("2011-01-01", "2011-12-31 23:00", freq="4h")
    df = _frame(rng, len(when)).assign(when=when.strftime("%Y-%m-%d %H:%M:%S"))
    is_test = when.day.to_numpy() >= 20
    _comp(ws_path, "advised", df[~is_test], df[is_test],
          tabular='date_columns = ["when"]\ndrop = ["whenDay", "whenDayofyear", "whenElapsed"]')
    r = check("advised", workspace=ws)
    assert r.drop == [] and all(f.out_of_range < 0.05 for f in r.features)
    assert "whenDay" not in [f.name for f in r.features]


def test_planted_leaks_are_found(ws_path, ws):
    rng = np.random.default_rng(3)
    df = _frame(rng, 600)
    df["part_a"] = rng.integers(0, 50, 600).astype(float)
    df["y"] = df["part_a"] + rng.integers(0, 50, 600)
    df["part_b"] = df["y"] - df["part_a"]  # part_a + part_b = y, as bike's casual + registered = count
    df["flag"] = np.where(np.arange(600) < 480, rng.integers(0, 2, 600), 1)  # constant in test
    train, test = df.iloc[:480].sort_values("y").copy(), df.iloc[480:].copy()  # train file sorted by target
    train["id"] = np.arange(480)  # ... and numbered in that order
    copied = train[train["flag"] == 1].iloc[:5]  # 5 test rows copy train rows
    cols = ["x1", "x2", "colour", "part_a", "part_b"]
    test.loc[test.index[:5], cols] = copied[cols].to_numpy()
    _comp(ws_path, "leaky", train, test)
    text = "\n".join(check("leaky", workspace=ws).findings)
    assert "part_a + part_b = y" in text and "drop part_a, part_b" in text
    assert "row order predicts 'y'" in text and "the id column 'id' predicts 'y'" in text
    assert "5 test rows" in text and "equal a train row" in text
    assert "'flag' is constant in test" in text


def test_test_rows_that_copy_train_rows_with_disagreeing_targets_are_not_called_known(ws_path, ws):
    from kagglekit.check.leaks import leak_findings
    from kagglekit.data import load_data
    from kagglekit.tabular.features import build_features

    rng = np.random.default_rng(3)
    n = 400  # two coarse features: many rows share values, and their targets disagree
    df = pd.DataFrame({"id": np.arange(n), "a": rng.integers(0, 3, n), "b": rng.integers(0, 2, n),
                       "y": rng.integers(0, 2, n)})
    df.loc[(df.a == 0) & (df.b == 0), "y"] = 1  # one combination has a single target in train
    _comp(ws_path, "coarse", df.iloc[:300], df.iloc[300:], task="binary", metric="accuracy")
    data = load_data(ws.competition("coarse"), ws)
    (text,) = [f for f in leak_findings(data, build_features(data)) if "equal a train row" in f]
    known = int(((df.a == 0) & (df.b == 0)).iloc[300:].sum())
    assert "100 test rows" in text and f"for {known} of them every such train row has the same y" in text
    assert f"for the other {100 - known} the train copies disagree" in text


def test_cv_suggestion_follows_how_the_test_was_drawn(ws_path, ws):
    rng = np.random.default_rng(4)
    df = _frame(rng, 600).assign(when=pd.date_range("2020-01-01", periods=600, freq="D").strftime("%Y-%m-%d"))
    _comp(ws_path, "later", df.iloc[:500], df.iloc[500:], tabular='date_columns = ["when"]')
    r = check("later", workspace=ws)
    assert r.cv == {"kind": "time-ordered", "time": "when"} and "follows the last train one" in r.cv_reason
    assert any('use [cv] kind = "time-ordered", time = "when"' in v for v in r.verdict)

    df = _frame(rng, 1200).assign(store=np.repeat([f"s{i}" for i in range(60)], 20))
    _comp(ws_path, "stores", df.iloc[:1000], df.iloc[1000:], task="regression")  # test stores are new
    r = check("stores", workspace=ws)
    assert r.cv == {"kind": "group", "group": "store"} and "'store'" in r.cv_reason


def test_single_feature_auc_ignores_noise_and_sees_separation():
    rng = np.random.default_rng(5)
    noise = single_feature_auc(pd.Series(rng.normal(size=2000)), pd.Series(rng.normal(size=500)))
    ids = single_feature_auc(pd.Series(np.arange(2000.0)), pd.Series(rng.permutation(2000).astype(float)[:500]))
    shifted = single_feature_auc(pd.Series(rng.normal(size=2000)), pd.Series(rng.normal(1.5, 1, size=500)))
    assert noise < 0.56 and ids < 0.56 and shifted > 0.8


def test_kk_new_writes_the_checks_advice_into_the_spec(ws_path, ws):
    import tomllib

    from kagglekit.scaffold import new_competition
    from kagglekit.spec import load_spec

    rng = np.random.default_rng(6)
    when = pd.date_range("2011-01-01", "2011-12-31 23:00", freq="4h")
    df = _frame(rng, len(when)).assign(when=when.strftime("%Y-%m-%d %H:%M:%S"))
    df["y"] = np.exp(1 + 0.3 * df["x1"])
    is_test = when.day.to_numpy() >= 20
    folder = ws_path / "data" / "rentals"
    folder.mkdir(parents=True)
    df[~is_test].to_csv(folder / "train.csv", index=False)
    df[is_test].drop(columns="y").to_csv(folder / "test.csv", index=False)
    df[is_test][["id"]].assign(y=0).to_csv(folder / "sample_submission.csv", index=False)
    path, g = new_competition("rentals", ws)
    text = path.read_text()
    spec = tomllib.loads(text)
    assert "whenDay" in spec["tabular"]["drop"] and "whenElapsed" in spec["tabular"]["drop"]
    assert "# kk check: train and test differ" in text and "whenDay" in text.split("[cv]")[0]
    assert load_spec(path).tabular.drop == tuple(spec["tabular"]["drop"])
    assert any("kk check" in n for n in g.notes)


def test_fold_gap_tells_luck_from_a_real_difference():
    from kagglekit.runs import fold_gap

    steady = fold_gap("accuracy", [0.80, 0.82, 0.81, 0.83], [0.78, 0.80, 0.79, 0.81])
    assert steady.diff == pytest.approx(0.02) and not steady.indistinguishable
    noisy = fold_gap("accuracy", [0.80, 0.90, 0.70, 0.85], [0.85, 0.80, 0.72, 0.80])
    assert noisy.indistinguishable
    lower_better = fold_gap("rmse", [1.0, 1.1, 0.9], [1.2, 1.3, 1.1])  # the other run is worse
    assert lower_better.diff == pytest.approx(0.2) and not lower_better.indistinguishable
    assert fold_gap("rmse", [1.0, 1.1], [1.0]) is None  # different folds: no paired comparison


def test_baseline_submits_the_greedy_ensemble_of_its_models_and_notes_the_folds_noise(ws_path, ws, monkeypatch,
                                                                                       capsys):
    from kagglekit.runs import RunStore
    from kagglekit.tabular.baseline import baseline

    from .conftest import make_tabular

    make_tabular(ws_path, "noisy", n=300, n_test=100)
    r = baseline("noisy", models=("rf", "lgbm"), workspace=ws)
    assert len(r.notes) == 1 and ("indistinguishable" in r.notes[0] or "beyond the folds' noise" in r.notes[0])
    sub = pd.read_csv(r.submission)
    assert r.chosen.startswith("greedy ensemble: ")
    blend = RunStore(ws, "noisy").get(r.submission.stem)
    assert blend.config["method"] == "greedy"
    runs = {m.run.id: m.run.test()["y:1"].to_numpy() for m in r.results}
    weights = blend.config["weights"]  # the submission is the weighted mean of the members' test predictions
    assert sorted(blend.config["members"]) == sorted(runs) and sum(weights) == pytest.approx(1.0)
    expected = sum(w * runs[rid] for rid, w in zip(blend.config["members"], weights, strict=True))
    assert np.allclose(blend.test()["y:1"], expected, atol=1e-6)
    assert [p.stem for p in r.submission.parent.glob("*.csv")] == [r.submission.stem]  # one file, not three
    one = baseline("noisy", models=("lgbm",), workspace=ws, new=True)
    assert one.chosen == "lgbm" and one.submission.stem == one.results[0].run.id  # one model: itself
    assert len(sub) == 100
    # kk runs: every CV with its standard error, and each run's gap to the best run
    from kagglekit.cli import main

    monkeypatch.chdir(ws_path)
    capsys.readouterr()
    main(["runs", "noisy", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert all(row["cv_se"] > 0 for row in rows) and rows[0]["vs_best"] is None
    assert all(row["vs_best"]["indistinguishable"] in (True, False) for row in rows[1:])
    main(["runs", "noisy"])
    out = capsys.readouterr().out
    assert "± s.e." in out and ("≈" in out) == any(row["vs_best"]["indistinguishable"] for row in rows[1:])


def test_indistinguishable_models_are_named_and_distinct_ones_are_not():
    from kagglekit.tabular.baseline import BaselineResult, ModelResult, indistinguishable
    from kagglekit.tabular.preprocess import ColumnPlan

    def model(name, folds):
        return ModelResult(name, None, float(np.mean(folds)), float(np.std(folds)), folds, 0.0, {})

    best = model("lgbm", [0.86, 0.85, 0.87, 0.86, 0.85])
    close = model("rf", [0.85, 0.86, 0.85, 0.87, 0.84])
    far = model("linear", [0.80, 0.79, 0.81, 0.80, 0.80])
    res = BaselineResult("c", "accuracy", [best, close, far], ColumnPlan((), ()))
    assert [r.model for r in indistinguishable(res)] == ["rf"]
    assert "lgbm and rf are indistinguishable" in res.notes[0] and "lgbm beats linear beyond" in res.notes[1]


def test_runs_plot_shows_cv_against_public_and_private_lb(ws_path, ws, monkeypatch, capsys):
    from kagglekit.cli import main
    from kagglekit.data import load_data

    from .conftest import make_tabular, save_run

    make_tabular(ws_path, "lbcomp", n=200, n_test=50)
    data = load_data(ws.competition("lbcomp"), ws)
    rng = np.random.default_rng(0)
    monkeypatch.chdir(ws_path)
    with pytest.raises(SystemExit):
        main(["runs", "lbcomp", "--plot"])
    assert "error: no run of lbcomp has leaderboard scores yet" in capsys.readouterr().err
    y = data.train["y"].to_numpy()
    for i, noise in enumerate([0.1, 0.3, 0.5, 0.7]):  # worse runs score worse on the board too
        p = np.clip(y + rng.normal(0, noise, len(y)), 0, 1)
        run = save_run(ws, data, {"y": np.c_[1 - p, p]}, {"y": np.full((50, 2), 0.5)}, label=f"m{i}")
        run.update_scores(lb={"public": 0.9 - noise / 2, "private": 0.88 - noise / 2 + 0.01 * i})
    capsys.readouterr()
    main(["runs", "lbcomp", "--plot"])
    out = capsys.readouterr().out
    assert "CV vs public LB: r = " in out and "over 4 runs" in out
    r_public = float(out.split("CV vs public LB: r = ")[1].split()[0])
    assert r_public > 0.9
    png = next((ws_path / "runs" / "lbcomp" / "plots").glob("cv-vs-lb-*.png"))
    assert png.stat().st_size > 5000


def test_image_check_finds_copies_and_a_shifted_test_set_on_embeddings(ws_path, ws):
    import shutil

    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    from PIL import Image

    from .conftest import make_images

    make_images(ws_path, "pics", n=60, n_test=40, size=32)
    images = ws_path / "data" / "pics" / "images"
    test_ids = pd.read_csv(ws_path / "data" / "pics" / "test.csv")["image_id"].tolist()
    train_ids = pd.read_csv(ws_path / "data" / "pics" / "train.csv")["image_id"].tolist()
    for i in test_ids:  # the test photos were taken in dimmer light
        im = np.asarray(Image.open(images / i).convert("RGB")).astype(float) * 0.4
        Image.fromarray(im.astype(np.uint8)).save(images / i)
    shutil.copyfile(images / train_ids[0], images / test_ids[0])  # and one is a copy of a training image
    weights = ws_path / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    torch.save(timm.create_model("resnet10t", num_classes=10).state_dict(), weights / "resnet10t.pth")

    r = check("pics", workspace=ws, arch="resnet10t", weights=str(weights))
    assert any("1 test images are byte-identical" in f for f in r.findings)
    assert r.auc > 0.9 and "differ" in r.verdict[0]
    assert r.extra["embeddings"].endswith("resnet10t.pth")
    assert len(pd.read_csv(r.folder / "test_likeness.csv")) == 60

    alike = check("pics", workspace=ws, arch="resnet10t", weights=None)  # no weights: copies only
    assert "no pretrained weights at hand" in alike.verdict[0] and alike.findings == r.findings
