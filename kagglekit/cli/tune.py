"""``kk tune``: hyperparameter search with Optuna (needs the tune extra)."""

from __future__ import annotations

import typer

from ._app import COMPETITION, app, console, fmt, workspace


@app.command("tune")
def tune(
    competition: str = COMPETITION,
    model: str = typer.Option("lgbm", "--model", help="tabular: lgbm or rf; images: a timm architecture"),
    trials: int = typer.Option(50, "--trials", "-n", help="trials this worker runs"),
    timeout: float = typer.Option(None, "--timeout", help="stop this worker after SECONDS"),
    storage: str = typer.Option(None, "--storage", help="Optuna storage shared by workers: a database URL, e.g. "
                                                        "postgresql://user@host/db, or journal:FILE on a shared "
                                                        "folder (default: SQLite beside the runs)"),
    heartbeat: int = typer.Option(60, "--heartbeat", help="seconds between a worker's heartbeats (database "
                                  "storages): a trial whose worker died is retried after twice this"),
    show_status: bool = typer.Option(False, "--status", help="list the study's trials by worker, and stop"),
    study: str = typer.Option(None, "--study", help="study name (default: <competition>-<model>)"),
    threads: int = typer.Option(1, "--threads", help="threads per trial"),
    seed: int = typer.Option(None, "--seed", help="sampler seed"),
    name: str = typer.Option(None, "--name", help="recipe name to write (default: <competition>-<model>-tuned)"),
    finalize: bool = typer.Option(True, "--finalize/--no-finalize", help="write recipe, plots and a tuned run "
                                                                          "(workers sharing a study: let one do it)"),
    sizes: str = typer.Option("128", "--sizes", help="images: training size(s), e.g. 128 or 128,224"),
    image_folds: int = typer.Option(1, "--image-folds", help="images: folds each trial trains"),
    max_epochs: int = typer.Option(6, "--max-epochs", help="images: largest number of epochs searched"),
    pretrained: str = typer.Option("auto", "--pretrained", help="images: auto, true or false"),
    weights: str = typer.Option(None, "--weights", help="images: weight file or folder (offline)"),
) -> None:
    """Search a model's parameters on the shared folds; write the best as a recipe in pipelines/."""
    if show_status:
        _print_status(competition, model, storage, study)
        return
    from ..tuning import tune as run_tune
    from ._train_options import parse_bool_or_auto, parse_ints

    image = {"sizes": parse_ints(sizes), "folds": image_folds, "max_epochs": max_epochs,
             "pretrained": parse_bool_or_auto(pretrained), "weights": weights}
    r = run_tune(competition, model=model, trials=trials, timeout=timeout, storage=storage, study_name=study,
                 threads=threads, seed=seed, workspace=workspace(), progress=True, finalize=finalize,
                 recipe_name=name, image=image, heartbeat=heartbeat or None)
    out = console()
    out.print(f"study {r.study_name}: {r.n_trials} trials ({r.n_complete} complete, {r.n_pruned} pruned) in "
              f"{r.storage}", markup=False)
    out.print(f"best trial: CV {fmt(r.best_value, 5)} ({r.direction}) with {r.best_params} (the search's own "
              f"estimate: the best of {r.n_complete} tries, so optimistic)", markup=False)
    if r.recipe:
        out.print(f"retrained on the shared folds: default {model} CV {fmt(r.default_cv, 5)} -> tuned "
                  f"{fmt(r.tuned_cv, 5)} (run {r.run_id}; the figure to compare with other runs)", markup=False)
        out.print(f"recipe: {r.recipe}  (kk baseline {competition} --pipeline {r.recipe.stem}, or kk run)")
    for p in r.plots:
        out.print(f"plot: {p}")
    out.print(f"done in {r.seconds:.1f}s")


def _print_status(competition: str, model: str, storage: str | None, study: str | None) -> None:
    from collections import Counter

    from rich.table import Table

    from ..tuning import status

    trials = status(competition, model=model, storage=storage, study_name=study, workspace=workspace())
    table = Table(title=f"{study or competition + '-' + model}: {len(trials)} trials")
    for col in ("trial", "state", "value", "worker", "retry of", "seconds"):
        table.add_column(col)
    for t in trials:
        table.add_row(str(t["number"]), t["state"], fmt(t["value"], 5), t["worker"] or "-",
                      "-" if t["retry_of"] is None else str(t["retry_of"]), fmt(t["seconds"], 1))
    out = console()
    out.print(table)
    per_worker = Counter((t["worker"] or "-", t["state"]) for t in trials)
    for (worker, state), n in sorted(per_worker.items()):
        out.print(f"{worker}: {n} {state.lower()}", markup=False)
