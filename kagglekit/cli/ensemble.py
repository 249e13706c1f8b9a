"""``kk ensemble``: blend the out-of-fold predictions of several runs."""

from __future__ import annotations

import typer

from ._app import COMPETITION, NEW, SUBMIT, Method, app, console, fmt, workspace


@app.command("ensemble")
def ensemble(
    competition: str = COMPETITION,
    runs: list[str] = typer.Argument(None, help="run ids (default: every complete run on the shared folds)"),
    method: Method = typer.Option(Method.greedy, "--method", help="how to blend: greedy (Caruana), mean, rank, "
                                                                 "weights (optimised) or stacking"),
    submit: bool = SUBMIT,
    new: bool = NEW,
) -> None:
    """Blend OOF predictions of runs into an ensemble run and a validated submission."""
    from rich.table import Table

    from ..blend import ensemble as run_ensemble

    result = run_ensemble(competition, runs or None, method=method.value, workspace=workspace(), submit=submit,
                          new=new)
    out = console()
    table = Table(title=f"{competition}: {method.value} ensemble")
    for col in ("member", "CV", "weight"):
        table.add_column(col)
    for run_id, cv, w in result.members:
        table.add_row(run_id, fmt(cv), f"{w:.3f}")
    table.add_row("[bold]ensemble[/bold]", f"[bold]{fmt(result.cv)}[/bold]", "")
    out.print(table)
    for s in result.skipped:
        out.print(f"skipped {s}", style="dim", markup=False)
    for note in result.notes:
        out.print(note, markup=False)
    assert result.run is not None
    out.print(f"run: {result.run.id}" + (" (reused: the same blend of the same runs was made before)"
                                         if result.reused else ""), markup=False)
    if result.submission:
        out.print(f"submission: {result.submission}")
    if result.holdout is not None:
        out.print(f"held-out score of the submission: {result.holdout:.4f}")
