"""``edgedenoise train``: train a model from a YAML config (adapter over :func:`edgedenoise.train.train`)."""

from __future__ import annotations

import click

from .._deps import needs_torch
from . import options


@click.command("train")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--resume", type=click.Path(exists=True, dir_okay=False), help="Continue from a last.pt checkpoint.")
@options.run_dir
@options.steps
@options.no_progress
def train_cmd(config: str, resume: str | None, out_dir: str | None, steps: int | None, no_progress: bool) -> None:
    """Train a model from a YAML CONFIG (one file per experiment; see configs/).

    Under `torchrun --nproc-per-node N` it trains with DistributedDataParallel. CPU threads come from the
    config's `threads` key.

    \b
    Example:
      edgedenoise train configs/rednet30_blind.yaml
      edgedenoise train configs/rednet30_blind.yaml --resume runs/rednet30_blind/last.pt
    """
    needs_torch("train")
    from ..train import load_config, train

    result = train(load_config(config, out_dir=out_dir, steps=steps), resume=resume, progress=not no_progress)
    click.echo(
        f"best validation PSNR {result['best_psnr']:.3f} dB at step {result['best_step']} "
        f"({result['steps']} steps, {result['wall_s'] / 60:.1f} min); weights: {result['run_dir']}/best.safetensors"
    )


COMMANDS = [train_cmd]
