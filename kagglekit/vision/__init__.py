"""Image pipeline: fine-tuning timm CNNs the fast.ai way (needs the ``vision`` extra)."""

from .train import TrainConfig, TrainResult, lr_find, merge, train

__all__ = ["TrainConfig", "TrainResult", "lr_find", "merge", "train"]
