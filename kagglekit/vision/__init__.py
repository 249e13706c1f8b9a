"""Image pipeline: fine-tuning timm CNNs the fast.ai way (needs the ``vision`` extra)."""

from ..trainconfig import TrainConfig
from .config import TrainResult
from .launch import train
from .lr_finder import lr_find
from .results import merge

__all__ = ["TrainConfig", "TrainResult", "lr_find", "merge", "train"]
