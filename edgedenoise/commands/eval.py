"""``edgedenoise eval``: PSNR/SSIM of a model on a folder of clean images (adapter over ``evaluate``)."""

from __future__ import annotations

import json

import click

from .._deps import needs_torch
from . import options


def _sigma_list(ctx: click.Context, param: click.Parameter, value: str) -> list[float]:
    """Parse ``15,25,50`` into floats (σ on the 0-255 scale)."""
    try:
        sigmas = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers, e.g. 15,25,50") from None
    if not sigmas or any(s < 0 for s in sigmas):
        raise click.BadParameter(f"{value!r}: give one or more σ values >= 0, e.g. 15,25,50")
    return sigmas


@click.command("eval")
@click.argument("model")
@click.option("--data", "data_dir", required=True, help="Folder of clean 8-bit test images.")
@click.option(
    "--sigma",
    "sigmas",
    default="15,25,50",
    show_default=True,
    callback=_sigma_list,
    help="AWGN σ values (0-255 scale), comma-separated.",
)
@click.option("--ensemble", is_flag=True, help="x8 self-ensemble (flips/rotations, averaged).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with per-image scores) instead of a table.")
@options.seed
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N images (sorted order).")
@click.option("--per-image", is_flag=True, help="Also list every image's PSNR/SSIM.")
@click.option("--gray", "to_gray", is_flag=True, help="Evaluate colour images as luma with a gray model.")
@click.option("--clip8", is_flag=True, help="Clip and round the noisy input to 8 bits, as a noisy 8-bit file holds it.")
@click.option(
    "--model-sigma",
    default="true",
    show_default=True,
    help="What a noise-level-conditioned model is told: true (the added σ), auto (estimated per image) or a σ.",
)
@options.threads
def eval_cmd(
    model: str,
    data_dir: str,
    sigmas: list[float],
    ensemble: bool,
    as_json: bool,
    seed: int,
    limit: int | None,
    per_image: bool,
    to_gray: bool,
    clip8: bool,
    model_sigma: str,
    threads: int,
) -> None:
    """PSNR/SSIM of MODEL on the clean images in --data at each noise level --sigma.

    MODEL is a model name with shipped weights, a .safetensors or trainer .pt file, or an exported .onnx.
    Noise: AWGN, not clipped (--clip8: clipped and rounded to 8 bits), seeded per image (seed + index in
    sorted file-name order), so numbers reproduce; the output is clipped and quantised to 8 bits; PSNR/SSIM use a
    peak of 255 (see docs/training.md). Models with a noise-level input are told the true σ by default.

    \b
    Example:
      edgedenoise eval rednet30 --data ../shared/data/BSD68 --sigma 15,25,50
      edgedenoise eval runs/rednet30_blind/best.safetensors --data ../shared/data/Set12 --sigma 25 --json
      edgedenoise eval unet3_f32_u4_nl --data ../shared/data/BSD68 --sigma 25 --clip8 --model-sigma auto
    """
    if not model.lower().endswith(".onnx"):
        needs_torch("eval")
    from ..evaluate import evaluate

    res = evaluate(
        model,
        data_dir,
        sigmas,
        seed=seed,
        ensemble=ensemble,
        limit=limit,
        to_gray=to_gray,
        threads=options.threads_or_none(threads),
        progress=True,
        clip8=clip8,
        model_sigma=model_sigma,
    )
    click.echo(json.dumps(res.to_dict(), indent=2) if as_json else res.format_table(per_image=per_image))


COMMANDS = [eval_cmd]
