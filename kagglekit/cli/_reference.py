"""The CLI reference, rendered from the Typer app itself (the documentation's CLI page).

sphinx-click cannot read this app: Typer (0.29) carries its own copy of Click, whose commands are
not ``click.Command`` instances. The tree is walked here instead, through the Click API that copy
keeps (``commands``, ``params``, ``get_usage``), so every command and option is in the page by
construction; ``tests/test_spec_reference.py`` checks that each one is there, with help.
"""

from __future__ import annotations

import re
from typing import Any


def root_command() -> Any:
    """The ``kk`` command tree, as Click (Typer's copy) sees it."""
    import typer.main

    from . import app

    return typer.main.get_command(app)


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(p: Any) -> str:
    d = p.default
    if d is None or callable(d) or getattr(p, "required", False):
        return ""
    if getattr(p, "is_flag", False) and getattr(p, "secondary_opts", None):
        return p.opts[0] if d else p.secondary_opts[0]
    if isinstance(d, bool):
        return "on" if d else ""
    if isinstance(d, (list, tuple)):
        return ",".join(map(str, d)) if d else ""
    return f"`{_cell(getattr(d, 'value', d))}`"


def _options(cmd: Any) -> list[str]:
    rows = []
    for p in cmd.params:
        if getattr(p, "hidden", False):
            continue
        if p.param_type_name == "argument":
            rows.append(f"| `{p.name.upper()}` | {'required' if p.required else ''} | {_cell(p.help or '')} |")
        else:
            names = " / ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
            rows.append(f"| {names} | {_default(p)} | {_cell(p.help or '')} |")
    return ["| argument or option | default | meaning |", "|---|---|---|", *rows] if rows else []


def command_markdown(name: str, cmd: Any, parent: Any) -> list[str]:
    """One command's section: its help, usage line and options."""
    ctx = cmd.context_class(cmd, info_name=name, parent=parent)
    usage = re.sub(r"[{\[](\w+)[}\]]", lambda m: m.group(0)[0].replace("{", "") + m.group(1).upper()
                   + m.group(0)[-1].replace("}", ""), cmd.get_usage(ctx).replace("Usage: ", ""))
    return [f"## `kk {name}`", "", (cmd.help or "").strip(), "", "```text", usage, "```", "", *_options(cmd), ""]


def cli_reference_markdown() -> str:
    """Every ``kk`` command with its usage, arguments and options, as Markdown."""
    root = root_command()
    ctx = root.context_class(root, info_name="kk")
    out = [(root.help or "").strip(), "", "Every command takes `-h` / `--help`. Known errors print one line; "
           "`KK_DEBUG=1` shows the traceback.", ""]
    for name in root.list_commands(ctx):
        out += command_markdown(name, root.get_command(ctx, name), ctx)
    return "\n".join(out)
