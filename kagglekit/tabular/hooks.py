"""Competition feature hooks: ``competitions/<name>/features.py`` defining ``add_features(df)``.

The pipeline calls it on train and test rows together, without the target columns, before the
folds are made. Only row-wise transforms, or unsupervised ones over train+test (counts, ranks),
belong there: anything that needs the target must be fitted inside a fold.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..errors import SpecError
from ..spec import Competition

Hook = Callable[[pd.DataFrame], pd.DataFrame]


def hook_path(comp: Competition) -> Path | None:
    if not comp.tabular.features:
        return None
    path = comp.root / comp.tabular.features
    if not path.is_file():
        raise SpecError(f"{comp.spec_file}: key 'tabular.features': file {path} not found")
    return path


def load_hook(comp: Competition) -> Hook | None:
    """Import the competition's ``add_features`` function, or None when it has no hook."""
    path = hook_path(comp)
    if path is None:
        return None
    spec = importlib.util.spec_from_file_location(f"kk_features_{comp.name.replace('-', '_')}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, "add_features", None)
    if not callable(fn):
        raise SpecError(f"{path}: defines no function add_features(df) -> DataFrame")
    return fn


def hook_digest(comp: Competition) -> str | None:
    path = hook_path(comp)
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12] if path else None


def apply_hook(hook: Hook, df: pd.DataFrame, comp: Competition) -> pd.DataFrame:
    out = hook(df.copy())
    if not isinstance(out, pd.DataFrame):
        raise SpecError(f"{hook_path(comp)}: add_features must return a DataFrame, returned {type(out).__name__}")
    if len(out) != len(df):
        raise SpecError(f"{hook_path(comp)}: add_features returned {len(out)} rows for {len(df)}; it must keep "
                        "every row, in order (filter rows in the data, not in the hook)")
    return out.reset_index(drop=True)
