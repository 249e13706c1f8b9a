"""kk doctor: the report, a real smoke test with kk train's settings, and one-line failures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from kagglekit.doctor import _output  # noqa: E402
from kagglekit.machine import plan, read_machine  # noqa: E402


def _doctor(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "competitions").mkdir(exist_ok=True)
    full = {**os.environ, "KK_HOME": str(tmp_path), **env}
    return subprocess.run([sys.executable, "-m", "kagglekit", "doctor", *args], capture_output=True, text=True,
                          env=full, timeout=300)


def test_doctor_names_workers_and_precision_and_trains_for_real(tmp_path):
    out = _doctor(tmp_path, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    expected = plan(read_machine())
    assert report["ok"] and report["plan"]["workers"] == expected.workers
    assert report["plan"]["precision"] == expected.precision and report["plan"]["why"]["precision"]
    smoke = report["smoke"]
    assert smoke["images"] > 0 and smoke["images_per_s"] > 0 and smoke["precision"] == expected.precision
    assert {"python", "torch", "timm", "kagglekit", "cuda"} <= set(report["versions"])
    assert any(c["name"] == "output" and c["status"] == "ok" for c in report["checks"])


def test_doctor_in_words(tmp_path, shared_data):
    out = _doctor(tmp_path, "--no-smoke", KK_DATA_DIR=str(shared_data))
    assert out.returncode == 0, out.stderr
    assert "DataLoader workers" in out.stdout and "precision: " in out.stdout
    folders = sorted(p.name for p in shared_data.iterdir() if p.is_dir())
    assert f"[ok  ] data KK_DATA_DIR: {shared_data}: {len(folders)} folders ({folders[0]}" in out.stdout


def test_credentials_are_found_but_never_printed(tmp_path):
    out = _doctor(tmp_path, "--no-smoke", KAGGLE_USERNAME="someone", KAGGLE_KEY="s3cr3t-key-value")
    assert "KAGGLE_USERNAME/KAGGLE_KEY" in out.stdout
    assert "s3cr3t" not in out.stdout + out.stderr


@pytest.mark.parametrize(("args", "env", "line"), [
    (("--device", "cuda"), {}, "error: plan: --device cuda: no CUDA device is available here"),
    ((), {"KK_WEIGHTS_DIR": "/nonexistent/weights"}, "error: weights: KK_WEIGHTS_DIR=/nonexistent/weights: no such"),
    ((), {"KK_DATA_DIR": "/nonexistent/data"}, "error: data KK_DATA_DIR: KK_DATA_DIR=/nonexistent/data: no such"),
])
def test_what_would_fail_is_one_line_and_exit_1(tmp_path, args, env, line):
    out = _doctor(tmp_path, "--no-smoke", *args, **env)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and out.stderr.startswith(line), out.stderr


def test_weights_folder_lists_the_archs_it_holds(tmp_path):
    weights = tmp_path / "w"
    weights.mkdir()
    (weights / "tf_efficientnet_lite0.safetensors").write_bytes(b"x")
    out = _doctor(tmp_path, "--no-smoke", "--weights", str(weights))
    assert "[ok  ] weights: 1 in" in out.stdout and "tf_efficientnet_lite0" in out.stdout


def test_an_output_folder_that_cannot_be_written_fails():
    check = _output(Path("/proc/kk-doctor"))  # not writable even by root
    assert check.status == "fail" and "not writable" in check.detail and "KK_HOME" in check.detail
