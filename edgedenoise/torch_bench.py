"""Torch eager on the CPU as one more benchmark backend: the reference the exported artifacts are compared against.

:class:`TorchEagerSource` is a :class:`~edgedenoise.runtime.bench.BenchSource`: it loads each model in PyTorch
(float32, CPU, eval mode) and hands the runtime's protocol a subject whose timed call is the module's forward
under ``torch.inference_mode`` with the thread count asked for. The timing loop, the seeded input, the rows,
the report and its writers are the runtime's (:func:`edgedenoise.runtime.bench.bench_models`), so
``edgedenoise bench --backend torch`` and the ONNX rows share one table. MACs per pixel are counted on the
module itself (:func:`edgedenoise.models.count_macs_per_pixel`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .runtime.backend import InputSpec
from .runtime.bench import BenchSettings, BenchSubject, Opener
from .runtime.errors import InvalidInputError

if TYPE_CHECKING:
    from torch import nn

_ARTIFACT_SUFFIXES = (".onnx", ".engine", ".plan", ".trt")


def load_torch_module(model: str | Path) -> tuple[str, str, nn.Module]:
    """``(display name, source, module)`` for a shipped model name (alias allowed), a ``.safetensors`` file or a
    trainer ``.pt`` checkpoint; the module is in eval mode, float32, on the CPU. ``source`` is the weights file.

    Raises:
        InvalidInputError: an ``.onnx`` / ``.engine`` file (not a torch model).
        ArtifactError, UnknownModelError: the weights cannot be found or loaded.
    """
    from .models import load_model

    text = str(model)
    suffix = Path(text).suffix.lower()
    if suffix in _ARTIFACT_SUFFIXES:
        raise InvalidInputError(
            f"--backend torch runs PyTorch models; {text!r} is an exported artifact: pass the model name or its "
            ".safetensors weights, or drop --backend torch"
        )
    loaded = load_model(text)
    name = Path(text).name.split(".")[0] if suffix else text
    return name, str(loaded.weights), loaded.module.float().cpu().eval()


@dataclass(frozen=True)
class TorchEagerSource:
    """PyTorch eager on the CPU, float32, as a :class:`~edgedenoise.runtime.bench.BenchSource`.

    Rows get backend ``torch``, precision ``fp32``, providers ``("torch <version> eager, cpu, <n> threads",)``
    and MACs per pixel counted on the module (``macs_source`` ``torch-count``).

    Attributes:
        device: must be None: this backend times the CPU.

    Raises:
        InvalidInputError: a device index.
    """

    device: int | None = None
    model_hint: ClassVar[str] = "a .safetensors file"

    def __post_init__(self) -> None:
        if self.device is not None:
            raise InvalidInputError("--backend torch times the CPU; drop --device")

    def plan(self, model: str | Path, precisions: Sequence[str] | None, settings: BenchSettings) -> list[Opener]:
        """Load ``model`` (:func:`load_torch_module`) and count its MACs per pixel: one opener.

        Raises:
            InvalidInputError: a precision other than fp32, or an exported artifact.
            ArtifactError, UnknownModelError: see :func:`load_torch_module`.
        """
        if precisions and list(precisions) != ["fp32"]:
            raise InvalidInputError(
                f"--backend torch times float32 eager only, not {','.join(precisions)}; "
                "benchmark the exported .onnx files for other precisions"
            )
        from .models import count_macs_per_pixel, model_cfg

        name, source, module = load_torch_module(model)
        m = model_cfg(module).size_multiple
        macs = count_macs_per_pixel(module, size=-(-64 // m) * m)
        return [functools.partial(self.open, name, source, module, macs, settings.threads)]

    def machine_extra(self) -> dict[str, Any]:
        """``{"torch": torch.__version__}``."""
        import torch

        return {"torch": torch.__version__}

    @contextlib.contextmanager
    def open(self, name: str, source: str, module: nn.Module, macs: float, threads: int) -> Iterator[BenchSubject]:
        """The subject of a loaded module: torch runs with ``threads`` intra-op threads (0: its default) and in
        inference mode until the block ends."""
        import torch

        from .evaluate import torch_threads
        from .models import model_cfg

        cfg = model_cfg(module)
        with torch_threads(threads), torch.inference_mode():

            def bind(x: np.ndarray, noise: np.ndarray | None) -> Callable[[], object]:
                args = (torch.from_numpy(x),) + (() if noise is None else (torch.from_numpy(noise),))
                return functools.partial(module, *args)

            yield BenchSubject(
                model=name,
                artifact=source,
                backend="torch",
                providers=(f"torch {torch.__version__} eager, cpu, {torch.get_num_threads()} threads",),
                precision="fp32",
                spec=InputSpec(channels=cfg.in_channels, noise_level=cfg.noise_level_input),
                size_multiple=cfg.size_multiple,
                bind=bind,
                macs_per_pixel=macs,
                macs_source="torch-count",
            )
