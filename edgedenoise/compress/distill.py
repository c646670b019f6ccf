"""Distillation into slim students: a :class:`TrainConfig` with a teacher (see ``DistillConfig``).

Source: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", 2015 (soft targets from a
larger model); for image restoration the teacher's output image is the soft target and the loss is MSE
against the blend ``(1 - α) * clean + α * teacher(noisy)``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..train.config import DistillConfig, TrainConfig, load_config


def distill_config(
    teacher: str,
    student: str,
    *,
    config: str | Path | None = None,
    weight: float = 0.5,
    **overrides: Any,
) -> TrainConfig:
    """The training config that distils ``teacher`` into ``student``.

    Args:
        teacher: a model name with shipped weights, or a ``.safetensors`` / trainer ``.pt`` file.
        student: a registered model name (e.g. ``rednet12_slim64_u2``); replaces ``model`` of ``config``.
        config: a YAML training config for data, noise, optimiser and budget (defaults of :class:`TrainConfig`
            otherwise); its own ``distill`` section is replaced.
        weight: α, the teacher's share of the target, in [0, 1].
        **overrides: top-level config keys to replace (``out_dir``, ``steps``, ...); ``None`` values are ignored.

    Raises:
        ConfigError: a bad config file or keys (the trainer checks the teacher and α when it starts).
    """
    base = load_config(config, **overrides) if config else TrainConfig()
    if not config:
        base = dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
    return dataclasses.replace(base, model=student, distill=DistillConfig(teacher=teacher, weight=weight))
