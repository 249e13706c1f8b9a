"""The ``kk`` command line. One module per command group; each command parses its arguments,
calls one library function and prints. Library imports happen inside the commands, so
``kk --help`` never loads pandas, torch, timm, lightgbm or kaggle."""

from __future__ import annotations

import os
import sys

from . import (  # noqa: F401  (register commands)
    check,
    competitions,
    doctor,
    ensemble,
    kaggle,
    pipeline,
    runs,
    tabular,
    tune,
    vision,
)
from ._app import app


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``kk``: known errors become one line and exit code 1 (KK_DEBUG=1: traceback)."""
    from ..errors import KKError, one_line_warnings

    one_line_warnings()
    try:
        app(args=argv, prog_name="kk")
    except SystemExit as e:  # click exits even on success; callers of main() want it to return
        interrupt = _interrupt_behind(e)
        if interrupt is not None:  # typer turns Ctrl-C into a silent exit 130: say so, and how to go on
            print(f"interrupted; {interrupt}" if str(interrupt) else "interrupted", file=sys.stderr)
            sys.exit(130)
        if e.code not in (0, None):
            raise
    except KKError as e:
        if os.environ.get("KK_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:  # a full disk (Kaggle's /kaggle/working holds ~20 GB): one line, what to delete
        import errno

        if e.errno != errno.ENOSPC or os.environ.get("KK_DEBUG"):
            raise
        from ..workspace import Workspace, disk_full_message

        try:
            ws = Workspace.find()
        except KKError:
            ws = None
        print(f"error: {disk_full_message(e, ws)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:
        print(f"interrupted; {e}" if str(e) else "interrupted", file=sys.stderr)
        sys.exit(130)


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C an exit was raised from (typer raises click's ``Exit(130)`` from the KeyboardInterrupt,
    whose message may say how to go on: ``kk train``'s ``continue with: kk train ... --resume ID``)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None or isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
