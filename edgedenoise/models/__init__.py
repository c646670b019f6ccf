"""The model zoo: RED-Net and MemNet variants, registered by name (needs torch).

Use :func:`create_model` and :func:`list_models`; see ``rednet.py`` and ``memnet.py`` for the papers and
the details each leaves open. :func:`load_torch_model` / :func:`load_model` (``loading.py``) load a trained
model from whatever names it: a registered name with shipped weights, a ``.safetensors`` file or a trainer
checkpoint.
"""

from ..runtime.contract import ModelCfg
from . import memnet, opponent, rednet, slim, unet  # noqa: F401  (registers the variants)
from .loading import LoadedModel, load_checkpoint, load_model, load_torch_model, model_file
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
    "LoadedModel",
    "ModelStats",
    "aliases",
    "count_macs_per_pixel",
    "count_params",
    "create_model",
    "list_models",
    "load_checkpoint",
    "load_model",
    "load_pretrained",
    "load_torch_model",
    "load_weights",
    "model_card",
    "model_cfg",
    "model_file",
    "pretrained_table",
    "save_weights",
    "shipped_models",
    "shipped_weights_path",
    "model_stats",
    "resolve_name",
]
