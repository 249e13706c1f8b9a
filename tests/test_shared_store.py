"""A run store shared by machines (KK_RUNS_DIR): processes writing runs to one folder at the same
time never collide, and folds trained by different processes merge from there."""

import json
import os
import subprocess
import sys

import pytest

from kagglekit.data import load_data
from kagglekit.runs import RunStore
from kagglekit.workspace import Workspace

from .conftest import make_images


def _start(ws_root, store, *args: str) -> subprocess.Popen:
    env = {**os.environ, "KK_HOME": str(ws_root), "KK_RUNS_DIR": str(store)}
    return subprocess.Popen([sys.executable, "-m", "kagglekit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def _finish(*procs: subprocess.Popen) -> None:
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)


def test_the_store_moves_runs_and_submissions_but_not_the_cache(ws_path, tmp_path, monkeypatch):
    monkeypatch.setenv("KK_RUNS_DIR", str(tmp_path / "shared"))
    ws = Workspace.at(ws_path)
    assert ws.runs_dir("titanic") == tmp_path / "shared" / "runs" / "titanic"
    assert ws.submissions_dir("titanic") == tmp_path / "shared" / "submissions" / "titanic"
    assert ws.cache_dir == ws_path / ".kk_cache"  # each machine keeps its own cache


def test_concurrent_baselines_on_one_store_get_a_run_folder_each(ws_path, tmp_path, monkeypatch):
    store = tmp_path / "shared"
    monkeypatch.setenv("KK_RUNS_DIR", str(store))
    ws = Workspace.at(ws_path)
    load_data(ws.competition("playground-churn"), ws)  # the built-in data, generated once beforehand
    procs = [_start(ws_path, store, "baseline", "playground-churn", "--model", "lgbm", "--new") for _ in range(3)]
    _finish(*procs)
    runs = RunStore(ws, "playground-churn").runs()
    assert len(runs) == 3 and len({r.path for r in runs}) == 3  # three complete, distinct runs
    assert all(json.loads((r.path / "config.json").read_text())["models"] == ["lgbm"] for r in runs)
    assert not (ws_path / "runs").exists()  # nothing written beside the workspace
    subs = {p.stem for p in (store / "submissions" / "playground-churn").glob("*.csv")}
    assert subs == {r.id for r in runs}  # each run's submission, none overwritten


def test_folds_trained_by_two_processes_merge_from_the_shared_store(ws_path, tmp_path, monkeypatch):
    pytest.importorskip("timm")
    store = tmp_path / "shared"
    monkeypatch.setenv("KK_RUNS_DIR", str(store))
    make_images(ws_path, n=96, n_test=16, size=32)
    common = ["train", "tiny", "--arch", "test_convnext", "--pretrained", "false", "--sizes", "32", "--epochs", "1",
              "--batch-size", "16", "--workers", "0", "--no-submit"]
    _finish(_start(ws_path, store, *common, "--folds", "0"), _start(ws_path, store, *common, "--folds", "1"))
    ws = Workspace.at(ws_path)
    runs = RunStore(ws, "tiny").runs()
    assert sorted(r.meta["folds_done"] for r in runs) == [[0], [1]]
    merged = _start(ws_path, store, "merge", "tiny", *(r.id for r in runs))
    _finish(merged)
    full = [r for r in RunStore(ws, "tiny").runs() if not r.partial]
    assert len(full) == 1 and full[0].meta["folds_done"] == [0, 1]
