"""The CLI commands, one module per area (models, train, export, infer, eval, bench, ...).

Each module defines click commands and lists them in ``COMMANDS``; :func:`register` adds them to the group.
Options that several commands take (``--threads``, sizes, ``--seed``, ...) are decorators in :mod:`.options`.
Modules import heavy dependencies (torch, onnx) inside the command functions only, so ``edgedenoise --help``
works in a runtime-only install.
"""

from __future__ import annotations

import importlib
import pkgutil

import click


def register(group: click.Group) -> None:
    """Add every ``COMMANDS`` entry of every module in this package to ``group``."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for cmd in getattr(module, "COMMANDS", []):
            group.add_command(cmd)
