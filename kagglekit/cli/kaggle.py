"""``kk download``, ``kk submit``, ``kk submissions``: talking to Kaggle (needs the kaggle extra)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import COMPETITION, app, console, fmt, workspace


@app.command("download")
def download(competition: str = COMPETITION,
             force: bool = typer.Option(False, "--force", help="download again; the old folder is kept aside")) -> None:
    """Download and safely extract the competition's files into its data folder."""
    from ..kaggle_client import download as run_download

    ws = workspace()
    path = run_download(ws.competition(competition), ws, force=force)
    console().print(f"downloaded {competition} into {path}: {', '.join(sorted(p.name for p in path.iterdir()))}",
                    markup=False)


@app.command("submit")
def submit(competition: str = COMPETITION,
           file: Path = typer.Argument(None, help="submission CSV (default: the run's)"),
           run: str = typer.Option(None, "--run", help="submit this run's submission (an id, a unique prefix, "
                                                      "latest or best) [default: best]"),
           message: str = typer.Option(..., "--message", "-m", help="the submission's description")) -> None:
    """Validate a submission against the sample submission, then submit it to Kaggle."""
    from ..errors import SubmissionError
    from ..kaggle_client import submit as run_submit
    from ..runs import RunStore

    ws = workspace()
    comp = ws.competition(competition)
    if file is None:
        chosen = RunStore(ws, comp.name).get(run or "best")
        run = chosen.id
        path = chosen.scores.get("submission")
        if not path:
            raise SubmissionError(f"run {run} has no submission file (a run over some folds only, or written "
                                  "with --no-submit); give a FILE or another --run")
        file = Path(path)
        console().print(f"run {run}: {file}", markup=False)
    record = run_submit(comp, ws, file, message, run_id=run)
    console().print(f"submitted {file} ({record['kaggle_message'] or 'ok'})"
                    + (f"; recorded in run {record['run']}" if record.get("run") else ""), markup=False)


@app.command("submissions")
def submissions(competition: str = COMPETITION) -> None:
    """Fetch your submissions' public/private scores and store them beside the runs' CV."""
    from rich.table import Table

    from ..kaggle_client import fetch_submissions

    ws = workspace()
    rows = fetch_submissions(ws.competition(competition), ws)
    table = Table(title=f"{competition}: submissions")
    for col in ("date", "file", "status", "public", "private", "run", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row((r["date"] or "")[:19], r["file"] or "", r["status"], fmt(r["public"], 5), fmt(r["private"], 5),
                      r["run"] or "-", r["description"] or "")
    console().print(table)
