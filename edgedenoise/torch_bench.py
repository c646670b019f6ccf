"""Torch eager on the CPU as a benchmark backend: the reference the exported artifacts are compared against.

The torch-free core (:mod:`edgedenoise.runtime.bench`) times ONNX Runtime and TensorRT; this module times the
same model in PyTorch eager mode (``torch.inference_mode``, float32, CPU) with the same protocol
(:func:`~edgedenoise.runtime.bench.time_runs`: warm-up, then each run timed alone) and returns the same
:class:`~edgedenoise.runtime.bench.BenchRow`, so ``edgedenoise bench --backend torch`` and the ONNX rows share
one table. MACs per pixel are counted on the module itself (:func:`edgedenoise.models.count_macs_per_pixel`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .runtime.bench import (
    DEFAULT_SIZES,
    BenchReport,
    BenchRow,
    bench_input,
    check_sizes,
    machine_info,
    make_row,
    matmul_ceiling,
    padded_size,
    time_runs,
)
from .runtime.errors import InvalidInputError

if TYPE_CHECKING:
    from torch import nn


def load_torch_module(model: str | Path) -> tuple[str, str, nn.Module]:
    """``(display name, source, module)`` for a shipped model name (alias allowed), a ``.safetensors`` file or a
    trainer ``.pt`` checkpoint; the module is in eval mode, float32, on the CPU.

    Raises:
        InvalidInputError: an ``.onnx`` / ``.engine`` file (not a torch model).
        ArtifactError, UnknownModelError: the weights cannot be found or loaded.
    """
    from .models import load_pretrained, load_weights, shipped_weights_path

    text = str(model)
    suffix = Path(text).suffix.lower()
    if suffix in (".onnx", ".engine", ".plan", ".trt"):
        raise InvalidInputError(
            f"--backend torch runs PyTorch models; {text!r} is an exported artifact: pass the model name or its "
            ".safetensors weights, or drop --backend torch"
        )
    if suffix == ".safetensors":
        module, source = load_weights(text), text
    elif suffix in (".pt", ".pth"):
        from .evaluate import load_checkpoint

        module, source = load_checkpoint(text), text
    else:
        module = load_pretrained(text)
        source = str(shipped_weights_path(text))
    name = Path(text).name.split(".")[0] if suffix else text
    return name, source, module.float().cpu().eval()


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the block (0: leave torch's default), restored afterwards."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def bench_torch(
    model: str | Path,
    *,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    batch: int = 1,
    warmup: int = 3,
    iters: int = 20,
    max_seconds: float | None = None,
    threads: int = 0,
) -> list[BenchRow]:
    """Time one model in torch eager mode on the CPU at each ``(H, W)`` size (see :mod:`edgedenoise.runtime.bench`).

    The input is the same seeded ``(batch, C, H, W)`` float32 array the ONNX rows use.

    Raises:
        InvalidInputError: a size that is not a multiple of the model's ``size_multiple``, or batch < 1.
        ArtifactError, UnknownModelError: see :func:`load_torch_module`.
    """
    if batch < 1:
        raise InvalidInputError(f"batch must be >= 1, got {batch}")
    name, source, module = load_torch_module(model)
    return _bench_module(name, source, module, sizes, batch, warmup, iters, max_seconds, threads)


def _bench_module(
    name: str,
    source: str,
    module: nn.Module,
    sizes: Sequence[tuple[int, int]],
    batch: int,
    warmup: int,
    iters: int,
    max_seconds: float | None,
    threads: int,
) -> list[BenchRow]:
    import torch

    from .models import count_macs_per_pixel, model_cfg

    cfg = model_cfg(module)
    check_sizes(sizes, cfg.size_multiple, name)
    m = cfg.size_multiple
    macs = count_macs_per_pixel(module, size=-(-64 // m) * m)
    rows = []
    with torch_threads(threads), torch.inference_mode():
        label = f"torch {torch.__version__} eager, cpu, {torch.get_num_threads()} threads"
        for h, w in sizes:
            x = torch.from_numpy(bench_input(batch, cfg.in_channels, *padded_size(h, w, cfg.size_multiple)))
            args = (x, torch.full_like(x[:, :1], 25.0 / 255.0)) if cfg.noise_level_input else (x,)
            timing = time_runs(functools.partial(module, *args), warmup=warmup, iters=iters, max_seconds=max_seconds)
            rows.append(
                make_row(
                    timing,
                    model=name,
                    artifact=source,
                    backend="torch",
                    providers=(label,),
                    precision="fp32",
                    height=h,
                    width=w,
                    batch=batch,
                    threads=threads,
                    macs_per_pixel=macs,
                    macs_source="torch-count",
                )
            )
    return rows


def bench_torch_models(
    models: Sequence[str | Path],
    *,
    backend: str = "torch",
    precisions: Sequence[str] | None = None,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    batch: int = 1,
    warmup: int = 3,
    iters: int = 20,
    max_seconds: float | None = None,
    threads: int = 0,
    device: int | None = None,
    matmul_n: int = 4096,
) -> BenchReport:
    """:func:`bench_torch` over several models, then the matmul ceiling: the torch counterpart of
    :func:`edgedenoise.runtime.bench.bench_models`, with the same arguments.

    Raises:
        InvalidInputError: a precision other than fp32, a GPU device (this backend times the CPU), no model.
        see :func:`bench_torch`.
    """
    import torch

    if backend != "torch":
        raise InvalidInputError(f"bench_torch_models runs the 'torch' backend, not {backend!r}")
    if precisions and list(precisions) != ["fp32"]:
        raise InvalidInputError(
            f"--backend torch times float32 eager only, not {','.join(precisions)}; "
            "benchmark the exported .onnx files for other precisions"
        )
    if device is not None:
        raise InvalidInputError("--backend torch times the CPU; drop --device")
    if not models:
        raise InvalidInputError("no model given; pass a shipped name (e.g. rednet30) or a .safetensors file")
    if batch < 1:
        raise InvalidInputError(f"batch must be >= 1, got {batch}")
    from .models import model_cfg

    loaded = [load_torch_module(m) for m in models]
    for name, _, module in loaded:  # a bad name or size fails here, before anything is timed
        check_sizes(sizes, model_cfg(module).size_multiple, name)
    rows = [
        r
        for name, source, module in loaded
        for r in _bench_module(name, source, module, sizes, batch, warmup, iters, max_seconds, threads)
    ]
    ceiling = matmul_ceiling(matmul_n) if matmul_n else None
    return BenchReport(tuple(rows), machine_info(torch=torch.__version__), ceiling)
