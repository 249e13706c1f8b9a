"""Competition feature hooks: ``competitions/<name>/features.py`` defining ``add_features(df)``.

The pipeline calls it on train and test rows together, without the target columns, before the
folds are made. Only row-wise transforms, or unsupervised ones over train+test (counts, ranks),
belong there: anything that needs the target must be fitted inside a fold.
"""

from __future__ import annotations

import hashlib
import importlib.util
import traceback
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
    if not path.resolve().is_relative_to(comp.root.resolve()):  # the hook runs as code: only the competition's own
        raise SpecError(f"{comp.spec_file}: key 'tabular.features': {comp.tabular.features!r} is outside the "
                        f"competition's folder {comp.root}; the hook is run as Python code, so it must live "
                        "beside competition.toml (e.g. features = \"features.py\")")
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
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise _hook_error(path, e, "importing it") from None
    fn = getattr(module, "add_features", None)
    if not callable(fn):
        raise SpecError(f"{path}: defines no function add_features(df) -> DataFrame")
    return fn


def hook_digest(comp: Competition) -> str | None:
    path = hook_path(comp)
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12] if path else None


def _hook_error(path: Path, e: BaseException, doing: str) -> SpecError:
    """One line naming the hook's file and the line of it that raised (KK_DEBUG=1 for the traceback)."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).resolve() == path.resolve()]
    where = f"{path}:{frames[-1].lineno}" if frames else str(path)
    return SpecError(f"{where}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''} (raised "
                     f"while {doing}; KK_DEBUG=1 shows the traceback)")


def apply_hook(hook: Hook, df: pd.DataFrame, comp: Competition) -> pd.DataFrame:
    """Call the hook on train+test rows and check what it returns: a DataFrame, every row, in the
    same order (checked on the id column, or the index when the hook drops the ids)."""
    path = hook_path(comp) or Path("features.py")
    try:
        out = hook(df.copy())
    except Exception as e:
        raise _hook_error(path, e, "running add_features") from None
    if not isinstance(out, pd.DataFrame):
        raise SpecError(f"{path}: add_features must return a DataFrame, returned {type(out).__name__}")
    if len(out) != len(df):
        raise SpecError(f"{path}: add_features returned {len(out)} rows for {len(df)}; it must keep "
                        "every row, in order (filter rows in the data, not in the hook)")
    id_col = comp.id_column
    if id_col in df.columns and id_col in out.columns:
        moved = (out[id_col].to_numpy() != df[id_col].to_numpy())
        if moved.any():
            i = int(moved.argmax())
            raise SpecError(f"{path}: add_features changed the order of the rows (row {i} holds {id_col} "
                            f"{out[id_col].iloc[i]!r}, was {df[id_col].iloc[i]!r}); features would be matched to "
                            "the wrong targets: keep the order (no sort_values, or sort_index() before returning)")
    elif not out.index.equals(df.index):
        raise SpecError(f"{path}: add_features changed the order of the rows (its index is not the input's); "
                        "keep the order, and keep the id column")
    return out.reset_index(drop=True)
