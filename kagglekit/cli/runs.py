"""``kk runs``: the run store of a competition."""

from __future__ import annotations

import typer

from ._app import app, console, fmt, workspace


@app.command("runs")
def list_runs(competition: str,
              as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
              all_runs: bool = typer.Option(False, "--all", help="include incomplete runs")) -> None:
    """List runs best first: CV (mean ± std over folds), held-out and leaderboard scores."""
    import json

    from ..runs import RunStore

    ws = workspace()
    comp = ws.competition(competition)
    runs = RunStore(ws, comp.name).ranked(comp.metric, complete_only=not all_runs)
    rows = [r.summary() for r in runs]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{comp.name} runs ({comp.metric}, {'higher' if _greater(comp.metric) else 'lower'} is better)")
    for col in ("run", "kind", "models", "CV", "± std", "holdout", "LB", "created"):
        table.add_column(col)
    for s in rows:
        table.add_row(s["id"] + ("" if s["complete"] else " (incomplete)"), s["kind"] or "-",
                      ",".join(s["models"]), fmt(s["cv"]), fmt(s["cv_std"]), fmt(s["holdout"]), fmt(s["lb"]),
                      (s["created"] or "")[:19])
    out = console()
    out.print(table)
    if not rows:
        out.print(f"no runs yet: start with 'kk baseline {comp.name}'" if comp.kind == "tabular"
                  else f"no runs yet: start with 'kk train {comp.name}'")


def _greater(metric: str) -> bool:
    from ..metrics import get_metric

    return get_metric(metric).greater_is_better
