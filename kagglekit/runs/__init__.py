"""The run store: one folder per run under ``runs/<competition>/<run-id>/``, never overwritten.

A run folder holds ``config.json`` (the resolved configuration), ``meta.json`` (fold assignment,
targets and classes, timings, library versions, git commit; written last, so a run without it is
incomplete), ``scores.json`` (per-fold and overall CV, leaderboard scores once known),
``oof.parquet`` and ``test.parquet`` (predictions keyed by the id column: one column per class per
target, ``<target>:<class>``, or ``<target>`` for regression) and any artifacts (plots, CSVs).

The life of a run: ``RunStore.identical(fingerprint)`` (reuse), ``RunStore.create`` (a fresh
folder), ``RunWriter`` (predictions, scores, then ``finish``), ``RunStore.best`` (the run to
submit). Beside the store: :mod:`.identity` (fingerprints), :mod:`.stats` (fold noise) and
:mod:`.record` (versions, git commit, JSON).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import RunError, did_you_mean
from ..files import atomic_write_parquet, unique_dir
from ..metrics import get_metric
from ..spec import Competition
from ..workspace import Workspace
from .identity import data_fingerprint, fingerprint
from .record import git_commit, library_versions, write_json
from .stats import Gap, cv_se, fold_gap

__all__ = ["Gap", "Run", "RunStore", "RunWriter", "cv_se", "data_fingerprint", "fingerprint", "fold_gap",
           "git_commit", "library_versions", "write_json"]

# -- runs --------------------------------------------------------------------------------------

@dataclass
class Run:
    """A run folder, read lazily."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    def _read(self, name: str) -> dict[str, Any]:
        p = self.path / name
        if not p.is_file():
            return {}
        try:
            value = json.loads(p.read_text())
        except (ValueError, OSError) as e:
            raise RunError(f"{p}: unreadable ({type(e).__name__}); run {self.id} is broken: move or delete "
                           f"{self.path}") from None
        if not isinstance(value, dict):
            raise RunError(f"{p}: expected a JSON object, found {type(value).__name__}; run {self.id} is broken")
        return value

    @cached_property
    def problem(self) -> str | None:
        """Why this run cannot be used (a file of it missing or unreadable, named), or None.
        Broken runs are listed as broken by ``kk runs --all`` and skipped by everything else."""
        try:
            for name in ("config.json", "meta.json", "scores.json"):
                self._read(name)
        except RunError as e:
            return str(e).split("; run ")[0]
        if not self.complete:
            return None
        if not (self.path / "scores.json").is_file():
            return f"{self.path / 'scores.json'} is missing"
        import pyarrow.parquet as pq

        for name in ("oof.parquet", "test.parquet"):
            p = self.path / name
            try:
                pq.read_metadata(p)
            except FileNotFoundError:
                return f"{p} is missing"
            except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ... for damaged files
                return f"{p} is unreadable ({type(e).__name__})"
        return None

    @cached_property
    def config(self) -> dict[str, Any]:
        return self._read("config.json")

    @cached_property
    def meta(self) -> dict[str, Any]:
        return self._read("meta.json")

    @property
    def scores(self) -> dict[str, Any]:
        return self._read("scores.json")

    @property
    def complete(self) -> bool:
        return self.meta.get("status") == "complete"

    @property
    def cv(self) -> float | None:
        return self.scores.get("cv")

    @property
    def folds_done(self) -> tuple[int, int]:
        """(folds trained, folds of the assignment): (1, 5) after ``kk train --folds 0``."""
        k = int(self.meta.get("k") or 0)
        return len(self.meta.get("folds_done", range(k))), k

    @property
    def partial(self) -> bool:
        """A complete run over some folds only: its CV covers part of the rows (kk merge completes it)."""
        done, k = self.folds_done
        return done < k

    @property
    def lb(self) -> dict[str, Any] | None:
        return self.scores.get("lb")

    @property
    def targets(self) -> dict[str, dict[str, Any]]:
        return self.meta.get("targets", {})

    def oof(self) -> pd.DataFrame:
        return self._frame("oof.parquet")

    def test(self) -> pd.DataFrame:
        return self._frame("test.parquet")

    def _frame(self, name: str) -> pd.DataFrame:
        """Read once per Run object (a finished run's predictions never change); callers get a copy."""
        cache = self.__dict__.setdefault("_frames", {})
        if name not in cache:
            p = self.path / name
            if not p.is_file():
                raise RunError(f"run {self.id}: {name} is missing ({self.path}); the run did not finish")
            cache[name] = pd.read_parquet(p)
        return cache[name].copy()

    def update_scores(self, **values: Any) -> None:
        scores = self.scores
        scores.update(values)
        write_json(self.path / "scores.json", scores)

    def labels(self) -> list[str]:
        """The run's models as people tell them apart: ``lgbm``, ``lgbm (tuned)`` (parameters from kk
        tune), ``lgbm (custom)`` (parameters given with --param)."""
        tag = " (tuned)" if self.config.get("tuned_by") else " (custom)" if self.config.get("given_params") else ""
        return [f"{m}{tag}" for m in self.config.get("models", [])]

    def summary(self) -> dict[str, Any]:
        if self.problem:
            return {"id": self.id, "kind": None, "models": [], "metric": None, "cv": None, "cv_std": None,
                    "cv_se": None, "folds": [], "lb": None, "holdout": None, "created": None, "complete": False,
                    "broken": self.problem, "path": str(self.path)}
        s = self.scores
        return {
            "id": self.id, "kind": self.config.get("kind"), "models": self.labels(),
            "metric": self.meta.get("metric"), "cv": s.get("cv"), "cv_std": s.get("cv_std"),
            "cv_se": cv_se(s.get("folds") or []), "folds": s.get("folds") or [],
            "lb": (s.get("lb") or {}).get("public"), "holdout": s.get("holdout"),
            "created": self.meta.get("created"), "complete": self.complete, "broken": None, "path": str(self.path),
            "folds_done": "{}/{}".format(*self.folds_done), "partial": self.partial,
        }


class RunStore:
    """Runs of one competition."""

    def __init__(self, ws: Workspace, competition: str):
        self.ws = ws
        self.competition = competition
        self.dir = ws.runs_dir(competition)

    def identical(self, fingerprint: str) -> Run | None:
        """The newest complete run made with this ``fingerprint`` (see :func:`fingerprint`), if any."""
        same = [r for r in self.runs() if r.config.get("fingerprint") == fingerprint]  # the folds are in it
        return max(same, key=lambda r: (r.meta.get("created") or "", r.id)) if same else None

    def create(self, kind: str, label: str, config: Mapping[str, Any]) -> RunWriter:
        """Create a fresh, uniquely named run folder (``<time>-<kind>-<label>``)."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = unique_dir(self.dir, re.sub(r"[^A-Za-z0-9._-]+", "-", f"{stamp}-{kind}-{label}")[:80])
        write_json(path / "config.json", {"kind": kind, **config})
        return RunWriter(path)

    def runs(self, *, complete_only: bool = True) -> list[Run]:
        if not self.dir.is_dir():
            return []
        runs = [Run(p) for p in sorted(self.dir.iterdir()) if p.is_dir() and (p / "config.json").is_file()]
        return [r for r in runs if not r.problem and r.complete] if complete_only else runs

    def best(self, metric: str, among: Iterable[Run] | None = None) -> Run | None:
        """The best run by CV in the direction of ``metric`` (of ``among``, else of the store): a
        complete run over every fold. A run over some folds is never the best, since its CV is over
        other rows. None when there is none."""
        m = get_metric(metric)
        full = [r for r in (self.runs() if among is None else among) if not r.problem and r.complete and not r.partial]
        return min(full, key=lambda r: m.sort_key(r.cv)) if full else None

    def ranked(self, metric: str, *, complete_only: bool = True) -> list[Run]:
        """Runs best first by CV in the direction of ``metric``."""
        m = get_metric(metric)
        runs = self.runs(complete_only=complete_only)
        return sorted(runs, key=lambda r: (bool(r.problem), not r.problem and r.partial,
                                           m.sort_key(None if r.problem else r.cv)))

    def get(self, run_id: str, *, include_incomplete: bool = False) -> Run:
        """A run by id, by a unique prefix of its id (git-style: ``20261123-0718``), or ``latest``
        (the newest complete run; with ``include_incomplete``, the newest run) or ``best`` (the
        best complete run by CV)."""
        path = self.dir / run_id
        if "/" in run_id or ".." in run_id or not run_id:
            raise RunError(f"invalid run id {run_id!r}: a folder name under {self.dir}")
        if run_id in ("latest", "best") and not (path / "config.json").is_file():
            done = self.runs(complete_only=not (include_incomplete and run_id == "latest"))
            if not done:
                raise RunError(f"no complete run of {self.competition} yet, so no {run_id!r} run")
            if run_id == "latest":
                return max(done, key=lambda r: (r.meta.get("created") or "", r.id))
            best = self.best(self.ws.competition(self.competition).metric)
            if best is None:
                raise RunError(f"every run of {self.competition} covers some folds only: no 'best' run yet "
                               "(kk merge completes a run)")
            return best
        if not (path / "config.json").is_file():
            ids = [r.id for r in self.runs(complete_only=False)]
            matches = [i for i in ids if i.startswith(run_id)]
            if len(matches) > 1:
                raise RunError(f"run id prefix {run_id!r} matches {len(matches)} runs of {self.competition} (e.g. "
                               f"{', '.join(matches[:3])}); give more of the id")
            if not matches:
                raise RunError(f"no run {run_id!r} for {self.competition} in {self.dir}"
                               f"{did_you_mean(run_id, ids)}; 'kk runs {self.competition}' lists them")
            path = self.dir / matches[0]
        run = Run(path)
        if run.problem:
            raise RunError(f"run {run.id} is broken: {run.problem}; move or delete {path}")
        return run


@dataclass
class RunWriter:
    """Writes one run's files; :meth:`finish` writes ``meta.json`` last and marks it complete."""

    path: Path
    started: float = field(default_factory=time.time)

    @property
    def id(self) -> str:
        return self.path.name

    def save_predictions(self, oof: pd.DataFrame, test: pd.DataFrame) -> None:
        atomic_write_parquet(oof, self.path / "oof.parquet")
        atomic_write_parquet(test, self.path / "test.parquet")

    def save_scores(self, scores: Mapping[str, Any]) -> None:
        write_json(self.path / "scores.json", dict(scores))

    def finish(self, comp: Competition, ws: Workspace, *, fold_id: str, targets: Mapping[str, Any],
               timings: Mapping[str, float], extra: Mapping[str, Any] | None = None) -> Run:
        meta = {
            "competition": comp.name, "metric": comp.metric, "id_column": comp.id_column,
            "fold_id": fold_id, "k": comp.cv.k, "targets": dict(targets),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "timings": {**timings, "total_s": round(time.time() - self.started, 3)},
            "versions": library_versions(), "git": git_commit(ws.root), "host_cpus": os.cpu_count(),
            **(extra or {}), "status": "complete",
        }
        write_json(self.path / "meta.json", meta)
        return Run(self.path)
