"""``kk train``, ``kk lr-find``, ``kk merge``: fine-tuning timm CNNs (needs the vision extra)."""

from __future__ import annotations

import typer

from ..trainconfig import FIELDS, flag_of
from ._app import (
    COMPETITION,
    SUBMIT,
    app,
    console,
    fmt,
    workspace,
)
from ._train_options import with_train_options


@app.command("train")
@with_train_options()
def train(
    competition: str = COMPETITION,
    resume: str = typer.Option(None, "--resume", help="continue an interrupted run from its last finished epoch"),
    submit: bool = typer.Option(True, "--submit/--no-submit", help="write the validated submission CSV"),
    new: bool = typer.Option(False, "--new", help="train again even when an identical finished run exists"),
    options: dict | None = None,
) -> None:
    """Fine-tune a timm CNN on the shared folds: OOF and test predictions, a validated submission.
    Unset options come from the competition's [train] table, then from kk's defaults."""
    from ..errors import KKError
    from ..vision.launch import train as run_train

    overrides = options or {}
    if resume and overrides:
        raise KKError(f"--resume continues run {resume} with its own configuration; drop "
                      f"{flag_of(FIELDS[next(iter(overrides))])} (or start a new run without --resume)")
    from ..vision.progress import EPOCH_HEADER, format_epoch

    out = console()
    out.print(EPOCH_HEADER, markup=False)

    def log(row: dict) -> None:
        out.print(format_epoch(row), markup=False)

    result = run_train(competition, workspace=workspace(), resume=resume, progress=True, log=log, submit=submit,
                       new=new, **overrides)
    if not result.written_here:
        out.print(f"node {overrides.get('node_rank')}: done; node 0 wrote run {result.run.id} (CV "
                  f"{fmt(result.cv)}) and its submission", markup=False)
        return
    if result.reused:
        out.print(f"run: {result.run.id} reused: an identical run (same configuration, data and folds) had "
                  "finished; --new trains again", markup=False)
    else:
        out.print(f"run: {result.run.id}  (weights: {result.weights_source})", markup=False)
    line = f"CV {fmt(result.cv)} over folds {','.join(map(str, result.folds_done))}"
    if result.cv_no_tta is not None:
        used = result.run.scores.get("tta_used", True)
        left_out = "" if used else "; TTA left out: it did not help the OOF score"
        line += f"  (without TTA {fmt(result.cv_no_tta)}{left_out})"
    out.print(line + "  " + "  ".join(f"{k}={fmt(v)}" for k, v in result.per_target.items()), markup=False)
    _print_classes(out, result.run.scores)
    out.print(f"training throughput {result.images_per_second:.1f} img/s; done in {result.seconds:.1f}s")
    plots = [result.run.path / n for n in ("confusion_matrix.png", "calibration.png", "top_losses.png", "lr_find.png")]
    for path in (p for p in plots if p.is_file()):
        out.print(f"plot: {path}", markup=False)
    out.print(f"epochs: {result.run.path / 'history.csv'}", markup=False)
    if result.submission:
        out.print(f"submission: {result.submission}")
    elif submit and len(result.folds_done) == result.run.meta.get("k") and not result.run.test().shape[0]:
        out.print("no submission: this competition has no test images (cross-validation only)", markup=False)
    if result.holdout is not None:
        out.print(f"held-out score of the submission: {result.holdout:.4f}")


def _print_classes(out, scores: dict) -> None:  # noqa: ANN001
    """Per-class precision and recall, and whether the probabilities are over-confident."""
    rows = scores.get("per_class") or []
    if rows:
        out.print("per class (OOF): " + "  ".join(f"{r['class']} P {fmt(r['precision'], 2)} R {fmt(r['recall'], 2)}"
                                                  for r in rows), markup=False)
    cal = scores.get("calibration")
    if cal:
        gap = cal["confidence"] - cal["accuracy"]
        verdict = "over-confident" if gap > 0.02 else "under-confident" if gap < -0.02 else "calibrated"
        logloss = f"log loss {scores['logloss']:.4f}, " if "logloss" in scores else ""
        out.print(f"calibration (OOF): {logloss}mean confidence {cal['confidence']:.3f} vs accuracy "
                  f"{cal['accuracy']:.3f}, ECE {cal['ece']:.3f}: {verdict}", markup=False)


@app.command("lr-find")
@with_train_options(("arch", "sizes", "batch_size", "pretrained", "weights"))
def lr_find(competition: str = COMPETITION, options: dict | None = None) -> None:
    """Learning-rate finder: sweep, suggest fastai's 'valley', save the loss-vs-lr plot."""
    from ..vision.lr_finder import lr_find as run_lr_find

    suggestion, path = run_lr_find(competition, workspace=workspace(), **(options or {}))
    console().print(f"suggested learning rate (valley): {suggestion:.2e}\nplot: {path}")


@app.command("merge")
def merge(competition: str = COMPETITION,
          runs: list[str] = typer.Argument(..., help="runs trained with disjoint --folds"),
          submit: bool = SUBMIT) -> None:
    """Merge runs that trained different folds of the same config into one run."""
    from ..vision.results import merge as run_merge

    result = run_merge(competition, runs, workspace=workspace(), submit=submit)
    out = console()
    out.print(f"merged run: {result.run.id}  CV {fmt(result.cv)} over folds {result.folds_done}")
    if result.submission:
        out.print(f"submission: {result.submission}")
