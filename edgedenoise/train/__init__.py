"""Training: configs (YAML -> frozen dataclasses) and the Trainer loop (needs torch)."""

from .config import DataConfig, DistillConfig, NoiseConfig, OptimConfig, TrainConfig, config_from_dict, load_config
from .trainer import train

__all__ = [
    "DataConfig",
    "NoiseConfig",
    "OptimConfig",
    "TrainConfig",
    "DistillConfig",
    "config_from_dict",
    "load_config",
    "train",
]
