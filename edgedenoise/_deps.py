"""Checks for optional dependencies, raising one-line project errors that say how to install them."""

from __future__ import annotations

from .runtime.errors import EdgeDenoiseError


def needs_torch(what: str, extras: str = "train") -> None:
    """Raise a one-line :class:`EdgeDenoiseError` if PyTorch is missing (for commands that train/export);
    ``extras`` names the package extras the command needs besides torch."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise EdgeDenoiseError(
            f"'{what}' needs PyTorch, which is not installed; install it with "
            f"`pip install torch==2.13.0 'edgedenoise[{extras}]'` (or your platform's torch build)"
        ) from exc
