"""``kk check``: does the CV tell the truth? Adversarial validation and leak checks.

A LightGBM classifier learns to tell train rows from test rows (after the competition's own
features: hook, date parts, column plan), cross-validated. An AUC near 0.5 means the two sets look
alike and random folds estimate the test score; a high AUC names the features that separate them,
which trees cannot extrapolate across. Beside it: features whose test values lie outside the
train range, duplicate rows across the sets, ids or row order that predict the target, columns
that are constant or missing in test only, and targets that other columns add up to. The report
ends in plain-words advice, and train rows are ranked by how test-like they look (a validation
set that resembles the test).
"""


from __future__ import annotations

import pandas as pd

from ..data import load_data
from ..errors import SpecError
from ..spec import Competition
from ..workspace import Workspace, resolve
from .adversarial import adversarial_auc, encoded, out_of_range, single_feature_auc, value_range
from .advice import date_parts, drops, suggest_cv
from .images import check_images
from .leaks import leak_findings
from .report import CheckReport, FeatureCheck, verdict
from .report import write as write_report

__all__ = ["CheckReport", "FeatureCheck", "adversarial_auc", "check", "leak_findings", "single_feature_auc",
           "suggest_cv"]


def check(competition: str | Competition, *, workspace: Workspace | None = None, write: bool = True,
          arch: str | None = None, weights: str | None = None, max_rows: int | None = None) -> CheckReport:
    """Adversarial validation and leak checks (see the module doc). Image competitions are
    compared on pretrained embeddings (``arch``/``weights``, else the spec's ``[train]`` and
    ``KK_WEIGHTS_DIR``) when weights are at hand, and checked for byte-identical images.
    ``max_rows``: the train-vs-test model sees a random sample of at most this many rows, train and
    test in their proportion (``kk new`` on a Playground table: seconds instead of a minute)."""
    from ..tabular.features import build_features

    ws, comp = resolve(competition, workspace)
    data = load_data(comp, ws)
    if comp.kind == "image":
        return check_images(data, ws, arch=arch, weights=weights, write=write)
    feats = build_features(data)
    if not feats.plan.used:
        raise SpecError(f"{comp.spec_file}: no usable feature columns, nothing to compare")
    xtr, xte = _sampled(*encoded(feats), max_rows, comp.cv.seed)
    cats = feats.plan.categorical
    auc, test_likeness, gain = adversarial_auc(xtr, xte, seed=comp.cv.seed, categorical=cats)
    checks = []
    for c in feats.plan.used:
        checks.append(FeatureCheck(c, float(gain.get(c, 0.0)), single_feature_auc(feats.train[c], feats.test[c]),
                                   out_of_range(feats.train[c], feats.test[c], c in cats),
                                   value_range(feats.train[c]), value_range(feats.test[c])))
    checks.sort(key=lambda f: (-max(f.auc, 0.5 + f.out_of_range / 2), -f.gain))
    cv, cv_reason = suggest_cv(data, feats)
    parts = date_parts(comp, list(feats.plan.used))
    drop = drops(auc, checks, parts)
    auc_after = None
    if drop:
        keep = [c for c in xtr.columns if c not in drop]
        auc_after, _, _ = adversarial_auc(xtr[keep], xte[keep], seed=comp.cv.seed, categorical=cats)
    findings = leak_findings(data, feats)
    advice = verdict(comp, auc, auc_after, checks, drop, cv, cv_reason, parts)
    report = CheckReport(comp.name, auc, auc_after, checks, drop, cv, cv_reason, findings, advice,
                         n_train=len(xtr), n_test=len(xte))
    if write:
        report.folder = write_report(ws, comp, data, report, test_likeness)
    return report


def _sampled(xtr: pd.DataFrame, xte: pd.DataFrame, max_rows: int | None,
             seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(xtr) + len(xte)
    if not max_rows or n <= max_rows:
        return xtr, xte
    share = max_rows / n
    return (xtr.sample(frac=share, random_state=seed).sort_index(),
            xte.sample(frac=share, random_state=seed).sort_index())
