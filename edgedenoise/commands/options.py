"""Options that several commands take, as click decorators: one spelling, one meaning and one help text each.

* ``--threads N``: the CPU threads the command's computation uses — ONNX Runtime's intra-op threads, and
  PyTorch's where the command runs PyTorch. ``0``, the default, means all cores: each library's own choice of one
  thread per physical core. The value reaches the commands as an ``int >= 0``; :func:`threads_or_none` turns it
  into what the runtime's ``threads=`` arguments take (None for the default).
* Sizes are ``WxH`` (width x height in pixels, ``1920x1080``), as image tools write them: :func:`size_option`.
* ``--seed`` (image ``i`` of a run gets noise seed ``seed + i``), ``--device`` (a CUDA index), ``--steps``,
  ``--out-dir`` and ``--no-progress`` for training runs.

Usage::

    @click.command("eval")
    @options.threads
    def eval_cmd(threads: int) -> None: ...
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

ALL_CORES = 0
THREADS_HELP = (
    "CPU threads the computation uses (ONNX Runtime's intra-op threads, and PyTorch's where it runs); "
    "0 = the library's default (one thread per physical core)."
)
SIZE_FORMAT = "WxH: width x height in pixels, e.g. 1920x1080"

threads = click.option(
    "--threads", type=click.IntRange(min=0), default=ALL_CORES, show_default=True, metavar="N", help=THREADS_HELP
)
device = click.option(
    "--device",
    type=click.IntRange(min=0),
    help="CUDA device index (a GPU backend; with --backend auto it asks for one).",
)
seed = click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Noise seed: image i (0-based) gets seed + i.",
)
steps = click.option("--steps", type=click.IntRange(min=1), help="Override the config's steps.")
run_dir = click.option("--out-dir", help="Run folder (default: the config's out_dir).")
no_progress = click.option("--no-progress", is_flag=True, help="No progress bars (for logs).")


def threads_or_none(value: int) -> int | None:
    """``--threads`` for a library argument where None means the default: 0 (all cores) -> None, N -> N."""
    return value or None


def size_option(*decls: str, default: str, help: str, many: bool = False) -> Callable[[F], F]:
    """A ``WxH`` size option (a comma-separated list of them with ``many``); the value stays text.

    The command parses it (``edgedenoise.runtime.bench.parse_sizes``, ``edgedenoise.export.tensorrt_build.parse_hw``),
    so a malformed size is the same one-line error everywhere.

    Args:
        decls: the option's names (``"--min"``) and, optionally, its parameter name (``"min_hw"``).
        default: the default size(s), e.g. ``"512x512,1920x1080"``.
        help: what the size is for; the format is appended.
        many: the option takes a comma-separated list.
    """
    metavar = "WxH[,WxH...]" if many else "WxH"
    fmt = f"comma-separated, each {SIZE_FORMAT}" if many else SIZE_FORMAT
    return click.option(*decls, default=default, show_default=True, metavar=metavar, help=f"{help} ({fmt}).")


def choice_option(name: str, choices: type[enum.Enum], default: str, help: str) -> Callable[[F], F]:
    """An option that takes one value of the string enum ``choices`` (passed on as its text), with a default."""
    return click.option(
        name, type=click.Choice([str(c.value) for c in choices]), default=default, show_default=True, help=help
    )


__all__ = [
    "ALL_CORES",
    "SIZE_FORMAT",
    "THREADS_HELP",
    "choice_option",
    "device",
    "no_progress",
    "run_dir",
    "seed",
    "size_option",
    "steps",
    "threads",
    "threads_or_none",
]
