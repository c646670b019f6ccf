"""The model zoo: RED-Net and MemNet variants, registered by name (needs torch).

Use :func:`create_model` and :func:`list_models`; see ``rednet.py`` and ``memnet.py`` for the papers and
the details each leaves open.
"""

from ..runtime.contract import ModelCfg
from . import memnet, rednet, slim, unet  # noqa: F401  (registers the variants)
from .pretrained import (
    load_pretrained,
    load_weights,
    model_card,
    pretrained_table,
    save_weights,
    shipped_models,
    shipped_weights_path,
)
from .registry import (
    ModelStats,
    aliases,
    count_macs_per_pixel,
    count_params,
    create_model,
    list_models,
    model_cfg,
    model_stats,
    resolve_name,
)

__all__ = [
    "ModelCfg",
    "ModelStats",
    "aliases",
    "count_macs_per_pixel",
    "count_params",
    "create_model",
    "list_models",
    "load_pretrained",
    "load_weights",
    "model_card",
    "model_cfg",
    "pretrained_table",
    "save_weights",
    "shipped_models",
    "shipped_weights_path",
    "model_stats",
    "resolve_name",
]
