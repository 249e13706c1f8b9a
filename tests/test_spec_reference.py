"""The documentation's references cannot drift from the code: the spec page against the parser,
the CLI page against the Typer app."""

import re
from pathlib import Path

import pytest

from kagglekit.errors import SpecError
from kagglekit.spec import CVSpec, ImageSpec, TabularSpec, parse_spec
from kagglekit.spec_reference import KEYS, TABLES, example_spec, reference_markdown, shown_default
from kagglekit.trainconfig import SPEC_KEYS

FILE = Path("/x/competition.toml")


def accepted_keys(table: str) -> set[str]:
    """The keys the parser accepts in ``table``, read from its error on an unknown key."""
    probe = "zz_unknown_key"
    raw = example_spec(next(k for k in KEYS if k.table == table))
    if table == "":
        raw[probe] = 1
    elif table == "targets":
        raw["targets"][0][probe] = 1
    else:
        raw[table][probe] = 1
    with pytest.raises(SpecError) as e:
        parse_spec(raw, FILE)
    msg = str(e.value)
    assert f"'{probe}'" in msg.split(":")[2] or probe in msg, msg
    allowed = msg.split("allowed keys here are", 1)[1].split(";")[0]
    return set(re.findall(r"'([^']+)'", allowed))


@pytest.mark.parametrize("table", list(TABLES))
def test_every_key_the_parser_accepts_is_documented_and_nothing_more(table):
    documented = {k.key for k in KEYS if k.table == table}
    assert accepted_keys(table) == documented


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{k.table or 'top'}.{k.key}")
def test_every_documented_example_parses_to_its_value(key):
    comp = parse_spec(example_spec(key), FILE)
    if key.table in ("cv", "tabular", "files", "image") and key.key != "split":
        got = getattr(getattr(comp, key.table), key.key)
        want = tuple(key.example) if isinstance(key.example, list) else key.example
        assert got == (want or None if key.key in ("test", "sample_submission") else want)
    assert f"`{key.key}`" in reference_markdown()


def test_defaults_shown_are_the_dataclasses_own():
    by = {(k.table, k.key): k for k in KEYS}
    assert shown_default(by[("cv", "k")]) == str(CVSpec().k)
    assert shown_default(by[("cv", "repeats")]) == str(CVSpec().repeats)
    assert shown_default(by[("tabular", "max_cardinality")]) == str(TabularSpec().max_cardinality)
    assert shown_default(by[("image", "resize")]) == f'"{ImageSpec().resize}"'
    assert shown_default(by[("targets", "submit")]) == "true"
    assert shown_default(by[("", "id")]) == "required"


def test_every_train_key_is_in_the_reference():
    text = reference_markdown().split("### `train`", 1)[1]
    missing = [k for k in SPEC_KEYS if f"| `{k}` |" not in text]
    assert not missing
    assert "| `device` |" not in text  # a machine setting is a flag, not a [train] key


def test_every_cli_command_argument_and_option_is_in_the_generated_reference_with_help():
    from kagglekit.cli._reference import cli_reference_markdown, root_command

    text = cli_reference_markdown()
    sections = dict(part.split("`\n", 1) for part in text.split("## `kk ")[1:])
    root = root_command()
    ctx = root.context_class(root, info_name="kk")
    assert set(sections) == set(root.list_commands(ctx))
    seen = 0
    for name, section in sections.items():
        for p in root.get_command(ctx, name).params:
            shown = [f"`{p.name.upper()}`"] if p.param_type_name == "argument" else [f"`{o}`" for o in p.opts]
            assert all(s in section for s in shown), f"kk {name}: {shown} missing from the CLI reference"
            assert p.help, f"kk {name} {shown[0]}: no help text for the reference"
            seen += 1
    assert seen > 80
