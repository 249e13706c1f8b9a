"""Kaggle's limits: /kaggle/input is read-only and /kaggle/working is small. kk writes nothing into
a data folder (caches, runs and submissions go to the workspace), and a full disk is one line."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import make_tabular


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def _kk(ws: Path, data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KK_HOME": str(ws), "KK_DATA_DIR": str(data)}
    return subprocess.run([sys.executable, "-m", "kagglekit", *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=ws)


def _read_only(folder: Path) -> bool:
    """Make ``folder`` a read-only bind mount of itself, as /kaggle/input is (root ignores permission
    bits, not a read-only mount); False where this sandbox cannot mount."""
    ok = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
    if ok and subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode:
        subprocess.run(["umount", str(folder)], capture_output=True)
        return False
    return ok


def _digits(folder: Path, n: int = 12) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, shade in (("3", 60), ("7", 190)):
        (folder / "train" / label).mkdir(parents=True)
        for i in range(n):
            Image.fromarray((rng.integers(0, 40, (32, 32, 3)) + shade).astype(np.uint8)).save(
                folder / "train" / label / f"{label}_{i}.png")
    (folder / "test").mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3)).astype(np.uint8)).save(folder / "test" / f"t{i}.png")


def test_commands_write_nothing_into_the_data_folder(tmp_path):
    pytest.importorskip("timm")
    ws, data = tmp_path / "working", tmp_path / "input"
    (ws / "competitions").mkdir(parents=True)
    make_tabular(ws, "synth", n=200, n_test=50)
    data.mkdir()
    shutil.move(ws / "data" / "synth", data / "synth")
    shutil.copytree(data / "synth", data / "fresh")
    shutil.copy(data / "synth" / "sample_submission.csv", data / "fresh" / "sample_submission.csv")
    _digits(data / "digits")
    before = _listing(data)
    mounted = _read_only(data)
    try:
        if mounted:  # really read-only, as on Kaggle: a write would fail the command
            assert subprocess.run(["touch", str(data / "synth" / "x")], capture_output=True).returncode != 0
        runs = [("baseline", "synth", "--k", "2"), ("check", "synth"), ("new", "fresh"), ("baseline", "fresh"),
                ("new", "digits"),
                ("train", "digits", "--arch", "test_convnext", "--sizes", "32", "--pretrained", "false",
                 "--epochs", "1", "--folds", "0", "--workers", "1"),
                ("check", "digits")]
        for args in runs:
            out = _kk(ws, data, *args)
            assert out.returncode == 0, (args, out.stdout, out.stderr)
            if args[:2] == ("new", "digits"):
                assert "check it, then: kk train digits" in out.stdout  # an image competition trains a CNN
    finally:
        if mounted:
            subprocess.run(["umount", str(data)], check=True)
    assert _listing(data) == before
    assert (ws / ".kk_cache").is_dir() and any((ws / "runs" / "digits").glob("2*"))  # the caches went here
    assert any((ws / "submissions" / "synth").glob("*.csv"))


def _tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def test_a_full_disk_is_one_line_naming_the_folder_and_the_space(tmp_path, shared_data):
    """Kaggle's /kaggle/working holds ~20 GB; here a 300 KB workspace: kk baseline titanic ends in one
    line, not a 47-line OSError traceback, and leaves no run that looks finished."""
    ws = tmp_path / "small"
    if not _tmpfs(ws, "300k"):
        pytest.skip("this sandbox cannot mount a tmpfs to fill")
    try:
        (ws / "competitions").mkdir()
        out = _kk(ws, shared_data, "baseline", "titanic")
        assert out.returncode == 1
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
        line = lines[0]
        assert line.startswith("error: no space left on device") and str(ws) in line and "free" in line, line
        assert "kagglekit holds" in line and "runs" in line  # what to delete
        # nothing half-written passes for finished: each run listed as finished loads, no truncated submission
        from kagglekit.runs import RunStore
        from kagglekit.workspace import Workspace

        for run in RunStore(Workspace.at(ws), "titanic").runs():
            assert len(run.oof()) == 891 and len(run.test()) == 418
        for csv in (ws / "submissions").rglob("*.csv"):
            assert len(csv.read_text().splitlines()) == 419, csv
    finally:
        subprocess.run(["umount", str(ws)], check=True)


def test_an_image_cache_that_cannot_fit_is_refused_before_filling_the_disk(tmp_path):
    pytest.importorskip("albumentations")
    from PIL import Image

    from kagglekit.errors import KKError
    from kagglekit.vision.packed import pack_images

    cache = tmp_path / "cache"
    if not _tmpfs(cache, "300k"):
        pytest.skip("this sandbox cannot mount a tmpfs to fill")
    try:
        paths = []
        for i in range(30):  # 30 photos at shorter side 64: about 480 KB of pixels
            paths.append(str(tmp_path / f"{i}.png"))
            Image.fromarray(np.full((64, 85, 3), i, np.uint8)).save(paths[-1])
        with pytest.raises(KKError, match=r"needs about .* KB in .*cache.*is free; use --cache memory"):
            pack_images(paths, 64, cache)
        assert not [p for p in cache.rglob("*") if p.is_file()]  # nothing half-written
    finally:
        subprocess.run(["umount", str(cache)], check=True)
