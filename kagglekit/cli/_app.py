"""The Typer application and helpers shared by the command modules (no heavy imports)."""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ..workspace import Workspace

app = typer.Typer(
    name="kk",
    help="kagglekit: from raw competition files to a strong, validated Kaggle submission.",
    no_args_is_help=True,
    add_completion=True,  # kk --install-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Method(StrEnum):
    """kk ensemble --method (the library's ``blend.METHODS``)."""

    greedy = "greedy"
    mean = "mean"
    rank = "rank"
    weights = "weights"
    stacking = "stacking"


class Device(StrEnum):
    """kk train --device."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


def value(choice: Enum | None) -> str | None:
    """The plain string of an Enum choice, for the library."""
    return None if choice is None else str(choice.value)


# options shared by several commands, declared once (huggingface_hub's CLI does the same)
COMPETITION = typer.Argument(..., help="a competition of the workspace or of kagglekit's own (kk list shows them)",
                             show_default=False)
NEW = typer.Option(False, "--new", help="run again even when an identical finished run exists (by default it is "
                                        "reused: same configuration, same data, same folds)")
SUBMIT = typer.Option(True, "--submit/--no-submit", help="write the validated submission CSV")


def console(stderr: bool = False) -> Console:
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped output (CI logs, files) gets wide tables rather than 80 columns of wrapped ids
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 160)


def workspace() -> Workspace:
    from ..workspace import Workspace

    return Workspace.find()


def fmt(score: float | None, digits: int = 4) -> str:
    if score is None or score != score:
        return "-"
    return f"{score:.{digits}f}"


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("kagglekit")
        except PackageNotFoundError:  # run from a source tree that is not installed
            v = "unknown (not installed)"
        print(f"kagglekit {v}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print kagglekit's version and exit")) -> None:
    """kagglekit: from raw competition files to a strong, validated Kaggle submission."""
