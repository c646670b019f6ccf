"""``edgedenoise infer``: denoise image files with an exported model (adapter over ``runtime.infer.InferRun``).

Needs no torch: it runs on the runtime alone (numpy, onnxruntime, Pillow; TensorRT for engines).

C libraries under Pillow and ONNX Runtime write to file descriptor 2 behind Python's back (libtiff prints
``LZWDecode: Not enough data at scanline 0`` for a damaged TIFF, which then also fails with its own error
line). While the run lasts, that descriptor goes to ``/dev/null`` and Python's ``sys.stderr`` to a copy of the
real one, so each failed file is exactly one ``Error: FILE: reason`` line; ``--debug`` keeps the native output.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import click

from ..runtime.backend import BackendKind
from ..runtime.denoiser import ColorMode, NonFinite
from ..runtime.imageio import MAX_PIXELS
from ..runtime.tiling import DEFAULT_MEMORY_MB
from . import options

_MAX_PIXELS_HELP = (
    "Largest image read, in pixels (width times height of a WxH image); raise it for huge scans you trust "
    "(Pillow's decompression-bomb guard)."
)


@click.command("infer")
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output folder (or file name, for a single input file).")
@click.option("--in-place", is_flag=True, help="Replace each input with its denoised version (atomically).")
@options.choice_option("--backend", BackendKind, "auto", "Where the model runs (auto: the best one available).")
@options.device
@click.option("--allow-fallback", is_flag=True, help="If --backend cannot run, use the next one (reported).")
@click.option(
    "--tile",
    type=click.IntRange(min=0),
    help="Largest tile side in pixels (0: never tile) [default: tile only an image whose activations exceed "
    "--max-memory-mb, or beyond an engine's profile].",
)
@click.option(
    "--max-memory-mb",
    type=click.FloatRange(min=1),
    default=DEFAULT_MEMORY_MB,
    show_default=True,
    help="Activation memory one model run may take (MiB) before an image is tiled; frames that fit run whole.",
)
@options.choice_option(
    "--color",
    ColorMode,
    "auto",
    "Gray model on colour images: opponent planes each told its σ (auto for noise-level models), each channel "
    "(auto for blind ones), or only the luma.",
)
@options.choice_option(
    "--nonfinite", NonFinite, "raise", "NaN/Inf in float images: fail the file, or replace (NaN/-Inf -> 0, +Inf -> 1)."
)
@options.threads
@click.option(
    "--sigma",
    callback=lambda ctx, param, value: _sigma_option(value),
    help="Noise level for models with a noise-level input: a σ (0-255 scale) or auto (estimated per image) "
    "[default: --noisy-sigma if given, else auto]. Each file's line says the σ used.",
)
@click.option(
    "--noise-profile",
    callback=lambda ctx, param, value: _profile_option(value),
    help="Camera noise A,B (variance A·x + B, x in [0, 1]) for a noise-level-conditioned model: each pixel is told "
    "the σ of its signal, e.g. 0.01,0.0004 (docs/noise-level.md: how to get yours), or auto: fitted to each file.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "int8"]),
    default="auto",
    show_default=True,
    help="For a shipped model name: auto runs FP32 or INT8, whichever a cached timing probe finds faster on this CPU.",
)
@click.option("--max-pixels", type=click.IntRange(min=1), default=MAX_PIXELS, show_default=True, help=_MAX_PIXELS_HELP)
@click.option(
    "--bit-depth",
    type=click.IntRange(1, 16),
    help="Significant bits of 16-bit files (e.g. 10 or 12 for sensor data) [default: a PNG's sBIT chunk, else 16].",
)
@click.option("--noisy-sigma", type=click.FloatRange(min=0), help="Add AWGN of this σ (0-255) first; report PSNR.")
@options.seed
@click.option("--skip-existing", is_flag=True, help="Leave files whose output already exists.")
@click.option("--report", type=click.Path(dir_okay=False), help="Write per-file results as JSON here.")
@click.pass_context
def infer_cmd(
    ctx: click.Context, model: str, inputs: tuple[str, ...], report: str | None, threads: int, **opts: object
) -> None:
    """Denoise INPUT images (files, folders searched recursively, glob patterns) with MODEL.

    MODEL is an .onnx or .engine file, or a shipped model name (rednet30 -> edgedenoise/weights/rednet30.onnx).
    Gray and RGB, 8- and 16-bit PNG/TIFF/JPEG/BMP keep their mode and bit depth; alpha is passed through.
    A file that fails is reported on stderr and skipped; the exit code is 1 if any failed.

    \b
    Example:
      edgedenoise infer rednet30.int8.cpu photos/ -o denoised/
      edgedenoise infer rednet edgedenoise/samples/*.png -o out/ --noisy-sigma 25
      edgedenoise infer unet3_f32_u4_nl.int8.cpu noisy/ -o denoised/ --sigma auto
    """
    from tqdm import tqdm

    from ..runtime.infer import InferRun

    debug = bool(ctx.find_root().params.get("debug"))
    opts["threads"] = options.threads_or_none(threads)  # InferRun takes None for the runtime's default
    with _native_stderr_to_devnull(not debug), InferRun(model, inputs, **opts) as run:  # type: ignore[arg-type]
        click.echo(f"model: {run.info.summary()}")
        if run.denoiser.precision_choice is not None:
            click.echo(f"precision: {run.denoiser.precision_choice.summary()}")
        with tqdm(total=len(run.jobs), unit="img", disable=None, file=sys.stderr, leave=False) as bar:
            for res in run:
                tqdm.write(
                    f"Error: {res.message}" if res.failed else res.message,
                    file=sys.stderr if res.failed else sys.stdout,
                )
                bar.update()
        if run.stale_removed:
            click.echo(f"removed {len(run.stale_removed)} temporary file(s) left by an interrupted run")
        click.echo(run.summary.line())
        if report:
            run.write_report(report)
    ctx.exit(1 if run.failed else 0)


def _profile_option(value: str | None) -> tuple[float, float] | str | None:
    """``--noise-profile A,B`` -> ``(a, b)``; ``auto`` stays ``"auto"``."""
    if value is None or value == "auto":
        return value
    try:
        a, b = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not two numbers A,B (e.g. --noise-profile 0.01,0.0004) or auto"
        ) from None
    return a, b


def _sigma_option(value: str | None) -> float | str | None:
    """``--sigma``: None, ``"auto"``, or a number >= 0."""
    if value is None or value == "auto":
        return value
    try:
        sigma = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a number nor auto; e.g. --sigma 25 or --sigma auto") from None
    if not sigma >= 0 or sigma == float("inf"):
        raise click.BadParameter(f"{value!r}: σ must be a finite number >= 0 (0-255 scale)")
    return sigma


@contextlib.contextmanager
def _native_stderr_to_devnull(enabled: bool) -> Iterator[None]:
    """Send what C code writes to file descriptor 2 to /dev/null; Python's ``sys.stderr`` keeps working."""
    if not enabled:
        yield
        return
    try:
        python_uses_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a captured or replaced stream (io.UnsupportedOperation)
        python_uses_fd2 = False
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    stream = sys.stderr
    os.dup2(devnull, 2)
    try:
        if python_uses_fd2:
            enc, errs = getattr(stream, "encoding", None) or "utf-8", getattr(stream, "errors", None) or "replace"
            sys.stderr = open(saved, "w", buffering=1, encoding=enc, errors=errs, closefd=False)  # noqa: SIM115
        yield
    finally:
        if sys.stderr is not stream:
            sys.stderr.close()
            sys.stderr = stream
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


COMMANDS = [infer_cmd]
