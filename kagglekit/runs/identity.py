"""A run's identity: the fingerprint of what makes two runs the same run (configuration, data,
folds). Every kind of run (baseline, train, ensemble, tune, pipeline stages) is reused by it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..spec import Competition


def data_fingerprint(comp: Competition, ws: Any) -> str:
    """Fingerprint of a competition's inputs: its spec, its feature hook and its data files (name,
    size, mtime). Two runs with the same configuration on the same fingerprint are the same run."""
    import hashlib

    h = hashlib.sha1(comp.spec_file.read_bytes() if comp.spec_file.is_file() else repr(comp).encode())
    hook = comp.root / (comp.tabular.features or "features.py")
    if hook.is_file():
        h.update(hook.read_bytes())
    data_dir = ws.data_dir(comp)
    for name in (comp.files.train, comp.files.test, comp.files.sample_submission):
        p = data_dir / name if name else None
        if p is not None and p.is_file():
            st = p.stat()
            h.update(f"{name}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def fingerprint(config: Mapping[str, Any], data: str, fold_id: str | None = None) -> str:
    """What makes a run the same run: its configuration, the data's fingerprint and the folds."""
    import hashlib

    body = json.dumps({"config": dict(config), "data": data, "folds": fold_id}, sort_keys=True, default=str)
    return hashlib.sha1(body.encode()).hexdigest()[:16]


