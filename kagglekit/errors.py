"""User-facing errors.

Every error a user can cause by their input derives from :class:`KKError`. Its message is one
line that names the file, key or column, what was expected and what was found, and a fix where
one exists. The CLI prints it without a traceback (``KK_DEBUG=1`` shows one).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class KKError(Exception):
    """Base class of the errors kagglekit reports to users as one line."""


class SpecError(KKError):
    """A competition spec (competition.toml) or a recipe is invalid."""


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
