"""``kk train``'s flags, one per TrainConfig field, made from the fields themselves: their names,
types, allowed values, help and defaults (``kagglekit.trainconfig``). A new field is a new flag
with no change here."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import Field
from enum import StrEnum
from typing import Any

import typer

from ..trainconfig import TrainConfig, fields_of, flag_of, help_of


def parse_ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise typer.BadParameter(f"expected whole numbers like 128 or 128,224, found {text!r}") from None


def parse_bool_or_auto(text: str) -> bool | str:
    low = text.lower()
    if low == "auto":
        return "auto"
    if low in ("true", "yes", "1"):
        return True
    if low in ("false", "no", "0"):
        return False
    raise typer.BadParameter(f"expected auto, true or false, found {text!r}")


def _cli_type(f: Field, kind: Any) -> tuple[Any, Callable[[Any], Any]]:
    """(the type Typer parses, the conversion to the field's value) of field ``f`` of type ``kind``."""
    choices = f.metadata.get("choices")
    if choices:
        return StrEnum(f"{f.name.title()}Choice", {c: c for c in choices}), lambda v: str(v.value)
    parts = set(typing.get_args(kind)) or {kind}
    parts.discard(type(None))
    if parts == {bool, str}:
        return str, parse_bool_or_auto
    if any(typing.get_origin(p) is tuple for p in parts):
        return str, parse_ints
    if len(parts) == 1 and next(iter(parts)) in (bool, int, float, str):
        return next(iter(parts)), lambda v: v
    return str, lambda v: v  # a number or a word (lr, probe_c): TrainConfig converts and checks


def _option(f: Field, kind: Any) -> Any:
    flag = flag_of(f)
    decls = [flag] if f.metadata.get("short") is None else [flag, f.metadata["short"]]
    if kind is bool:
        decls = [f"{flag}/--no-{flag[2:]}"]
    return typer.Option(None, *decls, help=help_of(f), show_default=False)


def with_train_options(names: tuple[str, ...] | None = None, cls: type = TrainConfig,
                       ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command one flag per field of ``cls`` (or per field of ``names``). The command takes
    the flags the user gave, converted to the fields' values, as its ``options`` argument (a dict)."""
    every, hints = fields_of(cls), typing.get_type_hints(cls)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(func)
        own = [p for p in sig.parameters.values() if p.name != "options"]
        chosen = tuple(every) if names is None else names
        added, convert = [], {}
        for name in chosen:
            typ, convert[name] = _cli_type(every[name], hints[name])
            added.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                           default=_option(every[name], hints[name]), annotation=typ))
        first, rest = own[:1], [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[1:]]

        @functools.wraps(func)
        def command(**kw: Any) -> Any:
            given = {name: kw.pop(name, None) for name in chosen}
            options = {name: convert[name](v) for name, v in given.items() if v is not None}
            return func(**kw, options=options)

        params = [*first, *added, *rest]
        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate

