"""One way to get a torch model from what a user names: a registered name, a weights file or a trainer checkpoint.

Every tool that needs a torch model (training's warm start and distillation teacher, pruning, export, the torch
benchmark, evaluation of a torch model) calls :func:`load_model` or :func:`load_torch_model`. A model is named by

* a registered model name or alias whose weights ship with the package (:func:`~.pretrained.load_pretrained`);
* a ``.safetensors`` file written by :func:`~.pretrained.save_weights` (:func:`~.pretrained.load_weights`);
* a trainer checkpoint ``.pt`` / ``.pth`` (``last.pt``, ``best.pt``; :func:`load_checkpoint`, read with
  ``torch.load(weights_only=True)``, so it cannot run code);
* or, from Python, an ``nn.Module`` built by :func:`~.registry.create_model` (returned as it is).

Nothing is unpickled beyond tensors and plain containers; every refusal is one :class:`ArtifactError` or
:class:`UnknownModelError` line naming the file or the name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..runtime.errors import ArtifactError
from .pretrained import load_pretrained, load_torch_checkpoint, load_weights, rebuild_model, shipped_weights_path

TORCH_SUFFIXES = (".safetensors", ".pt", ".pth")
# Suffixes that always name a file (a model name never ends in one): a missing one is "does not exist".
MODEL_FILE_SUFFIXES = (*TORCH_SUFFIXES, ".onnx", ".engine", ".plan", ".trt")
CHECKPOINT_KEYS = ("arch", "cfg", "overrides", "state_dict")


@dataclass(frozen=True)
class LoadedModel:
    """A torch model and the file its weights came from.

    Attributes:
        module: the model, in eval mode, on the CPU.
        weights: the ``.safetensors`` / ``.pt`` file that was read (for a name, the shipped ``.safetensors``);
            None for a module that was passed in.
    """

    module: nn.Module
    weights: Path | None

    def weights_sha256(self) -> str | None:
        """Hex sha256 (64 characters) of the :attr:`weights` file's bytes, or None without a file."""
        return None if self.weights is None else hashlib.sha256(self.weights.read_bytes()).hexdigest()


def model_file(spec: str | Path) -> Path | None:
    """The file ``spec`` names, or None when it is a model name.

    ``spec`` names a file when it ends in a model-file suffix (:data:`MODEL_FILE_SUFFIXES`) or exists on disk.

    Raises:
        ArtifactError: it names a file that does not exist.
    """
    path = Path(spec)
    if path.suffix.lower() not in MODEL_FILE_SUFFIXES and not path.exists():
        return None
    if not path.is_file():
        raise ArtifactError(f"model file {str(path)!r} does not exist")
    return path


def load_checkpoint(path: str | Path) -> nn.Module:
    """Rebuild the model of a trainer checkpoint (``last.pt`` / ``best.pt``), in eval mode, on the CPU.

    The file is read with ``torch.load(weights_only=True)`` (no arbitrary unpickling) and must hold the keys
    ``arch``, ``cfg`` (ModelCfg JSON), ``overrides`` (constructor arguments) and ``state_dict``.

    Raises:
        ArtifactError: unreadable file, missing keys, or weights that do not fit the architecture.
        UnknownModelError: the checkpoint's ``arch`` is not registered.
    """
    ck = load_torch_checkpoint(path)  # weights_only=True; refusals are one-line ArtifactErrors
    missing = [k for k in CHECKPOINT_KEYS if k not in ck]
    if missing:
        raise ArtifactError(f"{str(path)!r} lacks checkpoint key(s) {missing}; it was not written by the trainer")
    return rebuild_model(path, ck["arch"], ck["cfg"], ck["overrides"], ck["state_dict"])


def load_model(spec: str | Path | nn.Module) -> LoadedModel:
    """Load the torch model ``spec`` names (see the module docstring), with the file its weights came from.

    Args:
        spec: a registered model name or alias with shipped weights, a ``.safetensors`` file, a trainer
            checkpoint ``.pt`` / ``.pth``, or an ``nn.Module`` (returned as it is, ``weights=None``).

    Returns:
        :class:`LoadedModel`: the module in eval mode on the CPU (a passed module is left as it is).

    Raises:
        ArtifactError: a file that is missing, unreadable or does not fit its architecture, or a file that is not
            a torch model (an ``.onnx``, an engine); the message names the file and what to give instead.
        UnknownModelError: a name that is not registered or has no shipped weights.
    """
    if isinstance(spec, nn.Module):
        return LoadedModel(spec, None)
    path = model_file(spec)
    if path is None:
        return LoadedModel(load_pretrained(str(spec)), shipped_weights_path(str(spec)))
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return LoadedModel(load_weights(path), path)
    if suffix in (".pt", ".pth"):
        return LoadedModel(load_checkpoint(path), path)
    raise ArtifactError(f"{str(path)!r} is not a torch model; give a .safetensors or trainer .pt file, or a model name")


def load_torch_model(spec: str | Path | nn.Module) -> nn.Module:
    """The torch model ``spec`` names, in eval mode on the CPU: ``load_model(spec).module``.

    Raises:
        ArtifactError, UnknownModelError: as :func:`load_model`.
    """
    return load_model(spec).module


__all__ = [
    "MODEL_FILE_SUFFIXES",
    "TORCH_SUFFIXES",
    "LoadedModel",
    "load_checkpoint",
    "load_model",
    "load_torch_model",
    "model_file",
]
