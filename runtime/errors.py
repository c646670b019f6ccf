"""The project's exception types.

One base class, :class:`EdgeDenoiseError`, and a few subclasses that say what kind of thing went wrong.
The library raises these and never prints or exits; the CLI turns them into one stderr line and exit
code 1 in a single place (``edgedenoise.cli``). Every message names the offending value and the fix.

This module lives in the runtime because the runtime is the bottom of the import graph
(training -> export -> runtime); ``edgedenoise.errors`` re-exports it for the training side. The export
stage's own errors (``ExportError``, ``CalibrationError``) are in :mod:`edgedenoise.export.errors`.
"""

from __future__ import annotations


class EdgeDenoiseError(Exception):
    """Base class of every error the project raises on purpose."""


class UnknownModelError(EdgeDenoiseError, KeyError):
    """A model name that is not registered (or has no shipped weights)."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class InvalidInputError(EdgeDenoiseError, ValueError):
    """An image, array, file or argument the project cannot use as given."""


class BackendUnavailableError(EdgeDenoiseError, RuntimeError):
    """A requested backend (TensorRT, ORT CUDA, ...) cannot run on this machine."""


class InferenceError(EdgeDenoiseError, RuntimeError):
    """A backend ran but its output is unusable (NaN/Inf from an FP16 overflow, wrong shape, ...)."""


class ArtifactError(EdgeDenoiseError, ValueError):
    """A model artifact (ONNX, engine, sidecar, weights) that is missing, corrupt or does not match."""


class ConfigError(EdgeDenoiseError, ValueError):
    """A training/export configuration that is malformed or has unknown keys."""


__all__ = [
    "ArtifactError",
    "BackendUnavailableError",
    "ConfigError",
    "EdgeDenoiseError",
    "InferenceError",
    "InvalidInputError",
    "UnknownModelError",
]
