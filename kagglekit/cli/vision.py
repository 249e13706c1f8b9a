"""``kk train``, ``kk lr-find``, ``kk merge``: fine-tuning timm CNNs (needs the vision extra)."""

from __future__ import annotations

import typer

from ._app import (
    COMPETITION,
    Cache,
    Device,
    Precision,
    Resize,
    app,
    console,
    fmt,
    value,
    workspace,
)


def _sizes(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in value.split(",") if s.strip())
    except ValueError:
        raise typer.BadParameter(f"expected sizes like 128 or 128,224, found {value!r}") from None


def _pretrained(value: str) -> bool | str:
    low = value.lower()
    if low in ("auto",):
        return "auto"
    if low in ("true", "yes", "1"):
        return True
    if low in ("false", "no", "0"):
        return False
    raise typer.BadParameter(f"expected auto, true or false, found {value!r}")


ARCH = typer.Option(None, "--arch", "-a", help="any timm model name, e.g. convnext_small [default: the spec's "
                   "[train] arch, else resnet18]")
SIZES = typer.Option(None, "--sizes", help="image size, or sizes for progressive resizing: 128,224 [default: the "
                     "spec's, else the images' own size up to 224]")
PRETRAINED = typer.Option(None, "--pretrained", help="auto (local weights, hub, else scratch), true or false")
WEIGHTS = typer.Option(None, "--weights", help="weight file or folder of weight files (offline); or KK_WEIGHTS_DIR")


def _given(**flags) -> dict:
    """The flags the user gave, converted: the rest come from the spec's [train] table, then from
    kk's defaults."""
    conv = {"sizes": _sizes, "pretrained": _pretrained,
            "folds": lambda v: tuple(int(f) for f in v.split(",") if f.strip())}
    return {k: conv.get(k, lambda v: v)(v) for k, v in flags.items() if v is not None}


@app.command("train")
def train(  # options in groups: model, schedule, images, hardware, run
    competition: str = COMPETITION,
    arch: str = ARCH,
    pretrained: str = PRETRAINED,
    weights: str = WEIGHTS,
    epochs: int = typer.Option(None, "--epochs", "-e", help="epochs after the probe [default: 5]"),
    sizes: str = SIZES,
    batch_size: int = typer.Option(None, "--batch-size", "-b", help="the global batch [default: 32 on a CPU, "
                                   "sized to the GPU's memory]"),
    accum: int = typer.Option(None, "--accum", help="gradient accumulation steps (same update, less memory)"),
    lr: str = typer.Option(None, "--lr", help="learning rate, or 'auto' for the learning-rate finder "
                           "[default: 2e-3]"),
    seed: int = typer.Option(None, "--seed"),
    resize: Resize = typer.Option(None, "--resize", help="valid/test resize [default: the spec's; auto = the "
                                  "pretrained model's centre crop]"),
    flip: bool = typer.Option(None, "--flip/--no-flip", help="horizontal flips in augmentation"),
    tta: int = typer.Option(None, "--tta", help="test-time augmentation passes [default: 0]"),
    skip_bad_images: bool = typer.Option(None, "--skip-bad-images", help="skip unreadable images with a warning"),
    device: Device = typer.Option(None, "--device", help="where to train [default: auto: cuda when there is one]"),
    precision: Precision = typer.Option(None, "--precision", help="autocast: bf16 from sm 8.0, fp16 with a gradient "
                                        "scaler on sm 6.0/7.x, fp32 on CPUs [default: auto; kk doctor shows it]"),
    devices: int = typer.Option(None, "--devices", help="processes, one per GPU (DDP via torchrun; on CPU: gloo) "
                                "[default: 1]"),
    workers: int = typer.Option(None, "--workers", help="DataLoader worker processes [default: sized to the "
                                "machine]"),
    cache: Cache = typer.Option(None, "--cache", help="pre-resized images held in memory, or streamed from a packed "
                                "file on disk [default: auto: disk when they would take over a quarter of the free "
                                "memory]"),
    compile: bool = typer.Option(None, "--compile", help="torch.compile the training step (GPUs, long runs)"),
    folds: str = typer.Option(None, "--folds", help="run only these folds, e.g. 0,1 (merge later with kk merge)"),
    resume: str = typer.Option(None, "--resume", help="continue an interrupted run from its last finished epoch"),
    submit: bool = typer.Option(True, "--submit/--no-submit", help="write the validated submission CSV"),
    new: bool = typer.Option(False, "--new", help="train again even when an identical finished run exists"),
) -> None:
    """Fine-tune a timm CNN on the shared folds: OOF and test predictions, a validated submission.
    Unset options come from the competition's [train] table, then from kk's defaults."""
    from ..errors import KKError
    from ..vision.training import train as run_train

    overrides = _given(arch=arch, epochs=epochs, sizes=sizes, batch_size=batch_size, accum=accum, lr=lr, tta=tta,
                       pretrained=pretrained, weights=weights, folds=folds, seed=seed,
                       num_workers=workers, resize=value(resize), flip=flip, skip_bad_images=skip_bad_images,
                       devices=devices, cache=value(cache), compile=compile, device=value(device),
                       precision=value(precision))
    if resume and overrides:
        raise KKError(f"--resume continues run {resume} with its own configuration; drop --"
                      f"{next(iter(overrides)).replace('_', '-')} (or start a new run without --resume)")
    from ..vision.launch import EPOCH_HEADER, format_epoch

    out = console()
    out.print(EPOCH_HEADER, markup=False)

    def log(row: dict) -> None:
        out.print(format_epoch(row), markup=False)

    result = run_train(competition, workspace=workspace(), resume=resume, progress=True, log=log, submit=submit,
                       new=new, **overrides)
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
def lr_find(competition: str = COMPETITION, arch: str = ARCH, sizes: str = SIZES,
            batch_size: int = typer.Option(None, "--batch-size", "-b"), pretrained: str = PRETRAINED,
            weights: str = WEIGHTS) -> None:
    """Learning-rate finder: sweep, suggest fastai's 'valley', save the loss-vs-lr plot."""
    from ..vision.lr_finder import lr_find as run_lr_find

    suggestion, path = run_lr_find(competition, workspace=workspace(), **_given(
        arch=arch, sizes=sizes, batch_size=batch_size, pretrained=pretrained, weights=weights))
    console().print(f"suggested learning rate (valley): {suggestion:.2e}\nplot: {path}")


@app.command("merge")
def merge(competition: str = COMPETITION,
          runs: list[str] = typer.Argument(..., help="runs trained with disjoint --folds"),
          submit: bool = typer.Option(True, "--submit/--no-submit")) -> None:
    """Merge runs that trained different folds of the same config into one run."""
    from ..vision.training import merge as run_merge

    result = run_merge(competition, runs, workspace=workspace(), submit=submit)
    out = console()
    out.print(f"merged run: {result.run.id}  CV {fmt(result.cv)} over folds {result.folds_done}")
    if result.submission:
        out.print(f"submission: {result.submission}")
