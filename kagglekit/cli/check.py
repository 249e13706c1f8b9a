"""``kk check``: adversarial validation and leak checks (does the CV tell the truth?)."""

from __future__ import annotations

import typer

from ._app import COMPETITION, app, console, workspace


@app.command("check")
def check(
    competition: str = COMPETITION,
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
    arch: str = typer.Option(None, "--arch", help="images: the timm model whose embeddings are compared "
                                                  "(default: the spec's [train] arch)"),
    weights: str = typer.Option(None, "--weights", help="images: local weight file or folder (default: "
                                                        "KK_WEIGHTS_DIR)"),
) -> None:
    """Tell train rows from test rows: the AUC, what separates them, leaks, and what to do about it."""
    import json

    from ..check import check as run_check

    report = run_check(competition, workspace=workspace(), arch=arch, weights=weights)
    out = console()
    if json_out:
        print(json.dumps(report.as_json(), indent=2, default=str))
        return
    how = "LightGBM, 5-fold" if report.features else "logistic regression on embeddings"
    out.print(f"{report.competition}: {report.n_train} train rows vs {report.n_test} test rows, "
              f"train-vs-test AUC {report.auc:.3f} ({how})", markup=False)
    from rich.table import Table

    table = Table(title="features that tell train from test (top 10)")
    for col in ("feature", "AUC alone", "gain", "test out of range", "train", "test"):
        table.add_column(col)
    for f in report.features[:10]:
        table.add_row(f.name + (" (drop)" if f.name in report.drop else ""), f"{f.auc:.3f}", f"{f.gain:.0%}",
                      f"{f.out_of_range:.0%}", f.train_range, f.test_range)
    if report.features:
        out.print(table)
    for line in report.findings:
        out.print(f"leak check: {line}", markup=False)
    if not report.findings:
        out.print("leak checks: no duplicate rows across the sets, no id or row order tied to the target, "
                  "no column constant or missing in test only", markup=False)
    for line in report.verdict:
        out.print(f"-> {line}", markup=False)
    table_line = ", ".join(f'{k} = "{v}"' for k, v in report.cv.items())
    out.print(f"suggested [cv]: {table_line} ({report.cv_reason})", markup=False)
    if report.folder:
        out.print(f"report, train rows ranked by test-likeness and plot: {report.folder}", markup=False)
