"""``kk check``'s report: its types, the advice in plain words, and what it writes (report.json,
test_likeness.csv, separation.png) to a fresh folder under ``runs/<competition>/checks/``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import CompetitionData
from ..files import unique_dir
from ..runs import write_json
from ..spec import Competition
from ..workspace import Workspace

ALIKE_AUC = 0.6  # below: train and test look alike
SEPARATES_AUC = 0.7  # a single feature at or above this separates the sets on its own


@dataclass
class FeatureCheck:
    name: str
    gain: float  # share of the adversarial model's total gain
    auc: float  # train-vs-test AUC of this feature alone (0.5: no signal)
    out_of_range: float  # share of test rows outside the train range (or unseen categories)
    train_range: str
    test_range: str


@dataclass
class CheckReport:
    competition: str
    auc: float  # cross-validated train-vs-test AUC on all used features
    auc_after_drop: float | None  # the same without the suggested drops
    features: list[FeatureCheck]
    drop: list[str]  # suggested [tabular] drop
    cv: dict[str, Any]  # suggested [cv] table: {"kind": ...} (+ "time" or "group")
    cv_reason: str
    findings: list[str]  # leak and sanity findings, one line each
    verdict: list[str]  # plain-words advice
    folder: Path | None = None
    n_train: int = 0
    n_test: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "folder": str(self.folder) if self.folder else None}


def verdict(comp: Competition, auc: float, auc_after: float | None, checks: list[FeatureCheck], drop: list[str],
             cv: dict[str, Any], cv_reason: str, parts: dict[str, tuple[str, str]]) -> list[str]:
    out = []
    if auc < ALIKE_AUC:
        folds = "random folds are fine" if cv.get("kind") != "group" else "but they hold different groups (below)"
        out.append(f"train and test look alike (train-vs-test AUC {auc:.2f}): {folds}; "
                   "differences between models smaller than the folds' noise are luck, not skill")
    else:
        top = [f for f in checks if f.auc >= SEPARATES_AUC or f.out_of_range >= 0.5][:3] or checks[:1]
        named = "; ".join(f"{f.name} (AUC {f.auc:.2f}, train {f.train_range}, test {f.test_range})" for f in top)
        out.append(f"train and test differ (train-vs-test AUC {auc:.2f}); what separates them: {named}")
        if drop:
            lines = ", ".join(f'"{c}"' for c in drop)
            out.append(f"test values of {', '.join(drop)} lie outside what train saw, so trees extrapolate from its "
                       f"edge: drop them with [tabular] drop = [..., {lines}]")
            if auc_after is not None:
                out.append(f"without them the sets are still told apart (AUC {auc_after:.2f}) by features whose test "
                           "values all lie inside the train range (combinations such as week and weekday): "
                           "that is a shift trees can interpolate, not extrapolate")
    if cv["kind"] in ("time-ordered", "group"):
        table = ", ".join(f'{k} = "{v}"' for k, v in cv.items())
        if cv["kind"] != comp.cv.kind:
            out.append(f"{cv_reason}: use [cv] {table} (the spec's kind is {comp.cv.kind!r})")
        else:
            out.append(f"{cv_reason}; the spec's [cv] already does this")
    return out


def write(ws: Workspace, comp: Competition, data: CompetitionData, report: CheckReport,
           test_likeness: np.ndarray) -> Path:
    folder = unique_dir(ws.runs_dir(comp.name) / "checks", f"{datetime.now():%Y%m%d-%H%M%S}")  # never an earlier one
    ids = data.train[comp.id_column] if comp.id_column in data.train.columns else pd.Series(range(len(data.train)))
    ranked = pd.DataFrame({comp.id_column: ids.to_numpy(), "p_test": test_likeness})
    ranked = ranked.sort_values("p_test", ascending=False, kind="stable")
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    ranked.to_csv(folder / "test_likeness.csv", index=False)
    report.folder = folder
    write_json(folder / "report.json", report.as_json())
    if report.features:
        plot(report, folder / "separation.png")
    return folder


def plot(report: CheckReport, path: Path) -> None:
    from matplotlib.figure import Figure

    feats = report.features[:20][::-1]
    fig = Figure(figsize=(7, 0.3 * len(feats) + 1.2))
    ax = fig.subplots()
    ax.barh([f.name for f in feats], [f.auc for f in feats], color=["C3" if f.name in report.drop else "C0"
                                                                    for f in feats])
    ax.axvline(0.5, color="grey", lw=1)
    ax.set_xlim(0.5, 1.0)
    ax.set_xlabel("train-vs-test AUC of the feature alone (red: suggested drop)")
    ax.set_title(f"{report.competition}: train vs test, AUC {report.auc:.2f} on all features")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
