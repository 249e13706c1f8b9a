"""User-facing errors.

Every error a user can cause by their input derives from :class:`KKError`. Its message is one
line that names the file, key or column, what was expected and what was found, and a fix where
one exists. The CLI prints it without a traceback (``KK_DEBUG=1`` shows one).
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterable


class KKError(Exception):
    """Base class of the errors kagglekit reports to users as one line."""


class SpecError(KKError):
    """A competition spec (competition.toml) or a recipe is invalid."""


class OptionError(KKError):
    """A command-line option or a function's argument has a bad value (``--folds 1``, ``--lr abc``)."""


class DataError(KKError):
    """Competition data is missing or does not match its spec."""


class SubmissionError(KKError):
    """A submission does not match the competition's expected format."""


class RunError(KKError):
    """A run in the run store is missing, incomplete or incompatible."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close."""
    matches = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def one_of(choices: Iterable[str]) -> str:
    """Format allowed values for a message: ``'a', 'b' or 'c'``."""
    items = [f"'{c}'" for c in choices]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def missing_both_ways(a: set[str], a_name: str, b: set[str], b_name: str) -> str:
    """'N of a are not in b (e.g. x); M of b are not in a (e.g. y)': what two id sets lack."""
    parts = []
    for src, src_name, other, other_name in ((b, b_name, a, a_name), (a, a_name, b, b_name)):
        extra = sorted(src - other)
        if extra:
            parts.append(f"{len(extra)} {src_name} are not in {other_name} (e.g. {extra[0]!r})")
    return "; ".join(parts)


def one_line_warnings() -> None:
    """Show warnings as one line each, ``warning: <message>``, without Python's file:line and source
    line under them (``result = run_train(...``): for the command line and its DDP processes.
    KK_DEBUG=1 keeps Python's format."""
    import warnings

    if os.environ.get("KK_DEBUG"):
        return

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        print(f"warning: {message}", file=file or sys.stderr)

    warnings.showwarning = show
