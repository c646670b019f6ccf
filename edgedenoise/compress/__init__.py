"""Compression: structured channel pruning (torch-pruning) and distillation into slim students.

Pruning lives in :mod:`.prune`; distillation is the trainer with a teacher (``TrainConfig.distill``), which
:func:`.distill.distill_config` sets up. See docs/compression.md for the shipped variants and how they were made.
"""

from .distill import distill_config
from .prune import PruneResult, prune_model

__all__ = ["PruneResult", "distill_config", "prune_model"]
