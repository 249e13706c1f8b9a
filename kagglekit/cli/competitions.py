"""``kk list``, ``kk validate``, ``kk score``: competitions and submission files."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import COMPETITION, app, console, fmt, workspace


@app.command("init")
def init(folder: Path = typer.Argument(Path("."), help="the folder to make a workspace [default: here]")) -> None:
    """Make FOLDER a kagglekit workspace (competitions/, pipelines/, .gitignore); nothing existing is touched."""
    from ..workspace import GITIGNORE, init_workspace

    ws, created = init_workspace(folder)
    out = console()
    for path in created:
        out.print(f"created {path}", markup=False)
    if not created:
        out.print(f"{ws.root} is already a kagglekit workspace", markup=False)
    gitignore = (ws.root / ".gitignore").read_text(encoding="utf-8").split()
    missing = [g for g in GITIGNORE if g not in gitignore and "/" + g not in gitignore]
    if missing:
        out.print(f"your .gitignore was left as it was; runs write to {', '.join(missing)}: add them to it",
                  markup=False)
    out.print("next: kk list (built-in competitions need no data), kk baseline playground-churn, "
              "or kk new <slug> for a Kaggle competition", markup=False)


@app.command("list")
def list_competitions() -> None:
    """List the workspace's competitions: kind, metric, whether data is present, best CV."""
    from rich.table import Table

    from ..errors import KKError
    from ..runs import RunStore

    ws = workspace()
    table = Table(title=f"competitions in {ws.competitions_dir} and kagglekit's own")
    own = set(ws.own_competition_names())
    for col in ("competition", "spec", "kind", "target(s)", "metric", "data", "runs", "best CV"):
        table.add_column(col)
    from rich.text import Text

    invalid = []
    for name in ws.competition_names():
        try:
            comp = ws.competition(name)
        except KKError as e:  # shown whole, below the table, as plain text ("[cv]" is not markup)
            table.add_row(name, "workspace" if name in own else "kagglekit", Text("invalid spec", style="red"),
                          "", "", "", "", "")
            invalid.append(str(e))
            continue
        data_dir = ws.data_dir(comp)
        data = "built-in" if comp.builtin and not data_dir.is_dir() else ("yes" if data_dir.is_dir() else "no")
        store = RunStore(ws, name)
        ranked, best = store.ranked(comp.metric), store.best(comp.metric)
        targets = ", ".join(t.name + ("" if t.submit else " (aux)") for t in comp.targets)
        table.add_row(name, "workspace" if name in own else "kagglekit", comp.kind, targets, comp.metric, data,
                      str(len(ranked)), fmt(best.cv if best else None))
    out = console()
    out.print(table)
    for message in invalid:
        out.print(f"invalid spec: {message}", style="red", markup=False, soft_wrap=True)


@app.command("validate")
def validate(competition: str = COMPETITION,
             file: Path = typer.Argument(..., help="the submission CSV", show_default=False)) -> None:
    """Check a submission CSV against the competition's expected format."""
    from rich.markup import escape

    from ..data import load_data
    from ..submissions import read_submission, validate_submission

    ws = workspace()
    data = load_data(ws.competition(competition), ws)
    problems = validate_submission(data, read_submission(file), file.name)
    out = console()
    if problems:
        for p in problems:
            out.print(f"[red]x[/red] {escape(p)}")
        raise typer.Exit(1)
    out.print(f"[green]ok[/green] {file} is a valid submission for {competition} ({len(data.test)} rows)")


@app.command("score")
def score(competition: str = COMPETITION,
          file: Path = typer.Argument(..., help="the submission CSV", show_default=False),
          solution: Path = typer.Option(None, help="CSV with the true test labels (default: the "
                                                    "competition's solution file, for built-ins)")) -> None:
    """Score a submission locally against a solution file with the competition's metric."""
    from ..data import load_data, read_table
    from ..errors import DataError
    from ..submissions import read_submission, score_submission

    ws = workspace()
    data = load_data(ws.competition(competition), ws)
    if solution is not None:
        sol = read_table(solution)
    elif data.solution is not None:
        sol = data.solution
    else:
        raise DataError(f"{competition} has no known solution; pass --solution SOLUTION.csv")
    value = score_submission(data, read_submission(file), sol)
    console().print(f"{data.comp.metric} = {value:.5f}")


@app.command("new")
def new(slug: str = typer.Argument(..., help="the Kaggle slug, e.g. titanic (the folder name in data/ and in the "
                                              "competition's URL)", show_default=False),
        name: str = typer.Option(None, "--name", help="folder name (default: the slug)"),
        download: bool = typer.Option(False, "--download", help="download the files from Kaggle first")) -> None:
    """Scaffold competitions/<name>/competition.toml from the competition's files, printing the guesses."""
    from ..scaffold import new_competition, notes

    path, guess = new_competition(slug, workspace(), name=name, download=download)
    out = console()
    out.print(f"wrote {path}", markup=False)
    for line in notes(guess):
        out.print(f"  guessed {line}", markup=False)
    command = "train" if guess.image is not None else "baseline"  # image competitions fine-tune a CNN
    out.print(f"check it, then: kk {command} {name or slug}", markup=False)


@app.command("bundle")
def bundle(dest: Path = typer.Argument(..., help="the folder the wheels are written to", show_default=False),
           extras: str = typer.Option("", "--extras", help="extras to include, e.g. vision"),
           deps: bool = typer.Option(True, "--deps/--no-deps", help="include the dependencies' wheels"),
           python_version: str = typer.Option(None, "--python-version",
                                              help="the notebook's Python, e.g. 3.11")) -> None:
    """Write wheels of kagglekit and its dependencies to DEST, for a Kaggle notebook without internet."""
    from ..bundle import bundle as run_bundle

    wheels = run_bundle(dest, extras=tuple(e for e in extras.split(",") if e), deps=deps,
                        python_version=python_version)
    out = console()
    out.print(f"{len(wheels)} wheels in {dest}; upload it as a Kaggle dataset, then in the notebook:", markup=False)
    out.print(f"  !pip install --no-index --find-links /kaggle/input/{Path(dest).name} kagglekit", markup=False)
