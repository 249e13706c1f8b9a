"""``kk run``: a competition's whole recipe, stage by stage."""

from __future__ import annotations

import typer

from ._app import COMPETITION, app, console, fmt, workspace


@app.command("run")
def run(competition: str = COMPETITION,
        pipeline: str = typer.Option(None, "--pipeline", help="recipe in pipelines/ (default: the spec's)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="print the plan and its estimated cost only")) -> None:
    """Run the recipe: baseline -> models small to large -> ensemble; finished stages are reused."""
    from ..pipeline import run_pipeline

    out = console()

    def on_stage(o) -> None:
        ids = ", ".join(r.id for r in o.runs)
        if o.status == "absent":
            out.print(f"  {o.stage.name:10s} {o.stage.pipeline:9s} left out: {o.note}", markup=False)
        elif o.status == "planned":
            est = f"~{o.estimate_s / 60:.1f} min" if o.estimate_s is not None else "?"
            out.print(f"  {o.stage.name:10s} {o.stage.pipeline:9s} to run, estimated {est}  {o.stage.params}",
                      markup=False)
        else:
            cv = " ".join(fmt(r.cv) for r in o.runs)
            out.print(f"  {o.stage.name:10s} {o.stage.pipeline:9s} {o.status:7s} {o.seconds:6.1f}s  CV {cv}  {ids}",
                      markup=False)

    result = run_pipeline(competition, pipeline, workspace=workspace(), dry_run=dry_run, progress=True,
                          on_stage=on_stage)
    if dry_run:
        from ..pipeline import missing_data

        ws = workspace()
        why = missing_data(ws.competition(competition), ws)
        todo = [o for o in result.outcomes if o.status == "planned"]
        if why:
            out.print(f"plan of recipe '{result.recipe}': no estimate yet, {why}", markup=False)
        elif any(o.estimate_s is None for o in todo):
            out.print(f"plan of recipe '{result.recipe}': some stages cannot be estimated", markup=False)
        else:
            total = sum(o.estimate_s or 0 for o in todo)
            out.print(f"plan of recipe '{result.recipe}': estimated {total / 60:.1f} min for the stages to run")
        return
    out.print(f"recipe '{result.recipe}' done in {result.seconds:.1f}s; final CV {fmt(result.cv)}")
    for o in result.outcomes:  # what the ensemble gained over its best member, beyond the folds' noise or not
        for note in (o.runs[0].scores.get("notes", []) if o.stage.pipeline == "ensemble" and o.runs else []):
            out.print(f"ensemble: {note}", markup=False)
    if result.holdout is not None:
        out.print(f"held-out score of the submission: {result.holdout:.4f}")
    if result.submission:
        out.print(f"submission: {result.submission}")
