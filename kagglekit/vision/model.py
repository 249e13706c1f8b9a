"""timm models for kagglekit: creation with offline weights, multi-target heads, parameter groups.

Weights come from ``--weights PATH`` (a file, or a folder of weight files), from ``KK_WEIGHTS_DIR``,
or from timm's usual source (the Hugging Face hub or its local cache). A Kaggle notebook with
internet off attaches a dataset of weight files and points ``KK_WEIGHTS_DIR`` at it.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import KKError, OptionError, SpecError, did_you_mean

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@dataclass(frozen=True)
class Head:
    """One target's slice of the model's outputs."""

    name: str
    start: int
    size: int
    classes: tuple[str, ...] | None  # None: regression (one standardised output)
    mean: float = 0.0
    std: float = 1.0
    submit: bool = True
    weight: float = 1.0  # the loss's weight (the spec's [[targets]] weight)
    log: bool = False  # a regression fitted in log1p space (RMSLE): predictions go back through expm1

    @property
    def stop(self) -> int:
        return self.start + self.size


def check_arch(arch: str) -> None:
    """Refuse an unknown timm name early; ``arch.tag`` names (``convnext_small.fb_in22k``) are fine."""
    import timm

    if not timm.is_model(arch):
        names = timm.list_models()
        close = did_you_mean(arch, names)
        raise SpecError(f"unknown timm architecture {arch!r}{close}; 'python -c \"import timm; "
                        f"print(timm.list_models(\\\"*{arch.split('_')[0]}*\\\"))\"' lists similar ones")


def find_weight_file(where: Path, arch: str) -> Path | None:
    """A weight file for ``arch``: ``where`` itself, or in the folder ``where`` a file named
    ``<arch>.<ext>``, ``<arch>.<tag>.<ext>`` or ``<arch>/model.safetensors`` / ``pytorch_model.bin``."""
    where = Path(where).expanduser()
    if where.is_file():
        return where
    if not where.is_dir():
        return None
    for suffix in WEIGHT_SUFFIXES:
        if (where / f"{arch}{suffix}").is_file():
            return where / f"{arch}{suffix}"
    for p in sorted(where.glob(f"{arch}.*")):
        if p.suffix in WEIGHT_SUFFIXES and p.is_file():
            return p
    for name in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        if (where / arch / name).is_file():
            return where / arch / name
    return None


@contextmanager
def _hub_offline():
    """Offline mode for huggingface_hub during one call. Its HF_HUB_OFFLINE constant is read from
    the environment when it is first imported, so setting the variable later has no effect."""
    import huggingface_hub.constants as hc

    saved = hc.HF_HUB_OFFLINE
    hc.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hc.HF_HUB_OFFLINE = saved


def _hub_offline_configured() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return True
    try:
        import huggingface_hub.constants as hc

        return bool(hc.HF_HUB_OFFLINE)
    except ImportError:
        return True


def _hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the hub answers, asked through huggingface_hub's own HTTP session: its endpoint
    (``HF_ENDPOINT``, a mirror), proxies and certificates, within ``timeout`` seconds, instead of
    timm's ~47 s of retries before an offline download fails."""
    if _hub_offline_configured():
        return False
    try:
        from huggingface_hub import constants
        from huggingface_hub.utils import get_session

        get_session().head(constants.ENDPOINT, timeout=timeout)
        return True
    except Exception:  # no network, DNS, proxy refusal, TLS: all mean "not reachable now"
        return False


def create_vision_model(arch: str, num_outputs: int, *, pretrained: str | bool = "auto",
                        weights: str | Path | None = None, drop_rate: float = 0.0,
                        drop_path_rate: float = 0.0) -> tuple[Any, str]:
    """Create a timm model with ``num_outputs`` outputs. Returns ``(model, source of weights)``.

    ``pretrained``: True (fail when no weights can be had), False (random init) or "auto"
    (local weights if found, else the hub if reachable, else random init with a warning).
    """
    check_arch(arch)
    if isinstance(pretrained, str) and pretrained not in ("auto",):
        raise OptionError(f"pretrained: expected True, False or 'auto', found {pretrained!r}")
    kw: dict[str, Any] = {"num_classes": num_outputs, "drop_rate": drop_rate}
    if drop_path_rate:  # stochastic depth: each residual block skipped with up to this probability
        kw["drop_path_rate"] = drop_path_rate
    model, source = _create(arch, kw, pretrained, weights)
    init_head(model)
    return model, source


def _create(arch: str, kw: dict[str, Any], pretrained: str | bool, weights: str | Path | None) -> tuple[Any, str]:
    import timm

    if pretrained is False:
        return timm.create_model(arch, pretrained=False, **kw), "random init"
    local = None
    source = weights or os.environ.get("KK_WEIGHTS_DIR")
    if source:
        local = find_weight_file(Path(source), arch)
        if local is None and weights:
            raise KKError(f"--weights {weights}: no weight file for {arch!r} there (expected a file, or a folder "
                          f"holding {arch}.safetensors / {arch}.pth / {arch}/model.safetensors)")
    if local is not None:
        try:
            model = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": str(local)}, **kw)
        except (RuntimeError, KeyError, ValueError) as e:
            raise KKError(f"{local}: cannot load weights into {arch!r}: {str(e).splitlines()[0][:200]}") from None
        return model, f"file {local}"
    if _hub_reachable():
        try:
            return timm.create_model(arch, pretrained=True, **kw), "timm hub"
        except Exception as e:  # network, missing tag, ...
            if pretrained is True:
                raise KKError(f"cannot download pretrained weights for {arch!r}: {str(e).splitlines()[0][:200]}; "
                              "pass --weights FILE or set KK_WEIGHTS_DIR") from None
    elif pretrained is True:
        try:  # the local Hugging Face cache may still hold them; offline, so it fails at once
            with _hub_offline():
                return timm.create_model(arch, pretrained=True, **kw), "timm cache"
        except Exception:
            raise KKError(f"no pretrained weights for {arch!r} offline: pass --weights FILE (a .safetensors or .pth "
                          "file, or a folder of them) or set KK_WEIGHTS_DIR; or train from scratch with "
                          "--pretrained false") from None
    warnings.warn(f"no pretrained weights for {arch} found (no --weights, KK_WEIGHTS_DIR unset, hub unreachable): "
                  "training from random initialisation", stacklevel=2)
    return timm.create_model(arch, pretrained=False, **kw), "random init"


def init_head(model: Any) -> None:
    """kk owns the head: the last layer of the new classifier starts at zero, so every timm family
    starts from uniform predictions (loss ln C) and its first updates are well-conditioned.

    timm initialises the classifier of EfficientNet / MobileNet / EfficientNetV2 with a fan-out
    uniform of bound 1/sqrt(num_classes) (std 0.41 with two classes): on pretrained features the
    first logits are huge and fine-tuning diverges (measured: 0.55 OOF accuracy on dogs vs cats).
    Only the last layer is zeroed: the gradient of a zero linear layer is not zero, and hidden
    layers of a multi-layer head keep timm's initialisation (they would get no gradient at zero).
    """
    import torch.nn as nn

    classifier = model.get_classifier()
    for head in classifier if isinstance(classifier, tuple | list) else (classifier,):
        layers = [m for m in head.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
        if layers:
            nn.init.zeros_(layers[-1].weight)
            if layers[-1].bias is not None:
                nn.init.zeros_(layers[-1].bias)


def model_stats(model: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean and std the model was pretrained with, as timm resolves them."""
    from timm.data import resolve_model_data_config

    cfg = resolve_model_data_config(model)
    return tuple(cfg["mean"]), tuple(cfg["std"])


def resize_policy(resize: str, arch: str, pretrained: bool) -> tuple[str, float]:
    """How validation and test images reach the training size: ``(method, crop_pct)``.

    ``auto`` gives a pretrained model its own evaluation transform, as timm resolves it (shorter
    side to size / crop_pct, centre crop, aspect kept: measured 0.990-0.994 vs 0.982 for squished
    photos with tf_efficientnet_lite0's frozen features on dogs vs cats), and a model trained from
    scratch the squished images it trained on. ``crop`` keeps the pretrained crop_pct (1.0 from
    scratch); ``squish`` and ``pad`` use the whole image."""
    if resize == "auto":
        resize = "crop" if pretrained else "squish"
    if resize != "crop" or not pretrained:
        return resize, 1.0
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    crop_pct = getattr(cfg, "crop_pct", None) or 1.0
    return resize, float(crop_pct)


def _is_norm(module: Any) -> bool:
    import torch.nn as nn

    return isinstance(module, nn.modules.batchnorm._BatchNorm | nn.LayerNorm | nn.GroupNorm) or \
        "norm" in type(module).__name__.lower()


def head_parameter_names(model: Any) -> set[str]:
    classifier = model.get_classifier()
    ids = {id(p) for p in classifier.parameters()}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def layer_ids(model: Any) -> tuple[dict[str, int], int]:
    """Each parameter's depth, 0 (the stem) to the last (the head), from timm's ``group_matcher`` (the
    groups timm's own layer-wise decay uses: 18 for tf_efficientnet_lite0); models without one get
    two layers, body and head."""
    head = head_parameter_names(model)
    names = [n for n, _ in model.named_parameters()]
    if hasattr(model, "group_matcher"):
        from timm.models._manipulate import group_parameters

        layers = group_parameters(model, model.group_matcher(coarse=False), reverse=True)
        top = max(layers.values())
        ids = {n: (top if n in head else min(layers.get(n, top), top)) for n in names}
        return ids, top
    return {n: (1 if n in head else 0) for n in names}, 1


def param_groups(model: Any, lr: float, body_lr: float, weight_decay: float,
                 layer_decay: float | None = None) -> list[dict[str, Any]]:
    """Parameter groups with their learning rates, each split into parameters with weight decay and
    norm/bias parameters without it. Discriminative learning rates: the head at ``lr`` and the body
    at ``body_lr``; or, with ``layer_decay`` (layer-wise decay, as in BEiT and timm), every layer at
    ``lr`` x ``layer_decay`` ** (its distance from the head)."""
    head = head_parameter_names(model)
    norm_params = {id(p) for m in model.modules() if _is_norm(m) for p in m.parameters(recurse=False)}
    ids, top = layer_ids(model) if layer_decay else ({}, 0)
    groups: dict[tuple[int, bool], list[Any]] = {}
    for name, p in model.named_parameters():
        decay = p.ndim > 1 and id(p) not in norm_params
        layer = ids[name] if layer_decay else (1 if name in head else 0)
        groups.setdefault((layer, decay), []).append(p)
    out = []
    for (layer, decay), params in sorted(groups.items(), key=lambda kv: kv[0]):
        if layer_decay:
            group_lr, label = lr * layer_decay ** (top - layer), f"layer{layer}"
        else:
            group_lr, label = (lr, "head") if layer == 1 else (body_lr, "body")
        out.append({"params": params, "lr": group_lr, "weight_decay": weight_decay if decay else 0.0,
                    "name": label + ("" if decay else "_no_decay")})
    return out


def set_body_trainable(model: Any, trainable: bool) -> None:
    """Freeze or unfreeze the body; norm layers stay trainable (fastai's train_bn)."""
    head = head_parameter_names(model)
    norm_params = {id(p) for m in model.modules() if _is_norm(m) for p in m.parameters(recurse=False)}
    for name, p in model.named_parameters():
        p.requires_grad_(trainable or name in head or id(p) in norm_params)


def split_outputs(out: np.ndarray, heads: list[Head]) -> dict[str, np.ndarray]:
    """Raw outputs -> per-target predictions: softmax probabilities, or de-standardised values."""
    preds = {}
    for h in heads:
        z = out[:, h.start:h.stop]
        if h.classes is None:
            value = z[:, 0] * h.std + h.mean
            preds[h.name] = np.expm1(np.maximum(value, 0.0)) if h.log else value
        else:
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            preds[h.name] = e / e.sum(axis=1, keepdims=True)
    return preds
