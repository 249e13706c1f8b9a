import shutil
import subprocess

import pytest

from .conftest import REPO


def test_ruff_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    r = subprocess.run([ruff, "check", str(REPO)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


@pytest.mark.slow
def test_mypy_clean():
    """The type checker over the package, configured in pyproject.toml ([tool.mypy])."""
    mypy = shutil.which("mypy")
    if mypy is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    r = subprocess.run([mypy], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout[-3000:]


def test_line_length_is_checked():
    """E501 is on (code cannot hide at the end of a long line, or in a comment, again)."""
    import tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]
    assert cfg["line-length"] <= 120 and "E501" not in cfg["lint"].get("ignore", [])
    assert "E" in cfg["lint"]["select"]
