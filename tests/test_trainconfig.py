"""TrainConfig is the single source of a training run's settings: the spec's [train] keys, their
type checks, recipe stages and kk train's flags with their help all come from its fields."""

from __future__ import annotations

import dataclasses
import json
import textwrap

import pytest
import typer
from typer.testing import CliRunner

from kagglekit.errors import SpecError
from kagglekit.spec import load_spec
from kagglekit.trainconfig import FIELDS, SPEC_KEYS, TrainConfig, _opt, check_table, check_value, spec_keys

SPEC = """id = "image_id"
metric = "accuracy"
kind = "image"
[[targets]]
name = "label"
task = "multiclass"
[image]
layout = "csv"
train_path = "train/{image_id}"
"""


def write_spec(tmp_path, train: str):
    folder = tmp_path / "flowers"
    folder.mkdir()
    path = folder / "competition.toml"
    path.write_text(SPEC + "[train]\n" + textwrap.dedent(train), encoding="utf-8")
    return path


@pytest.mark.parametrize(("train", "message"), [
    ('epochs = "five"', "key 'train.epochs': expected an integer, found str 'five'"),
    ("ema = true", "key 'train.ema': expected a number, found bool True"),
    ('keep = "los"', "key 'train.keep': expected 'loss', 'metric' or 'last', found 'los' (did you mean 'loss'?)"),
    ('sizes = ["big"]', "key 'train.sizes': expected a list of integers, found list ['big']"),
    ('lr = "fast"', "key 'train.lr': expected a number or 'auto', found 'fast'"),
    ("polcy = 'trivial'", "key 'train.polcy': unknown key; allowed keys here are 'arch', "),
    ("devices = 2", "key 'train.devices': unknown key"),  # how this machine runs, not what is trained
    ("epochs = 0", "'train.accum', 'train.batch_size' and 'train.epochs' must be at least 1"),  # not "--epochs"
])
def test_a_bad_train_value_is_one_line_naming_the_spec_file_and_key(tmp_path, train, message):
    path = write_spec(tmp_path, train)
    with pytest.raises(SpecError) as e:
        load_spec(path)
    text = str(e.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_good_train_values_pass_as_written(tmp_path):
    path = write_spec(tmp_path, """\
        epochs = 6
        sizes = [192, 260]
        lr = "auto"
        ema = 0
        probe_c = 0.5
        pretrained = false
        policy = "trivial"
        """)
    comp = load_spec(path)
    assert comp.train["sizes"] == [192, 260] and comp.train["ema"] == 0
    config = TrainConfig(**{**comp.train, "sizes": tuple(comp.train["sizes"])})
    assert (config.epochs, config.policy, config.probe_c) == (6, "trivial", 0.5)


def test_a_recipe_stage_is_checked_like_train_and_names_its_file(tmp_path):
    from kagglekit.pipeline import load_recipe
    from kagglekit.workspace import Workspace

    (tmp_path / "competitions").mkdir()
    (tmp_path / "pipelines").mkdir()
    recipe = tmp_path / "pipelines" / "mine.toml"
    recipe.write_text('[[stages]]\nname = "a"\npipeline = "train"\nepochs = "five"\n', encoding="utf-8")
    with pytest.raises(SpecError, match=r"mine.toml: key 'stages\[0\].epochs': expected an integer, found str"):
        load_recipe(Workspace.at(tmp_path), "mine")


def test_every_field_is_a_flag_and_every_field_but_the_machines_is_a_spec_key():
    from kagglekit.cli import app

    runner = CliRunner()
    text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    for name, f in FIELDS.items():
        flag = f.metadata.get("flag") or "--" + name.replace("_", "-")
        assert flag in text, flag
    machine = {"device", "num_workers", "devices", "nnodes", "node_rank", "master", "cache", "compile",
               "skip_bad_images"}
    assert set(SPEC_KEYS) == set(FIELDS) - machine
    assert "--epochs" in text and "[default: 5]" not in text  # the help's defaults are the fields'
    assert "--ema <float>" in text and "[default: 0.9998]" in text


def test_adding_a_field_is_a_one_place_change(tmp_path):
    """A TrainConfig with one more field: it is a spec key, type-checked, and a flag whose value
    reaches the command, with nothing else written for it."""
    from kagglekit.cli._train_options import with_train_options

    Extended = dataclasses.make_dataclass(
        "Extended", [("knob", float, _opt(0.25, "a new knob"))], bases=(TrainConfig,))
    assert "knob" in spec_keys(Extended) and "knob" not in SPEC_KEYS
    assert check_value("knob", 0.5, Extended) is None
    assert check_value("knob", "high", Extended) == "expected a number, found str 'high'"
    with pytest.raises(SpecError, match="key 'train.knob': expected a number"):
        check_table({"knob": "high"}, tmp_path / "competition.toml", "train", Extended)

    app = typer.Typer(rich_markup_mode=None)
    seen = {}

    @app.command()
    @with_train_options(cls=Extended)
    def go(name: str, options: dict | None = None) -> None:
        seen.update(options or {})

    runner = CliRunner()
    help_text = " ".join(runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output.split())
    assert "--knob <float> a new knob [default: 0.25]" in help_text
    result = runner.invoke(app, ["x", "--knob", "0.75", "--sizes", "128,224", "--no-probe", "--policy", "trivial"])
    assert result.exit_code == 0, result.output
    assert seen == {"knob": 0.75, "sizes": (128, 224), "probe": False, "policy": "trivial"}
    assert json.dumps(seen)  # plain values, ready for the run's config
