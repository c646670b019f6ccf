"""Shipped weights: ``edgedenoise/weights/<name>.safetensors`` plus a JSON model card beside each.

The safetensors file holds the state dict; its string metadata holds ``arch``, the ``cfg`` JSON (the
ModelCfg the weights were trained for) and the overrides (``in_channels``, ``features``) needed to rebuild
the module. Loading never unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from ..runtime.contract import ModelCfg
from ..runtime.errors import ArtifactError, UnknownModelError
from .registry import count_macs_per_pixel, count_params, create_model, list_models, model_cfg, resolve_name

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def shipped_weights_path(name: str) -> Path | None:
    """Path of the shipped ``.safetensors`` for model ``name`` (alias allowed), or None if none ships."""
    path = WEIGHTS_DIR / f"{resolve_name(name)}.safetensors"
    return path if path.is_file() else None


def model_card(name: str) -> dict[str, Any]:
    """The JSON model card of a shipped model.

    Raises:
        UnknownModelError: no weights ship for ``name``.
    """
    path = WEIGHTS_DIR / f"{resolve_name(name)}.json"
    if not path.is_file():
        raise UnknownModelError(f"no shipped weights for {name!r}; shipped: {', '.join(shipped_models())}")
    return dict(json.loads(path.read_text()))


def shipped_models() -> list[str]:
    """Names of the models whose weights ship with the package."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def save_weights(model: nn.Module, path: str | Path, extra: dict[str, str] | None = None) -> Path:
    """Write ``model``'s state dict as safetensors with its arch, cfg and rebuild arguments in the metadata.

    The file is written to a temporary name and renamed, so a crash never leaves a half-written file.
    """
    from safetensors.torch import save_file

    path = Path(path)
    cfg = model_cfg(model)
    meta = {
        "arch": cfg.arch,
        "cfg": cfg.to_json(),
        "overrides": json.dumps(getattr(model, "build_overrides", {"in_channels": cfg.in_channels})),
    }
    meta.update(extra or {})
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_weights(path: str | Path) -> nn.Module:
    """Rebuild a model from a safetensors file written by :func:`save_weights`; returns it in eval mode.

    Raises:
        ArtifactError: the file is missing, not safetensors, lacks our metadata, or does not match the arch.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"weights file {str(path)!r} does not exist")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{str(path)!r} is not a readable safetensors file ({exc})") from exc
    if "arch" not in meta or "cfg" not in meta:
        raise ArtifactError(
            f"{str(path)!r} lacks edgedenoise metadata (arch, cfg); save it with save_weights()"
        )
    overrides = json.loads(meta.get("overrides", "{}"))
    cfg = ModelCfg.from_json(meta["cfg"])
    model = create_model(meta["arch"], noise=cfg.noise, **overrides)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"{str(path)!r} does not match architecture {meta['arch']!r}: {exc}") from exc
    model.eval()
    return model


def load_pretrained(name: str) -> nn.Module:
    """The shipped model ``name`` (alias allowed) with its trained weights, in eval mode.

    Raises:
        UnknownModelError: unknown name, or no weights ship for it.
    """
    path = shipped_weights_path(name)
    if path is None:
        raise UnknownModelError(
            f"no shipped weights for {name!r}; shipped: {', '.join(shipped_models()) or 'none'} "
            "(train your own with `edgedenoise train`)"
        )
    return load_weights(path)


def pretrained_table() -> list[dict[str, Any]]:
    """One row per registered model: name, params, macs_per_pixel, size_multiple, receptive_field, shipped."""
    shipped = set(shipped_models())
    rows = []
    for name in list_models():
        model = create_model(name)
        cfg = model_cfg(model)
        rows.append(
            {
                "name": name,
                "params": count_params(model),
                "macs_per_pixel": count_macs_per_pixel(model, size=32),
                "size_multiple": cfg.size_multiple,
                "receptive_field": cfg.receptive_field,
                "shipped": "yes" if name in shipped else "no",
            }
        )
    return rows
