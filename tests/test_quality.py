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
