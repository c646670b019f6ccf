"""``edgedenoise prune`` and ``edgedenoise distill``: adapters over :mod:`edgedenoise.compress`."""

from __future__ import annotations

from pathlib import Path

import click

from .._deps import needs_torch
from ..runtime.errors import ConfigError
from . import options


@click.command("prune")
@click.argument("model")
@click.option("--ratio", type=float, required=True, help="Fraction of each hidden layer's channels to remove.")
@click.option(
    "--importance",
    type=click.Choice(["magnitude", "taylor"]),
    default="magnitude",
    show_default=True,
    help="Channel-group importance: L2 norm, or first-order Taylor on noisy patches from --data.",
)
@click.option("--round-to", type=click.IntRange(min=1), default=8, show_default=True, help="Channel multiple.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), help="Training images (Taylor only).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Pruned .safetensors.")
@click.option("--finetune", type=click.Path(dir_okay=False), help="Then fine-tune with this training config.")
def prune_cmd(
    model: str, ratio: float, importance: str, round_to: int, data_dir: str | None, output: str, finetune: str | None
) -> None:
    """Structured channel pruning of MODEL (a name with shipped weights, .safetensors or .pt) with torch-pruning.

    Every hidden layer keeps the same width, a multiple of --round-to; the result loads like any weights file.
    With --finetune CONFIG, the pruned weights become the config's init_weights and training starts.

    \b
    Example:
      edgedenoise prune rednet30 --ratio 0.5 -o runs/rednet30_p50/pruned.safetensors
      edgedenoise prune rednet30 --ratio 0.5 -o pruned.safetensors --finetune configs/compress/rednet30_p50_ft.yaml
    """
    needs_torch("prune")
    from ..compress import prune_model
    from ..models import load_torch_model, save_weights

    out = Path(output)
    if out.exists() and out.resolve() == Path(model).resolve():
        raise ConfigError(f"-o {output} is the input model; write the pruned weights to a new file")
    res = prune_model(load_torch_model(model), ratio, importance=importance, round_to=round_to, data_dir=data_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(res.model, out, {"pruned_from": model, "prune_ratio": str(ratio), "importance": importance})
    click.echo(
        f"pruned {res.width_before} -> {res.width_after} channels: {res.params_before:,} -> {res.params_after:,} "
        f"params, {res.macs_before:,.0f} -> {res.macs_after:,.0f} MACs/pixel; wrote {out}"
    )
    if finetune:
        from ..train import load_config, train

        result = train(load_config(finetune, init_weights=str(out)))
        click.echo(f"fine-tuned: best validation PSNR {result['best_psnr']:.3f} dB; {result['run_dir']}")


@click.command("distill")
@click.argument("teacher")
@click.argument("student")
@click.option("--config", type=click.Path(dir_okay=False), help="Training config (data, noise, optimiser, budget).")
@click.option("--weight", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Teacher share α.")
@click.option("--init", "init_weights", type=click.Path(dir_okay=False), help="Warm-start the student.")
@options.run_dir
@options.steps
@options.no_progress
def distill_cmd(
    teacher: str,
    student: str,
    config: str | None,
    weight: float,
    init_weights: str | None,
    out_dir: str | None,
    steps: int | None,
    no_progress: bool,
) -> None:
    """Train the registered STUDENT against TEACHER's output and the clean image (knowledge distillation).

    TEACHER is a name with shipped weights, a .safetensors or a trainer .pt; the loss is
    MSE(student, (1 - α)·clean + α·teacher(noisy)).

    \b
    Example:
      edgedenoise distill rednet30 rednet12_slim64_u2 --config configs/compress/rednet12_slim64_u2_distill.yaml
    """
    needs_torch("distill")
    from ..compress import distill_config
    from ..train import train

    cfg = distill_config(
        teacher, student, config=config, weight=weight, out_dir=out_dir, steps=steps, init_weights=init_weights
    )
    result = train(cfg, progress=not no_progress)
    click.echo(
        f"best validation PSNR {result['best_psnr']:.3f} dB at step {result['best_step']}; "
        f"weights: {result['run_dir']}/best.safetensors"
    )


COMMANDS = [prune_cmd, distill_cmd]
