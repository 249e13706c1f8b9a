"""Playground-sized tables (100,000 rows and more): defaults that scale with the rows, a progress
line per family and the first family's submission written before the others train."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kagglekit.tabular._base import LARGE_ROWS, is_large
from kagglekit.tabular.models import create_model

from .conftest import write_spec


@pytest.mark.parametrize("n_rows, large", [(None, False), (891, False), (LARGE_ROWS - 1, False), (LARGE_ROWS, True),
                                           (1_000_000, True)])
def test_lightgbm_takes_its_large_table_settings_from_the_row_count(n_rows, large):
    assert is_large(n_rows) is large
    p = create_model("lgbm", task="classification", n_classes=2, n_rows=n_rows).resolved_params()
    assert (p["learning_rate"], p["n_estimators"], p["early_stopping_rounds"]) == \
        ((0.1, 1000, 50) if large else (0.03, 3000, 150))


def test_a_users_parameter_wins_over_the_large_table_setting():
    p = create_model("lgbm", task="regression", n_rows=500_000, params={"learning_rate": 0.02}).resolved_params()
    assert p["learning_rate"] == 0.02 and p["n_estimators"] == 1000


def _large_table(root, n: int = LARGE_ROWS, n_test: int = 2_000) -> None:
    rng = np.random.default_rng(0)
    m = n + n_test
    x = rng.normal(size=(m, 3))
    df = pd.DataFrame({"id": np.arange(m), "a": x[:, 0], "b": x[:, 1], "c": rng.choice(list("pqr"), m),
                       "y": (x[:, 0] - x[:, 1] + rng.normal(0, 1, m) > 0).astype(int)})
    folder = root / "data" / "big"
    folder.mkdir(parents=True)
    df.iloc[:n].to_csv(folder / "train.csv", index=False)
    df.iloc[n:].drop(columns="y").to_csv(folder / "test.csv", index=False)
    df.iloc[n:][["id"]].assign(y=0.5).to_csv(folder / "sample_submission.csv", index=False)
    write_spec(root, "big", """
        id = "id"
        metric = "auc"
        [[targets]]
        name = "y"
        task = "binary"
        [cv]
        kind = "stratified"
        k = 2
        """)


def test_a_large_table_gets_the_first_familys_submission_and_a_line_per_family(ws):
    _large_table(ws.root)
    env = {**os.environ, "KK_HOME": str(ws.root)}
    r = subprocess.run([sys.executable, "-m", "kagglekit", "baseline", "big", "--model", "rf,lgbm",
                        "-p", "rf.n_estimators=10", "-p", "lgbm.n_estimators=40"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    family = [i for i, ln in enumerate(lines) if ln.startswith(("rf: CV", "lgbm: CV"))]
    first = [i for i, ln in enumerate(lines) if ln.startswith("first submission (rf)")]
    assert len(family) == 2 and len(first) == 1 and family[0] < first[0] < family[1]  # written before lgbm trained
    subs = sorted((ws.root / "submissions" / "big").glob("*.csv"))
    assert len(subs) == 2  # the forest's, then the blend's: nothing overwritten
    early = pd.read_csv(next(p for p in subs if p.name in lines[first[0]]))
    assert len(early) == 2_000 and early["y"].between(0, 1).all()
    from kagglekit.runs import RunStore

    lgbm = next(run for run in RunStore(ws, "big").runs() if run.config.get("models") == ["lgbm"])
    assert lgbm.config["params"]["learning_rate"] == 0.1  # recorded as used: the large-table setting


def test_a_small_table_writes_one_submission(ws):
    _large_table(ws.root, n=2_000, n_test=200)
    env = {**os.environ, "KK_HOME": str(ws.root)}
    r = subprocess.run([sys.executable, "-m", "kagglekit", "baseline", "big", "--model", "rf,lgbm",
                        "-p", "rf.n_estimators=10", "-p", "lgbm.n_estimators=40"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "first submission" not in r.stdout and "rf: CV" in r.stdout
    assert len(list((ws.root / "submissions" / "big").glob("*.csv"))) == 1
