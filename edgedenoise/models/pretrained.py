"""Shipped weights: ``edgedenoise/weights/<name>.safetensors`` plus a JSON model card beside each.

The safetensors file holds the state dict; its string metadata holds ``arch``, the ``cfg`` JSON (the
ModelCfg the weights were trained for) and the overrides (``in_channels``, ``features``) needed to rebuild
the module. Loading never unpickles anything.

Trainer checkpoints (``.pt``) are pickles; :func:`load_torch_checkpoint` reads them only with
``torch.load(weights_only=True)``, whose restricted unpickler builds tensors and plain containers and refuses
every other global (PyTorch docs, ``torch.load``, "weights_only"), so a checkpoint from a stranger cannot run
code here. :func:`rebuild_model` turns the metadata of either form into a module; every failure of these
two is an :class:`ArtifactError` (one line, naming the file).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
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
        raise ArtifactError(f"{str(path)!r} lacks edgedenoise metadata (arch, cfg); save it with save_weights()")
    try:
        overrides = json.loads(meta.get("overrides", "{}"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{str(path)!r}: metadata 'overrides' is not JSON ({exc}); re-save it") from exc
    return rebuild_model(path, meta["arch"], meta["cfg"], overrides, state)


def rebuild_model(source: str | Path, arch: Any, cfg_json: Any, overrides: Any, state_dict: Any) -> nn.Module:
    """Build ``arch`` with ``overrides`` and load ``state_dict`` strictly; returns the module in eval mode.

    Args:
        source: the file the values came from (for messages).
        arch: registered model name; cfg_json: :class:`ModelCfg` JSON; overrides: ``{argument: value}``
            for :func:`create_model`; state_dict: ``{name: tensor}``, exactly the module's parameters and buffers.

    Raises:
        ArtifactError: a value of the wrong type, an invalid contract, constructor arguments the architecture
            does not take, or weights that do not fit it.
        UnknownModelError: ``arch`` is not registered.
    """
    import torch

    name = str(source)
    if not isinstance(arch, str) or not isinstance(cfg_json, str) or not isinstance(overrides, Mapping):
        raise ArtifactError(f"{name!r}: arch/cfg/overrides have the wrong types; it was not written by edgedenoise")
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ArtifactError(f"{name!r}: its state_dict is not a mapping of tensors; it was not written by edgedenoise")
    try:
        cfg = ModelCfg.from_json(cfg_json)
    except ArtifactError as exc:
        raise ArtifactError(f"{name!r}: {exc}") from exc
    try:
        model = create_model(arch, noise=cfg.noise, **dict(overrides))
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{name!r}: cannot build {arch!r} with {dict(overrides)} ({exc})") from exc
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ArtifactError(f"{name!r} does not match architecture {arch!r}: {first}") from exc
    return model.eval()


def load_torch_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a trainer checkpoint (``last.pt`` / ``best.pt``) with ``torch.load(weights_only=True)``, on the CPU.

    Nothing but tensors, numbers, strings and containers is unpickled; a file that holds any other object (a
    pickle that would call a function, i.e. run code) is refused without running it.

    Returns:
        The checkpoint's top-level dict.

    Raises:
        ArtifactError: missing, empty, truncated or not a torch file; holds objects a weights-only load refuses;
            not a dict. One line naming the file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"checkpoint {str(path)!r} does not exist")
    try:
        ck = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... by file content
        text = str(exc)
        found = re.search(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL|Unsupported global:) (\S+)", text)
        if found:  # the restricted unpickler met a function/class reference: the file wants to build objects
            what = "global " + found.group(1).rstrip(".")
            raise ArtifactError(
                f"{str(path)!r} holds Python objects that a weights-only load refuses ({what}): it may run code, so "
                "it was not loaded; use a checkpoint written by `edgedenoise train`, or weights as .safetensors"
            ) from exc
        operand = re.search(r"Unsupported operand \d+", text)
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        reason = lines[0] if lines else type(exc).__name__
        if operand:
            reason = f"weights-only unpickler: {operand.group(0)}"
        raise ArtifactError(f"{str(path)!r} is not a readable torch checkpoint ({reason})") from exc
    if not isinstance(ck, dict):
        raise ArtifactError(
            f"{str(path)!r} holds a {type(ck).__name__}, not a checkpoint dict; it was not written by edgedenoise"
        )
    return ck


def load_pretrained(name: str) -> nn.Module:
    """The shipped model ``name`` (alias allowed) with its trained weights, in eval mode.

    Raises:
        UnknownModelError: unknown name (the message lists the shipped models and the nearest one to a
            misspelt name), or no weights ship for it.
    """
    try:
        path = shipped_weights_path(name)
    except UnknownModelError:
        shipped = shipped_models()
        near = difflib.get_close_matches(name, shipped, n=1, cutoff=0.75)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise UnknownModelError(
            f"unknown model {name!r}; {hint}shipped: {', '.join(shipped) or 'none'} "
            "(or give a weights file)"
        ) from None
    if path is None:
        raise UnknownModelError(
            f"no shipped weights for {name!r}; shipped: {', '.join(shipped_models()) or 'none'} "
            "(train your own with `edgedenoise train`)"
        )
    return load_weights(path)


def pretrained_table() -> list[dict[str, Any]]:
    """One row per registered model: name, params, macs_per_pixel, size_multiple, receptive_field, inputs
    (``"noisy"`` or ``"noisy, sigma"``), shipped."""
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
                "inputs": ("noisy RGB" if cfg.in_channels == 3 else "noisy gray")
                + (", sigma" if cfg.noise_level_input else ""),
                "shipped": "yes" if name in shipped else "no",
            }
        )
    return rows
