"""``kk check`` on images: byte-identical images across the sets, and train-vs-test adversarial
validation on pretrained embeddings."""

from __future__ import annotations

import numpy as np

from ..data import CompetitionData
from ..errors import SpecError
from ..workspace import Workspace
from .report import ALIKE_AUC, CheckReport
from .report import write as write_report


def check_images(data: CompetitionData, ws: Workspace, *, arch: str | None, weights: str | None,
                 write: bool) -> CheckReport:
    """Byte-identical images across the sets, and adversarial validation on pretrained embeddings
    (a logistic regression telling test embeddings from train ones, cross-validated)."""
    import os

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .._image_tables import duplicate_images

    comp = data.comp
    if "path" not in data.test.columns:
        raise SpecError(f"{comp.spec_file}: [image] has no test_path/test_dir, so test images cannot be compared")
    train_paths, test_paths = data.train["path"].tolist(), data.test["path"].tolist()
    _, leaks = duplicate_images(train_paths, test_paths)
    findings = []
    if leaks:
        findings.append(f"{len(leaks)} test images are byte-identical to training images (e.g. {leaks[0][0]} = "
                        f"{leaks[0][1]}): their labels are known")
    auc, test_likeness, extra = float("nan"), np.full(len(train_paths), np.nan), {}
    verdict = []
    if not data.has_test:
        verdict.append("no test images (a labelled set, cross-validated only): nothing to compare the training "
                       "images with")
    elif weights or os.environ.get("KK_WEIGHTS_DIR"):
        from ..vision.embed import image_embeddings

        emb_train, emb_test, source = image_embeddings(data, ws, arch=arch, weights=weights)
        x = np.concatenate([emb_train, emb_test])
        is_test = np.r_[np.zeros(len(emb_train)), np.ones(len(emb_test))]
        k = int(min(5, is_test.sum(), (1 - is_test).sum()))
        if k >= 2:
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
            p = cross_val_predict(model, x, is_test, method="predict_proba",
                                  cv=StratifiedKFold(k, shuffle=True, random_state=comp.cv.seed))[:, 1]
            auc, test_likeness = float(roc_auc_score(is_test, p)), p[:len(emb_train)]
        extra = {"embeddings": source}
        if auc != auc:
            verdict.append("too few test images for a train-vs-test comparison")
        elif auc < ALIKE_AUC:
            verdict.append(f"train and test images look alike (AUC {auc:.2f} on pretrained embeddings from {source}): "
                           "random folds are fine")
        else:
            verdict.append(f"train and test images differ (AUC {auc:.2f} on pretrained embeddings from {source}): "
                           "the top rows of the report's test_likeness.csv are the most test-like training "
                           "images: look at them, and validate on them")
    else:
        verdict.append("no pretrained weights at hand (--weights or KK_WEIGHTS_DIR): only byte-identical images "
                       "were compared")
    report = CheckReport(comp.name, auc, None, [], [], {"kind": comp.cv.kind}, "the spec's own folds", findings,
                         verdict, n_train=len(train_paths), n_test=len(test_paths), extra=extra)
    if write:
        report.folder = write_report(ws, comp, data, report, test_likeness)
    return report
