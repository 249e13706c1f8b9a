"""Compound columns (``[tabular] split``), True/False text columns and travel groups, as Spaceship
Titanic has them: synthetic tables in tmp_path, then the real files from ../shared/data."""

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kagglekit.data import load_data
from kagglekit.errors import DataError, SpecError
from kagglekit.folds import get_folds
from kagglekit.scaffold import new_competition
from kagglekit.spec import load_spec
from kagglekit.tabular.baseline import baseline
from kagglekit.tabular.features import build_features

from .conftest import write_spec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _voyage(root: Path, n_groups: int = 300, seed: int = 0) -> None:
    """Passengers travel in groups (id ``gggg_pp``) that share a cabin ``deck/num/side``; the target
    (``True``/``False`` text) depends on the deck, the side and the group's size. Test groups are
    disjoint from train's, as Kaggle split the real competition."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        size = int(rng.choice([1, 1, 2, 3, 4]))
        deck, side, num = rng.choice(list("ABCDEFG")), rng.choice(["P", "S"]), int(rng.integers(0, 300))
        for p in range(size):
            p_true = 0.2 + 0.5 * (deck in "BC") + 0.2 * (side == "S") + 0.05 * size
            rows.append({"PassengerId": f"{g + 1:04d}_{p + 1:02d}",
                         "CryoSleep": rng.choice(["True", "False", None], p=[0.3, 0.65, 0.05]),
                         "Cabin": f"{deck}/{num}/{side}" if rng.random() > 0.02 else None,
                         "Age": float(rng.integers(1, 80)),
                         "Transported": bool(rng.random() < min(p_true, 0.95))})
    df = pd.DataFrame(rows)
    test = df.PassengerId.str[:4].astype(int) > int(n_groups * 0.75)
    data = root / "data" / "voyage"
    data.mkdir(parents=True)
    df[~test].to_csv(data / "train.csv", index=False)
    df[test].drop(columns="Transported").to_csv(data / "test.csv", index=False)
    df[test][["PassengerId"]].assign(Transported=False).to_csv(data / "sample_submission.csv", index=False)


def test_kk_new_cuts_compound_columns_and_keeps_travel_groups_whole(ws):
    _voyage(ws.root)
    path, g = new_competition("voyage", ws)
    spec = tomllib.loads(path.read_text())
    assert spec["tabular"]["split"] == {"PassengerId": "_", "Cabin": "/"}
    assert spec["cv"]["kind"] == "group" and spec["cv"]["group"] == "PassengerId_1"  # coarser than a cabin
    assert g.targets == [("Transported", "binary")] and g.metric == "accuracy"

    comp = load_spec(path)
    data = load_data(comp, ws)
    assert data.train["Cabin_1"].dropna().isin(list("ABCDEFG")).all()
    assert pd.api.types.is_numeric_dtype(data.train["Cabin_2"])  # numbers become numbers
    assert data.train.loc[data.train.Cabin.isna(), ["Cabin_1", "Cabin_2", "Cabin_3"]].isna().all().all()
    folds = get_folds(data, ws)
    group_folds = pd.Series(folds.fold).groupby(data.train["PassengerId_1"].to_numpy()).nunique()
    assert (group_folds == 1).all()  # no travel group straddles two folds

    feats = build_features(data)
    assert "PassengerId_1_count" in feats.plan.used  # the group's size
    sizes = data.train.PassengerId.str[:4].map(data.train.PassengerId.str[:4].value_counts())
    assert (feats.train["PassengerId_1_count"].to_numpy() == sizes.to_numpy()).all()  # test has other groups
    assert "cut into Cabin_1, Cabin_2, Cabin_3" in feats.plan.dropped["Cabin"]

    result = baseline("voyage", models=("lgbm",), workspace=ws)
    sub = pd.read_csv(result.submission)
    assert set(sub.Transported.astype(str)) <= {"True", "False"}  # written as the competition writes it
    assert result.results[0].cv > 0.6


def test_split_errors_name_the_file_the_key_and_the_fix(ws):
    _voyage(ws.root)
    base = """
        id = "PassengerId"
        metric = "accuracy"
        [files]
        train = "train.csv"
        test = "test.csv"
        sample_submission = "sample_submission.csv"
        [[targets]]
        name = "Transported"
        task = "binary"
        [tabular]
    """
    write_spec(ws.root, "voyage", base + 'split = { Cabin = "" }')
    with pytest.raises(SpecError, match=r"competition.toml: key 'tabular.split': expected a separator string for "
                                        r"column 'Cabin'"):
        load_spec(ws.competitions_dir / "voyage" / "competition.toml")
    write_spec(ws.root, "voyage", base + 'split = { Cabn = "/" }')
    with pytest.raises(DataError, match=r"train.csv.*Cabn.*split.*Cabin"):
        load_data(load_spec(ws.competitions_dir / "voyage" / "competition.toml"), ws)


@pytest.mark.slow
def test_spaceship_titanic_through_kk_new_unedited(ws):
    if not (SHARED / "spaceship-titanic").is_dir():
        pytest.skip(f"real data not found: {SHARED / 'spaceship-titanic'}")
    import os

    os.environ["KK_DATA_DIR"] = str(SHARED)
    try:
        path, _ = new_competition("spaceship-titanic", ws)
        spec = tomllib.loads(path.read_text())
        assert spec["tabular"]["split"] == {"PassengerId": "_", "Cabin": "/"}
        assert spec["cv"] == {"kind": "group", "group": "PassengerId_1", "k": 5, "seed": 42}
        result = baseline("spaceship-titanic", models=("lgbm",), workspace=ws)
    finally:
        del os.environ["KK_DATA_DIR"]
    assert result.results[0].cv > 0.80  # 0.798 before the cabin and group parts (issue #22's table)
    sub = pd.read_csv(result.submission)
    assert len(sub) == 4277 and set(sub.Transported.astype(str)) == {"True", "False"}
