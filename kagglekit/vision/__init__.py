"""Image pipeline: fine-tuning timm CNNs the fast.ai way (needs the ``vision`` extra)."""

from .config import TrainConfig, TrainResult
from .lr_finder import lr_find
from .training import merge, train

__all__ = ["TrainConfig", "TrainResult", "lr_find", "merge", "train"]
