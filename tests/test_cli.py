import json
import os
import subprocess
import sys

import pytest

from kagglekit.cli import main

from .conftest import REPO, make_tabular

HEAVY = ("torch", "timm", "lightgbm", "kaggle", "optuna", "pandas", "sklearn")


def kk(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "kagglekit", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_help_imports_no_heavy_library():
    code = ("import sys\nfrom kagglekit.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert "baseline" in out and "runs" in out


def test_import_kagglekit_does_not_import_torch():
    code = "import sys, kagglekit\nprint('torch' in sys.modules, 'lightgbm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_errors_are_one_line_and_exit_1(ws_path):
    r = kk("runs", "nope", cwd=ws_path)
    assert r.returncode == 1
    assert r.stderr.strip().startswith("error: unknown competition 'nope'") and len(r.stderr.strip().splitlines()) == 1
    r = kk("runs", "nope", cwd=ws_path, env={"KK_DEBUG": "1"})
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_outside_a_workspace(tmp_path):
    r = kk("list", cwd=tmp_path)
    assert r.returncode == 1 and "no kagglekit workspace found" in r.stderr


def test_list_shows_builtin_competitions_from_repo():
    r = kk("list", cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "playground-churn" in r.stdout and "playground-shapes" in r.stdout and "titanic" in r.stdout


def test_baseline_runs_validate_score_via_cli(ws_path, capsys):
    make_tabular(ws_path)
    os.chdir(ws_path)
    main(["baseline", "synth", "--model", "lgbm", "--k", "3"])
    out = capsys.readouterr().out
    assert "lgbm *" in out and "3-fold CV" in out and "submission (lgbm)" in out
    plot = out.split("feature importance (lgbm): ")[1].split()[0]
    assert plot.endswith("importance.png") and os.path.isfile(plot)  # where the plot went, printed
    sub = next((ws_path / "submissions" / "synth").glob("*.csv"))
    main(["validate", "synth", str(sub)])
    assert "is a valid submission" in capsys.readouterr().out
    main(["score", "synth", str(sub)])
    assert "accuracy = 0." in capsys.readouterr().out
    main(["runs", "synth", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and set(rows[0]) >= {"id", "kind", "models", "metric", "cv", "lb", "created", "path"}
    assert rows[0]["holdout"] is not None


def test_validate_reports_each_problem(ws_path, capsys):
    make_tabular(ws_path)
    bad = ws_path / "bad.csv"
    bad.write_text("row_id,y\n1,0\n")
    os.chdir(ws_path)
    with pytest.raises(SystemExit) as e:
        main(["validate", "synth", str(bad)])
    assert e.value.code == 1
    out = capsys.readouterr().out
    assert "1 rows, expected 100" in out and "test ids are missing" in out


def test_version_is_the_installed_one():
    from importlib.metadata import version

    r = kk("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"kagglekit {version('kagglekit')}"


@pytest.mark.parametrize("k", ["1", "0", "-3"])
def test_baseline_with_fewer_than_two_folds_is_one_line(ws_path, k):
    make_tabular(ws_path, "synth")
    r = kk("baseline", "synth", "--k", k, cwd=ws_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"error: --k: expected a number of CV folds of at least 2, found {k} (e.g. --k 5)"


def test_list_shows_a_broken_spec_whole_with_its_brackets(ws_path):
    make_tabular(ws_path, "good")
    (ws_path / "competitions" / "bad").mkdir()
    (ws_path / "competitions" / "bad" / "competition.toml").write_text(
        'id = "id"\nmetric = "accuracy"\n[[targets]]\nname = "y"\ntask = "binary"\n[cv]\nkind = "randm"\n')
    r = kk("list", cwd=ws_path)
    assert r.returncode == 0 and "good" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("invalid spec:"))
    assert "key 'cv.kind'" in line and "found 'randm'" in line


def test_shell_completion_script_is_offered():
    # typer finds the shell among kk's parent processes (shellingham), as when a user types it in bash
    r = subprocess.run(["bash", "-c", f"{sys.executable} -m kagglekit --show-completion; exit $?"], capture_output=True,
                       text=True, env={**os.environ, "SHELL": "/bin/bash"}, timeout=60)
    assert r.returncode == 0 and "_kk_completion" in r.stdout and "complete " in r.stdout, r.stderr


def test_warnings_are_one_clean_line(tmp_path):
    """A warning shows as 'warning: ...', without Python's source line under it."""
    pytest.importorskip("timm")
    from .conftest import make_images

    (tmp_path / "competitions").mkdir()
    make_images(tmp_path, n=48, n_test=8, size=32)
    out = kk("train", "tiny", "--arch", "test_convnext", "--sizes", "32", "--epochs", "1", "--folds", "0",
             "--no-submit", env={"KK_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if "pretrained weights" in ln or "warnings.warn" in ln
             or "run_train(" in ln]
    assert lines == [next(ln for ln in lines if ln.startswith("warning: no pretrained weights for test_convnext"))]


def test_ctrl_c_in_kk_train_says_how_to_resume(tmp_path):
    """Ctrl-C after an epoch: one line naming the command that resumes the run, exit code 130
    (typer turns the interrupt into a silent exit of its own; kk looks behind it)."""
    import signal
    import time

    pytest.importorskip("timm")
    from .conftest import make_images

    (tmp_path / "competitions").mkdir()
    make_images(tmp_path, n=48, n_test=8, size=32)
    p = subprocess.Popen([sys.executable, "-m", "kagglekit", "train", "tiny", "--arch", "test_convnext", "--sizes",
                          "32", "--epochs", "200", "--folds", "0", "--no-submit", "--pretrained", "false"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "KK_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("runs/tiny/*/fold_0/last.pt")) and time.monotonic() < deadline:
        time.sleep(0.2)  # until an epoch is checkpointed
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    run = next(tmp_path.glob("runs/tiny/*/fold_0")).parent.name
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1] == f"interrupted; continue with: kk train tiny --resume {run}"
