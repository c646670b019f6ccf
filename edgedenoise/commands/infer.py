"""``edgedenoise infer``: denoise image files with an exported model (adapter over ``runtime.infer.InferRun``).

Needs no torch: it runs on the runtime alone (numpy, onnxruntime, Pillow; TensorRT for engines).
"""

from __future__ import annotations

import sys

import click

from ..runtime.backend import BackendKind
from ..runtime.denoiser import ColorMode


@click.command("infer")
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output folder (or file name, for a single input file).")
@click.option("--in-place", is_flag=True, help="Replace each input with its denoised version (atomically).")
@click.option("--backend", type=click.Choice([k.value for k in BackendKind]), default="auto", show_default=True)
@click.option("--device", type=click.IntRange(min=0), help="CUDA device index (asks for a GPU backend).")
@click.option("--allow-fallback", is_flag=True, help="If --backend cannot run, use the next one (reported).")
@click.option(
    "--tile",
    type=click.IntRange(min=0),
    help="Largest tile side in pixels (0: never tile) [default: 512, or an engine's profile].",
)
@click.option(
    "--color",
    type=click.Choice([c.value for c in ColorMode]),
    default="per-channel",
    show_default=True,
    help="Gray model on colour images: denoise each channel, or only the luma.",
)
@click.option("--threads", type=click.IntRange(min=1), help="ONNX Runtime CPU threads [default: all cores].")
@click.option("--noisy-sigma", type=click.FloatRange(min=0), help="Add AWGN of this σ (0-255) first; report PSNR.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Noise seed (image i: seed+i).")
@click.option("--skip-existing", is_flag=True, help="Leave files whose output already exists.")
@click.option("--report", type=click.Path(dir_okay=False), help="Write per-file results as JSON here.")
@click.pass_context
def infer_cmd(ctx: click.Context, model: str, inputs: tuple[str, ...], report: str | None, **opts: object) -> None:
    """Denoise INPUT images (files, folders searched recursively, glob patterns) with MODEL.

    MODEL is an .onnx or .engine file, or a shipped model name (rednet30 -> edgedenoise/weights/rednet30.onnx).
    Gray and RGB, 8- and 16-bit PNG/TIFF/JPEG/BMP keep their mode and bit depth; alpha is passed through.
    A file that fails is reported on stderr and skipped; the exit code is 1 if any failed.

    \b
    Example:
      edgedenoise infer rednet30.int8.onnx photos/ -o denoised/
      edgedenoise infer rednet edgedenoise/samples/*.png -o out/ --noisy-sigma 25
    """
    from tqdm import tqdm

    from ..runtime.infer import InferRun

    with InferRun(model, inputs, **opts) as run:  # type: ignore[arg-type]
        click.echo(f"model: {run.info.summary()}")
        with tqdm(total=len(run.jobs), unit="img", disable=None, file=sys.stderr, leave=False) as bar:
            for res in run:
                tqdm.write(
                    f"error: {res.message}" if res.failed else res.message,
                    file=sys.stderr if res.failed else sys.stdout,
                )
                bar.update()
        click.echo(run.summary.line())
        if report:
            run.write_report(report)
    ctx.exit(1 if run.failed else 0)


COMMANDS = [infer_cmd]
