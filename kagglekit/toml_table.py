"""Reading a TOML table with checks: types, allowed values and leftover (unknown) keys, each error
naming the file and the dotted key. Used for competition specs and pipeline recipes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import SpecError, did_you_mean, one_of


class TomlTable:
    """A TOML table being read: checks types, allowed values and leftover (unknown) keys."""

    def __init__(self, data: Any, where: str, file: Path):
        self.file = file
        self.where = where  # dotted key of this table, "" at the top
        if not isinstance(data, dict):
            raise self.error("", f"expected a table, found {type(data).__name__} {data!r}")
        self.data = dict(data)
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def error(self, name: str, msg: str) -> SpecError:
        key = self.key(name) if name else (self.where or "(top level)")
        return SpecError(f"{self.file}: key '{key}': {msg}")

    def get(self, name: str, typ: type | tuple[type, ...], default: Any = None, *, required: bool = False,
            choices: tuple[str, ...] | None = None) -> Any:
        self.seen.add(name)
        if name not in self.data:
            if required:
                raise self.error(name, "is required but missing")
            return default
        value = self.data[name]
        types = typ if isinstance(typ, tuple) else (typ,)
        if bool not in types and isinstance(value, bool) or not isinstance(value, types):
            expected = " or ".join(t.__name__ for t in types)
            raise self.error(name, f"expected {expected}, found {type(value).__name__} {value!r}")
        if choices is not None and value not in choices:
            raise self.error(name, f"expected {one_of(choices)}, found {value!r}{did_you_mean(str(value), choices)}")
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        value = self.get(name, (list, str), [])
        if isinstance(value, str):
            value = [value]
        if not all(isinstance(v, str) for v in value):
            raise self.error(name, f"expected a list of strings, found {value!r}")
        return tuple(value)

    def table(self, name: str) -> TomlTable | None:
        self.seen.add(name)
        if name not in self.data:
            return None
        return TomlTable(self.data[name], self.key(name), self.file)

    def finish(self) -> None:
        unknown = [k for k in self.data if k not in self.seen]
        if unknown:
            k = unknown[0]
            raise self.error(k, f"unknown key; allowed keys here are {one_of(sorted(self.seen))}"
                             f"{did_you_mean(k, self.seen)}")
