"""``kk runs``: the run store of a competition."""

from __future__ import annotations

import typer

from ._app import COMPETITION, app, console, fmt, workspace


@app.command("runs")
def list_runs(competition: str = COMPETITION,
              as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
              all_runs: bool = typer.Option(False, "--all", help="include incomplete runs"),
              plot: bool = typer.Option(False, "--plot", help="PNG of CV against public and private LB of every "
                                                              "submitted run, with their correlation")) -> None:
    """List runs best first: CV ± its standard error, the gap to the best run (≈ when within the
    folds' noise), held-out and leaderboard scores."""
    import json

    from ..runs import RunStore
    from ..runs.table import run_table

    ws = workspace()
    comp = ws.competition(competition)
    store = RunStore(ws, comp.name)
    runs, rows, best = run_table(store, comp.metric, complete_only=not all_runs)
    if as_json:
        print(json.dumps(rows, indent=2))
    elif plot:
        _plot(ws, comp, runs)
    else:
        out = console()
        out.print(_table(comp, runs, rows, best))
        for line in _notes(comp, store, rows, all_runs):
            out.print(line, markup=False)


def _table(comp, runs, rows, best):  # noqa: ANN001, ANN202
    from rich.table import Table

    table = Table(title=f"{comp.name} runs ({comp.metric}, {'higher' if _greater(comp.metric) else 'lower'} is better)")
    for col in ("run", "kind", "models", "folds", "CV", "± s.e.", "vs best", "holdout", "LB", "created"):
        table.add_column(col)
    for i, s in enumerate(rows):
        gap = s["vs_best"]
        vs = "best" if runs[i] is best else "-" if gap is None else \
            (f"≈ {gap['diff']:+.4f}" if gap["indistinguishable"] else f"{gap['diff']:+.4f} worse")
        state = f" (broken: {s['broken']})" if s["broken"] else "" if s["complete"] else " (incomplete)"
        table.add_row(s["id"] + state, s["kind"] or "-",
                      ",".join(s["models"]), s.get("folds_done") or "-", fmt(s["cv"]), fmt(s["cv_se"]), vs,
                      fmt(s["holdout"]), fmt(s["lb"]),
                      (s["created"] or "")[:19])
    return table


def _notes(comp, store, rows: list[dict], all_runs: bool) -> list[str]:  # noqa: ANN001
    """Lines under the table: broken runs skipped, runs over some folds, runs tied with the best."""
    out = []
    broken = [r for r in store.runs(complete_only=False) if r.problem]
    if broken and not all_runs:
        out.append(f"{len(broken)} broken run(s) skipped (e.g. {broken[0].problem}); 'kk runs {comp.name} --all' "
                   "lists them")
    partial = [s["id"] for s in rows if s.get("partial")]
    if partial:
        out.append(f"{len(partial)} run(s) cover some folds only (e.g. {partial[0]}): their CV is not comparable and "
                   f"they are never 'best'; train the other folds (kk train {comp.name} --folds ...) and join them "
                   f"with kk merge {comp.name} RUN_A RUN_B")
    ties = [s["id"] for s in rows if s["vs_best"] and s["vs_best"]["indistinguishable"]]
    if ties:
        out.append(f"≈: within two standard errors of the best run's per-fold scores ({len(ties)} run(s)): "
                   "their order is fold-sampling luck; a blend of them (kk ensemble) is the safer submission")
    if not rows:
        out.append(f"no runs yet: start with 'kk baseline {comp.name}'" if comp.kind == "tabular"
                   else f"no runs yet: start with 'kk train {comp.name}'")
    return out


def _greater(metric: str) -> bool:
    from ..metrics import get_metric

    return get_metric(metric).greater_is_better


def _plot(ws, comp, runs) -> None:
    from datetime import datetime

    from ..errors import RunError
    from ..plots import correlation, cv_vs_lb, cv_vs_lb_png

    points = cv_vs_lb(runs)
    if not points:
        raise RunError(f"no run of {comp.name} has leaderboard scores yet: submit (kk submit {comp.name}), then "
                       f"fetch the scores (kk submissions {comp.name})")
    path = ws.runs_dir(comp.name) / "plots" / f"cv-vs-lb-{datetime.now():%Y%m%d-%H%M%S}.png"
    cv_vs_lb_png(points, comp.metric, path, f"{comp.name}: CV vs leaderboard, {len(points)} runs")
    out = console()
    for board in ("public", "private"):
        r = correlation(points, board)
        out.print(f"CV vs {board} LB: " + (f"r = {r:.2f} over {len(points)} runs" if r is not None
                                           else "too few scored runs for a correlation"), markup=False)
    out.print(f"plot: {path}", markup=False)
