import json

import numpy as np
import pandas as pd
import pytest

from kagglekit.data import load_data
from kagglekit.errors import RunError, SubmissionError
from kagglekit.folds import get_folds
from kagglekit.predictions import from_frame, target_info, to_frame
from kagglekit.runs import RunStore
from kagglekit.submissions import (
    build_submission,
    check_submission,
    score_submission,
    validate_submission,
    write_submission,
)
from kagglekit.workspace import PACKAGED_COMPETITIONS

from .conftest import make_tabular


def _run(ws, data, p1, label="m"):
    comp = data.comp
    targets = target_info(comp, data.train)
    folds = get_folds(data, ws)
    store = RunStore(ws, comp.name)
    w = store.create("tabular", label, {"models": [label]})
    n, m = len(data.train), len(data.test)
    oof = {"y": np.column_stack([1 - p1[:n], p1[:n]])}
    test = {"y": np.column_stack([1 - p1[n:n + m], p1[n:n + m]])}
    w.save_predictions(to_frame(data.train.row_id, "row_id", oof, targets),
                       to_frame(data.test.row_id, "row_id", test, targets))
    w.save_scores({"cv": float(p1.mean())})
    return w.finish(comp, ws, fold_id=folds.id, targets=targets, timings={})


def test_runs_never_collide_and_are_ranked(ws):
    make_tabular(ws.root)
    data = load_data(ws.competition("synth"), ws)
    rng = np.random.default_rng(0)
    runs = [_run(ws, data, rng.random(500) * s, "m") for s in (0.2, 0.9, 0.5)]
    assert len({r.path for r in runs}) == 3  # same second, same label: still three folders
    store = RunStore(ws, "synth")
    ranked = store.ranked("accuracy")
    assert [r.cv for r in ranked] == sorted([r.cv for r in runs], reverse=True)
    meta = ranked[0].meta
    assert meta["fold_id"] and meta["versions"]["pandas"] and meta["status"] == "complete"
    assert meta["targets"]["y"]["classes"] == ["0", "1"]
    assert set(ranked[0].oof().columns) == {"row_id", "y:0", "y:1"}
    assert json.loads((ranked[0].path / "config.json").read_text())["kind"] == "tabular"


def test_incomplete_runs_are_hidden_and_get_errors(ws):
    make_tabular(ws.root)
    store = RunStore(ws, "synth")
    w = store.create("tabular", "crashed", {})
    assert store.runs() == [] and len(store.runs(complete_only=False)) == 1
    with pytest.raises(RunError, match="oof.parquet is missing"):
        store.get(w.id).oof()
    with pytest.raises(RunError, match="no run 'nope'"):
        store.get("nope")
    with pytest.raises(RunError):
        store.get("../synth")


def test_submission_round_trip_and_validation(ws):
    make_tabular(ws.root)
    data = load_data(ws.competition("synth"), ws)
    rng = np.random.default_rng(1)
    run = _run(ws, data, rng.random(500))
    sub = build_submission(data, run.test(), run.targets)
    assert list(sub.columns) == ["row_id", "y"] and sub["y"].isin([0, 1]).all()
    assert sub["row_id"].tolist() == data.sample["row_id"].tolist()
    assert validate_submission(data, sub) == []
    # every failure is caught with a clear message
    assert "rows, expected 100" in validate_submission(data, sub.iloc[:-1])[0]
    bad_ids = sub.assign(row_id=sub.row_id + 10_000)
    assert any("test ids are missing" in p for p in validate_submission(data, bad_ids))
    assert any("columns are" in p for p in validate_submission(data, sub.rename(columns={"y": "Y"})))
    nan = sub.astype({"y": float})
    nan.loc[0, "y"] = np.nan
    assert "missing values (NaN)" in validate_submission(data, nan)[0]
    assert "outside the classes" in validate_submission(data, sub.assign(y=7))[0]
    assert "e.g. 'inf'" in validate_submission(data, sub.astype({"y": float}).assign(y=np.inf))[0]  # no OverflowError
    with pytest.raises(SubmissionError, match="more problems"):
        check_submission(data, bad_ids.iloc[:-3])


def test_write_submission_never_overwrites(ws):
    make_tabular(ws.root)
    data = load_data(ws.competition("synth"), ws)
    run = _run(ws, data, np.random.default_rng(2).random(500))
    sub = build_submission(data, run.test(), run.targets)
    p1 = write_submission(data, ws, sub, "same")
    assert write_submission(data, ws, sub, "same") == p1  # the same bytes: the same file, no copy
    changed = sub.copy()
    changed.iloc[0, 1] = 1 - changed.iloc[0, 1]
    p2 = write_submission(data, ws, changed, "same")
    assert p2 != p1 and p2.name == "same-2.csv"
    assert build_submission(data, run.test(), run.targets).equals(pd.read_csv(p1))  # p1 untouched
    with pytest.raises(SubmissionError):
        write_submission(data, ws, sub.iloc[:10], "short")
    assert not (ws.submissions_dir("synth") / "short.csv").exists()


def test_score_submission_against_solution(ws):
    make_tabular(ws.root)
    data = load_data(ws.competition("synth"), ws)
    truth = data.solution.set_index("row_id").loc[data.sample.row_id, "y"].to_numpy()
    perfect = pd.DataFrame({"row_id": data.sample.row_id, "y": truth})
    assert score_submission(data, perfect, data.solution) == 1.0
    flipped = perfect.assign(y=1 - truth)
    assert score_submission(data, flipped, data.solution) == 0.0


def test_prediction_frame_round_trip():
    targets = {"a": {"classes": ["x", "y", "z"]}, "b": {"classes": None}}
    pa, pb = np.random.default_rng(0).random((4, 3)), np.arange(4.0)
    df = to_frame(np.arange(4), "id", {"a": pa, "b": pb}, targets)
    assert list(df.columns) == ["id", "a:x", "a:y", "a:z", "b"]
    np.testing.assert_allclose(from_frame(df, "a", ["x", "y", "z"]), pa)
    np.testing.assert_allclose(from_frame(df, "b", None), pb)


def test_one_broken_run_never_stops_the_workspace(ws, monkeypatch, capsys):
    """#14.1: a truncated meta.json, a deleted scores.json, a truncated oof.parquet: each run is
    listed as broken (naming the file) and skipped by kk runs, kk list and kk ensemble."""
    from kagglekit.blend import ensemble
    from kagglekit.cli import main

    make_tabular(ws.root, "synth")
    data = load_data(ws.competition("synth"), ws)
    rng = np.random.default_rng(0)
    runs = [_run(ws, data, rng.random(len(data.train) + len(data.test)), label=f"m{i}") for i in range(5)]
    (runs[0].path / "meta.json").write_text("")
    (runs[1].path / "scores.json").unlink()
    oof = runs[2].path / "oof.parquet"
    oof.write_bytes(oof.read_bytes()[:100])
    store = RunStore(ws, "synth")
    assert {r.id for r in store.ranked("accuracy")} == {runs[3].id, runs[4].id}
    problems = {r.id: r.problem for r in store.runs(complete_only=False) if r.problem}
    assert set(problems) == {runs[0].id, runs[1].id, runs[2].id}
    assert "meta.json: unreadable" in problems[runs[0].id] and "scores.json is missing" in problems[runs[1].id]
    assert "oof.parquet is unreadable" in problems[runs[2].id]
    with pytest.raises(RunError, match=f"run {runs[0].id} is broken: .*meta.json"):
        store.get(runs[0].id)
    assert {m[0] for m in ensemble("synth", workspace=ws, method="mean", submit=False).members} == \
        {runs[3].id, runs[4].id}
    monkeypatch.chdir(ws.root)
    capsys.readouterr()
    main(["runs", "synth"])
    out = capsys.readouterr().out
    assert "3 broken run(s) skipped" in out
    main(["runs", "synth", "--all"])
    assert out.count("(broken: ") == 0 and capsys.readouterr().out.count("(broken: ") == 3
    main(["list"])
    assert "synth" in capsys.readouterr().out


def test_a_huge_cell_is_shown_cut_short(ws, tmp_path, monkeypatch, capsys):
    """#14.6: kk validate printed a whole 50 MB cell; values in messages are cut to a few dozen characters."""
    from kagglekit.cli import main

    make_tabular(ws.root)
    data = load_data(ws.competition("synth"), ws)
    sub = data.sample.copy().astype({"y": object})
    sub.loc[3, "y"] = "[bold]" + "x" * 5_000_000  # huge, and rich markup that must stay text
    path = tmp_path / "huge.csv"
    sub.to_csv(path, index=False)
    monkeypatch.chdir(ws.root)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["validate", "synth", str(path)])
    out = capsys.readouterr().out
    assert "outside the classes" in out and "[bold]xxx" in out and "5,000,008 characters" in out
    assert len(out) < 1000


def test_files_and_folders_follow_the_umask(ws):
    """#15.7: run files were 0600 and generated data folders 0700; a shared runs/ folder needs the umask's."""
    import os
    import stat

    from kagglekit.files import _umask, atomic_write_bytes
    from kagglekit.workspace import Workspace

    old = os.umask(0o027)  # group may read, others nothing: neither mkstemp's 0600 nor a plain 0644
    _umask.cache_clear()
    try:
        make_tabular(ws.root)
        data = load_data(ws.competition("synth"), ws)
        run = _run(ws, data, np.random.default_rng(0).random(len(data.train) + len(data.test)))
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in run.path.iterdir() if p.is_file()}
        assert modes and set(modes.values()) == {0o640}, modes
        atomic_write_bytes(ws.root / "x.bin", b"1")
        assert stat.S_IMODE((ws.root / "x.bin").stat().st_mode) == 0o640
        spec = PACKAGED_COMPETITIONS / "playground-churn" / "competition.toml"
        (ws.root / "competitions" / "playground-churn").mkdir()
        (ws.root / "competitions" / "playground-churn" / "competition.toml").write_text(spec.read_text())
        load_data(Workspace.at(ws.root).competition("playground-churn"), ws)
        generated = ws.root / "data" / "playground-churn"
        assert stat.S_IMODE(generated.stat().st_mode) == 0o750
        assert stat.S_IMODE((generated / "train.csv").stat().st_mode) == 0o640
    finally:
        os.umask(old)
        _umask.cache_clear()


def test_recording_the_git_commit_runs_no_repository_configured_command(ws, tmp_path):
    """#14.4: core.fsmonitor in a workspace's .git/config ran a command for every run."""
    import shutil
    import subprocess

    from kagglekit.runs import git_commit

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    marker = tmp_path / "fsmonitor-ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    run = lambda *a: subprocess.run(["git", *a], cwd=ws.root, check=True, capture_output=True,  # noqa: E731
                                    env={**__import__("os").environ, **env})
    run("init", "-q")
    (ws.root / "f.txt").write_text("x")
    run("add", "f.txt")
    run("commit", "-qm", "x")
    run("config", "core.fsmonitor", str(hook))
    (ws.root / "f.txt").write_text("y")
    commit = git_commit(ws.root)
    assert commit and commit.endswith("+dirty") and not marker.exists()


def test_runs_are_found_by_unique_prefix_latest_and_best(ws):
    """#15.2: run ids are long; any unique prefix works, as do 'latest' and 'best'."""
    make_tabular(ws.root)
    data = load_data(ws.competition("synth"), ws)
    rng = np.random.default_rng(0)
    runs = [_run(ws, data, rng.random(len(data.train) + len(data.test)), label=name) for name in ("ab", "cd", "ef")]
    store = RunStore(ws, "synth")
    import os

    common = os.path.commonprefix([r.id for r in runs])
    with pytest.raises(RunError, match=f"run id prefix '{common}' matches 3 runs"):
        store.get(common)
    assert store.get(runs[2].id[:-1]).id == runs[2].id  # "...-tabular-e": unique
    assert store.get(runs[1].id[:-1]).id == runs[1].id
    assert store.get("latest").id == runs[2].id
    best = max(runs, key=lambda r: r.cv)  # accuracy: higher is better
    assert store.get("best").id == best.id
    with pytest.raises(RunError, match="no run 'nope'"):
        store.get("nope")


def test_a_run_over_some_folds_is_shown_as_partial_and_never_best(ws, monkeypatch, capsys):
    """#15.3: after kk train --folds 0, the run looked finished and was reported as the best CV."""
    from kagglekit.cli import main
    from kagglekit.submissions import submission

    make_tabular(ws.root)
    data = load_data(ws.competition("synth"), ws)
    comp = data.comp
    targets = target_info(comp, data.train)
    folds = get_folds(data, ws)
    n, m = len(data.train), len(data.test)
    w = RunStore(ws, "synth").create("image", "partial", {"models": ["partial"]})
    y = (data.train["y"] == 1).to_numpy().astype(float)
    w.save_predictions(to_frame(data.train.row_id, "row_id", {"y": np.c_[1 - y, y]}, targets),
                       to_frame(data.test.row_id, "row_id", {"y": np.full((m, 2), 0.5)}, targets))
    w.save_scores({"cv": 1.0})
    partial = w.finish(comp, ws, fold_id=folds.id, targets=targets, timings={}, extra={"folds_done": [0]})
    full = _run(ws, data, np.full(n + m, 0.6))
    assert partial.partial and partial.folds_done == (1, 4) and not full.partial
    assert RunStore(ws, "synth").get("best").id == full.id
    assert submission("synth", workspace=ws).stem == full.id
    monkeypatch.chdir(ws.root)
    capsys.readouterr()
    main(["runs", "synth"])
    out = capsys.readouterr().out
    assert "1/4" in out and "4/4" in out and "cover some folds only" in out and "kk merge synth" in out
    main(["list"])
    assert "1.0000" not in capsys.readouterr().out
