"""``kk baseline``: the tabular baseline."""

from __future__ import annotations

import typer

from ._app import COMPETITION, NEW, SUBMIT, app, console, fmt, workspace


@app.command("baseline")
def baseline(
    competition: str = COMPETITION,
    model: str = typer.Option("all", "--model", help="rf, lgbm, catboost, linear, nn, or all: the default "
                                                     "families (rf, lgbm, linear, and nn below 100,000 rows "
                                                     "where torch is installed); a "
                                                     "comma-separated list also works"),
    k: int = typer.Option(None, "--k", "-k", help="number of CV folds [default: the spec's k]"),
    seed: int = typer.Option(42, "--seed", help="model seed"),
    bags: int = typer.Option(1, "--bags", help="fits per fold, seeds seed, seed+1, ..., averaged"),
    repeats: int = typer.Option(None, "--repeats", help="repeated k-fold: OOF averaged over this many splits "
                                                        "[default: the spec's [cv] repeats, else 1]"),
    param: list[str] = typer.Option(None, "--param", "-p", help="override a parameter: lgbm.num_leaves=63"),
    time_budget: float = typer.Option(None, "--time-budget", help="seconds for all models and folds"),
    submit: bool = SUBMIT,
    new: bool = NEW,
    pipeline: str = typer.Option(None, "--pipeline", help="take models and parameters from a recipe in pipelines/ "
                                                           "(e.g. one written by kk tune)"),
) -> None:
    """Cross-validate the default families (random forest, LightGBM, linear, and fastai's tabular network
    below 100,000 rows) on the shared folds and submit their greedy blend; --model ...,catboost adds CatBoost."""
    from ..tabular.baseline import baseline as run_baseline
    from ..tabular.baseline import parse_overrides

    ws = workspace()
    models = None if model == "all" else tuple(m.strip() for m in model.split(","))
    params = parse_overrides(param)
    if pipeline:
        from ..pipeline import baseline_from_recipe

        models, recipe_params = baseline_from_recipe(ws, pipeline, ws.competition(competition))
        for m, p in params.items():  # --param still wins over the recipe
            recipe_params.setdefault(m, {}).update(p)
        params = recipe_params
    result = run_baseline(competition, models=models, k=k, seed=seed, params=params,
                          time_budget=time_budget, workspace=ws, progress=True, submit=submit, new=new, bags=bags,
                          repeats=repeats)
    _print(console(), result)


def _print(out, result) -> None:  # noqa: ANN001
    """The features used, the models' table, notes, plots and the submission."""
    from rich.table import Table

    from ..runs import cv_se

    plan = result.plan
    out.print(f"features used ({len(plan.used)}): {', '.join(plan.used)}", markup=False)
    for col, why in plan.dropped.items():
        out.print(f"  dropped {col}: {why}", style="dim", markup=False)
    repeats = max(len(r.run.scores.get("repeat_cv", [])) for r in result.results)
    table = Table(title=f"{result.competition}: {result.metric}, {len(result.results[0].fold_scores)}-fold CV"
                        f"{f' repeated {repeats}x' if repeats > 1 else ''} (folds {result.fold_id})")
    for col in ("model", "CV", "± s.e.", "folds", "time", "run"):
        table.add_column(col)
    for r in result.results:
        table.add_row(r.model + (" *" if r is result.best else ""), fmt(r.cv), fmt(cv_se(r.fold_scores)),
                      " ".join(fmt(s, 3) for s in r.fold_scores),
                      "reused" if r.reused else f"{r.seconds:.1f}s", r.run.id)
    out.print(table)
    for r in result.results:
        if r.run.scores.get("repeat_cv"):
            each = " ".join(fmt(x) for x in r.run.scores["repeat_cv"])
            out.print(f"{r.model}: repeated k-fold, each split's own CV {each}; the CV above is that of their "
                      "averaged OOF predictions, scored on the shared folds", markup=False)
    for note in result.notes:
        out.print(note, markup=False)
    if any(r.reused for r in result.results):
        out.print("reused: identical runs (same configuration, data and folds) had finished before; --new runs "
                  "them again", style="dim", markup=False)
    for r in result.results:
        out.print(f"feature importance ({r.model}): {r.run.path / 'importance.png'}", markup=False)
    if result.submission:
        out.print(f"submission ({result.chosen}): {result.submission}", markup=False)
    if result.holdout is not None:
        out.print(f"held-out score of the submission: {result.holdout:.4f}")
    out.print(f"done in {result.seconds:.1f}s")
