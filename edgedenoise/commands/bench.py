"""``edgedenoise bench``: latency, throughput, memory and GFLOP/s of models (adapter over ``runtime.bench``).

Needs no torch for ONNX artifacts and engines (:class:`~edgedenoise.runtime.bench.ArtifactSource`);
``--backend torch`` times PyTorch eager on the CPU (:class:`~edgedenoise.torch_bench.TorchEagerSource`) with the
same protocol.
"""

from __future__ import annotations

import click

from .._deps import needs_torch
from ..runtime.backend import BackendKind
from . import options

_BACKENDS = [k.value for k in BackendKind] + ["torch"]


@click.command("bench")
@click.argument("models", nargs=-1, required=True)
@click.option(
    "--backend",
    type=click.Choice(_BACKENDS),
    default="auto",
    show_default=True,
    help="Where to run: auto (the best backend available for each file, as infer picks), a backend, or torch (eager).",
)
@click.option(
    "--precision",
    help="Comma-separated fp32,fp16,int8 (the files `edgedenoise export` writes beside <name>.onnx) "
    "[default: a name's FP32 plus its INT8 if it ships; a file as it is].",
)
@options.size_option("--size", default="512x512,1920x1080", many=True, help="Frame sizes to time")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Images per run.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed runs first.")
@click.option("--iters", type=click.IntRange(min=1), default=20, show_default=True, help="Timed runs (at most).")
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=0),
    default=20.0,
    show_default=True,
    help="Time budget per size for warm-up and for timed runs (at least 1 and 3 runs; 0: no budget).",
)
@options.threads
@options.device
@click.option(
    "--matmul", type=click.IntRange(min=0), default=4096, show_default=True, help="Ceiling matmul side (0: skip)."
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the results as JSON here.")
@click.option("--markdown", "md_path", type=click.Path(dir_okay=False), help="Also write the table here.")
def bench_cmd(
    models: tuple[str, ...],
    backend: str,
    precision: str | None,
    size: str,
    batch: int,
    warmup: int,
    iters: int,
    max_seconds: float,
    threads: int,
    device: int | None,
    matmul: int,
    json_path: str | None,
    md_path: str | None,
) -> None:
    """Time MODEL(s): latency p50/p90/p99, MP/s, frames/s, peak RSS, GFLOP/s vs a float32 matmul ceiling.

    MODEL is an .onnx or .engine file, or a shipped model name (rednet30 -> edgedenoise/weights/rednet30.onnx,
    int8 -> rednet30.int8.cpu.onnx). Each size gets --warmup untimed runs, then --iters runs timed one by one,
    both within --max-seconds; throughput and GFLOP/s use the median; peak RSS is the whole process's. The same
    command runs on a GPU with --backend ort-cuda, --backend ort-tensorrt, or --backend tensorrt for engines built
    on the device. See docs/results.md.

    \b
    Example:
      edgedenoise bench rednet30
      edgedenoise bench rednet30 out/rednet30_s2.onnx --precision fp32 --size 1920x1080 --json bench.json
      edgedenoise bench rednet30 --backend torch --size 512x512
    """
    from ..runtime.bench import (
        ArtifactSource,
        BenchSettings,
        BenchSource,
        bench_models,
        describe_machine,
        parse_precisions,
        parse_sizes,
    )

    sizes = parse_sizes(size)
    settings = BenchSettings(
        sizes, batch=batch, warmup=warmup, iters=iters, max_seconds=max_seconds or None, threads=threads
    )
    source: BenchSource
    if backend == "torch":
        needs_torch("bench --backend torch")
        from ..torch_bench import TorchEagerSource

        source = TorchEagerSource(device)
    else:
        source = ArtifactSource(backend, device)
    report = bench_models(models, source, settings, precisions=parse_precisions(precision), matmul_n=matmul)
    click.echo(f"Machine: {describe_machine(report.machine)}\n")  # CPU features decide the INT8 speed-up
    click.echo(report.markdown())
    if json_path:
        report.write_json(json_path)
    if md_path:
        report.write_markdown(md_path)


COMMANDS = [bench_cmd]
