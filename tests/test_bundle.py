"""kk bundle, and the notebook's install line with no index (pip never touches the network)."""

import subprocess
import sys

from kagglekit.bundle import bundle, requirements


def test_requirements_resolve_extras():
    core = requirements()
    assert any(r.startswith("lightgbm") for r in core) and not any(r.startswith("torch") for r in core)
    vision = requirements(("vision",))
    assert any(r.startswith("torch") for r in vision) and any(r.startswith("timm") for r in vision)
    everything = requirements(("all",))
    assert any(r.startswith("optuna") for r in everything) and any(r.startswith("kaggle") for r in everything)


def test_bundle_installs_offline(tmp_path):
    wheels = bundle(tmp_path / "wheels", deps=False)
    assert [w.name.split("-")[0] for w in wheels] == ["kagglekit"]
    target = tmp_path / "site"
    # the notebook's line, with --no-index: no network is used; --no-deps as the deps are not in this bundle
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(tmp_path / "wheels"),
                    "--no-deps", "--target", str(target), "kagglekit", "-q"], check=True)
    code = f"import sys; sys.path.insert(0, {str(target)!r}); import kagglekit; print(kagglekit.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith(str(target))
