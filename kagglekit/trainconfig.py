"""TrainConfig: everything that defines an image model's training run, declared once.

Each field carries its help text and, where it has them, its allowed values. Everything else is
derived from these fields: the keys a competition's ``[train]`` table and a recipe's train stages
accept (:data:`SPEC_KEYS`), the type check of those tables (:func:`check_value`), and ``kk train``'s
flags with their help and defaults (``kagglekit.cli._train_options``). Adding a field here is the
whole change. Standard library only: the CLI reads it at start-up.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from .errors import OptionError, did_you_mean, one_of
from .machine import DEVICES, PRECISIONS

RESIZE_METHODS = ("auto", "squish", "crop", "pad")
KEEP = ("loss", "metric", "last")  # which epoch of a fold predicts: see vision.fold.Checkpointer
POLICIES = ("basic", "trivial")  # training augmentation after crop and flip: see vision.data
CACHE_MODES = ("auto", "memory", "disk")


def _opt(default: Any, help: str, *, choices: tuple[str, ...] | None = None, machine: bool = False,
         speed_only: bool = False, flag: str | None = None, short: str | None = None) -> Any:
    """A field with its help; ``machine``: how this machine runs, not what is trained (a flag, not a
    ``[train]`` key); ``speed_only``: it changes how fast a run goes, not its result, so it is left
    out of the run's identity; ``flag``/``short``: the flag's name when it is not the field's."""
    meta = {"help": help, "choices": choices, "machine": machine, "speed_only": speed_only, "flag": flag,
            "short": short}
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as the run's config)."""

    arch: str = _opt("resnet18", "any timm model name, e.g. convnext_small", short="-a")
    epochs: int | None = _opt(None, "fine-tuning epochs after the probe [default: by the training images of a fold: "
                              "1 under 600, else one per 200, at most 10]", short="-e")
    sizes: tuple[int, ...] | None = _opt(None, "image size, or sizes for progressive resizing, the epochs split "
                                         "across them: 112,224 (96,128 on a CPU took 0.65 of 128's time, accuracy "
                                         "within noise, half a point lower) [default: the images' own size, at most "
                                         "224]")
    batch_size: int | None = _opt(None, "the global batch [default: 32 on a CPU; on a GPU sized to its memory, "
                                        "at most what keeps 50 steps an epoch, 16 or more]", short="-b")
    accum: int = _opt(1, "gradient accumulation steps (the same update in less memory)")
    lr: float | str = _opt(2e-3, "learning rate, or 'auto' for the learning-rate finder's suggestion")
    lr_mult: float = _opt(100.0, "pretrained body's learning rate = lr / lr-mult (without --layer-decay)")
    weight_decay: float = _opt(0.01, "AdamW's weight decay")
    freeze_epochs: int = _opt(0, "fastai's frozen epochs (head and norm layers) after the probe")
    probe: bool = _opt(True, "pretrained: fit the new head on frozen features first (LP-FT)")
    frozen_bn_stats: bool = _opt(True, "pretrained: batch norm keeps its ImageNet statistics while fine-tuning")
    tta: int = _opt(0, "test-time augmentation passes")
    pretrained: bool | str = _opt("auto", "auto (local weights, the hub, else from scratch), true or false")
    weights: str | None = _opt(None, "a weight file, or a folder of them matched to the arch (offline); "
                               "or KK_WEIGHTS_DIR")
    folds: tuple[int, ...] | None = _opt(None, "run only these folds, e.g. 0,1 (merge later with kk merge)")
    seed: int = _opt(42, "the run's seed")
    device: str = _opt("auto", "where to train (auto: cuda when there is one)", choices=DEVICES, machine=True)
    precision: str = _opt("auto", "autocast: auto (bf16 from sm 8.0, fp16 with a gradient scaler on sm 6.0/7.x, "
                          "fp32 on CPUs; kk doctor shows it)", choices=PRECISIONS, speed_only=True)
    num_workers: int | None = _opt(None, "DataLoader worker processes [default: sized to the machine]",
                                   machine=True, flag="--workers", speed_only=True)
    resize: str | None = _opt(None, "valid/test resize (auto: the pretrained model's centre crop) [default: the "
                              "spec's [image] resize, else auto]", choices=RESIZE_METHODS)
    flip: bool = _opt(True, "horizontal flips in augmentation")
    aug: float = _opt(1.0, "augmentation strength (0: crop and flip only)")
    policy: str = _opt("basic", "augmentation after crop and flip: basic (light affine and colour) or trivial "
                       "(TrivialAugment)", choices=POLICIES)
    label_smoothing: float = _opt(0.0, "label smoothing of the training loss (classification)")
    # The fine-tuning toolbox; defaults measured on flowers-small (bench/transfer_flowers.py,
    # docs/benchmarks/images.md):
    ema: float = _opt(0.9998, "an exponential moving average of the weights (timm's, with warm-up) validates and "
                      "predicts; 0: off")
    keep: str = _opt("loss", "the epoch of a fold that predicts: lowest validation loss, best metric, or the last",
                     choices=KEEP)
    probe_c: float | str = _opt("auto", "the linear probe's C (scikit-learn's meaning), or auto: by inner CV")
    layer_decay: float | None = _opt(0.8, "layer-wise learning-rate decay of pretrained bodies")
    drop_path: float = _opt(0.0, "stochastic depth rate")
    mixup: float = _opt(0.0, "mixup alpha (every target's loss mixed, regression too)")
    cutmix: float = _opt(0.0, "cutmix alpha")
    skip_bad_images: bool = _opt(False, "skip unreadable images with a warning", machine=True)
    devices: int = _opt(1, "processes on this machine, one per GPU (DDP via torchrun; on CPU: gloo)", machine=True,
                        speed_only=True)
    nnodes: int = _opt(1, "machines training one model together (torchrun's rendezvous); each runs the same "
                       "command with its own --node-rank", machine=True, speed_only=True)
    node_rank: int = _opt(0, "this machine's place among --nnodes, 0 to nnodes - 1; node 0 writes the run",
                          machine=True, speed_only=True)
    master: str | None = _opt(None, "HOST:PORT of node 0, which every node can reach (with --nnodes)", machine=True,
                              speed_only=True)
    cache: str = _opt("auto", "pre-resized images held in memory, or streamed from a packed file on disk (auto: disk "
                      "when they would take over a quarter of the free memory)", choices=CACHE_MODES, machine=True,
                      speed_only=True)
    compile: bool = _opt(False, "torch.compile the training step (pays on GPUs for long runs; compiling takes "
                         "minutes)", machine=True, speed_only=True)

    def __post_init__(self) -> None:
        if isinstance(self.lr, str) and self.lr != "auto":
            try:
                self.lr = float(self.lr)
            except ValueError:
                raise OptionError(f"--lr: expected a number or 'auto', found {self.lr!r}") from None
        if self.probe_c != "auto":
            try:
                self.probe_c = float(self.probe_c)
            except (TypeError, ValueError):
                raise OptionError(f"--probe-c: expected a number or 'auto', found {self.probe_c!r}") from None
        if self.accum < 1 or (self.batch_size is not None and self.batch_size < 1) or \
                (self.epochs is not None and self.epochs < 1):
            raise OptionError("--accum, --batch-size and --epochs must be at least 1")
        if self.devices < 1:
            raise OptionError(f"--devices: expected a number of devices of at least 1, found {self.devices}")
        self._check_nodes()
        world = self.devices * self.nnodes
        if self.batch_size is not None and self.batch_size % world:
            over = f"--devices {self.devices}" + (f" x --nnodes {self.nnodes}" if self.nnodes > 1 else "")
            raise OptionError(f"--batch-size {self.batch_size} does not split evenly over {over}: "
                              f"each process takes an equal share of every batch; use a multiple of {world}, "
                              f"e.g. {self.batch_size // world * world or world}")
        if self.sizes is not None:
            if not self.sizes:
                raise OptionError("--sizes: give at least one image size, e.g. 128 or 128,224")
            self.sizes = tuple(int(s) for s in self.sizes)
        if self.folds is not None:
            self.folds = tuple(int(f) for f in self.folds)
        for f in fields(self):
            allowed, value = f.metadata.get("choices"), getattr(self, f.name)
            if allowed and value is not None and value not in allowed:
                raise OptionError(f"{flag_of(f)}: expected one of {', '.join(allowed)}, found {value!r}"
                                  f"{did_you_mean(str(value), allowed)}")


    def _check_nodes(self) -> None:
        if self.nnodes < 1 or not 0 <= self.node_rank < self.nnodes:
            raise OptionError(f"--nnodes {self.nnodes} --node-rank {self.node_rank}: expected at least one node and "
                              f"a node rank from 0 to {max(self.nnodes - 1, 0)}")
        if self.nnodes > 1:
            host, _, port = (self.master or "").rpartition(":")
            if not host or not port.isdigit():
                raise OptionError(f"--master: with --nnodes {self.nnodes}, expected HOST:PORT of node 0 (reachable "
                                  f"from every node, e.g. 10.0.0.5:29500), found {self.master!r}")

def fields_of(cls: type = TrainConfig) -> dict[str, Field]:
    return {f.name: f for f in fields(cls)}


def spec_keys(cls: type = TrainConfig) -> tuple[str, ...]:
    """The keys of a competition's [train] table and of a recipe's train stages: what is trained,
    not how this machine runs it."""
    return tuple(name for name, f in fields_of(cls).items() if not f.metadata.get("machine"))


FIELDS: dict[str, Field] = fields_of()
SPEC_KEYS: tuple[str, ...] = spec_keys()
# left out of a run's identity: an identical run made with other values of these is the same run
SPEED_ONLY: tuple[str, ...] = tuple(name for name, f in FIELDS.items() if f.metadata.get("speed_only"))


def flag_of(f: Field) -> str:
    """A field's ``kk train`` flag: ``--batch-size`` for batch_size, unless it names another."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def help_of(f: Field) -> str:
    """A field's help, with its default unless the help words it already."""
    text, default = f.metadata.get("help", ""), (None if f.default is MISSING else f.default)
    if "[default:" in text or default is None:
        return text
    if isinstance(default, bool):
        return f"{text} [default: {'on' if default else 'off'}]"
    return f"{text} [default: {default}]"


def _accepts(kind: Any, value: Any) -> bool:
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if typing.get_origin(kind) is tuple:  # tuple[int, ...]: a TOML list of integers
        return isinstance(value, list | tuple) and all(_accepts(int, v) for v in value)
    return False


_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "nothing"}


def _parts(kind: Any) -> tuple[Any, ...]:
    return typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)


def _expected(kind: Any) -> str:
    words = [_WORDS.get(p, "a list of integers") for p in _parts(kind) if p is not type(None)]
    return " or ".join(words)


def check_value(name: str, value: Any, cls: type = TrainConfig) -> str | None:
    """What is wrong with ``value`` for field ``name`` (as a TOML table gives it), or None: its type
    from the field's annotation, then its allowed values."""
    kind = typing.get_type_hints(cls)[name]
    parts = _parts(kind)
    if not any(_accepts(p, value) for p in parts):
        return f"expected {_expected(kind)}, found {type(value).__name__} {value!r}"
    if str in parts and isinstance(value, str) and (float in parts or bool in parts):
        special = {"lr": ("auto",), "probe_c": ("auto",), "pretrained": ("auto",)}.get(name, ())
        if value not in special:
            words = " or ".join(_WORDS[p] for p in parts if p is not str)
            return f"expected {words} or {one_of(special)}, found {value!r}"
    allowed = fields_of(cls)[name].metadata.get("choices")
    if allowed and value not in allowed:
        return f"expected {one_of(allowed)}, found {value!r}{did_you_mean(str(value), allowed)}"
    return None


def check_table(table: dict[str, Any], file: Any, where: str, cls: type = TrainConfig) -> None:
    """Raise a SpecError naming ``file`` and the key (``where`` is the table's dotted key, e.g.
    ``train`` or ``stages.lite2``) for the first unknown key or bad value of a ``[train]`` table
    or a train stage."""
    from .errors import SpecError

    keys = spec_keys(cls)
    for key, value in table.items():
        if key not in keys:
            raise SpecError(f"{file}: key '{where}.{key}': unknown key; allowed keys here are {one_of(keys)}"
                            f"{did_you_mean(key, keys)}")
        problem = check_value(key, value, cls)
        if problem:
            raise SpecError(f"{file}: key '{where}.{key}': {problem}")
    try:  # the rules between values (e.g. epochs at least 1), worded with the table's keys, not flags
        cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()})
    except OptionError as e:
        message = str(e)
        for f in sorted(fields(cls), key=lambda f: -len(flag_of(f))):
            message = message.replace(flag_of(f), f"'{where}.{f.name}'")
        raise SpecError(f"{file}: {message}") from None
