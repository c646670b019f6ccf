"""The ``edgedenoise`` command line: one click group, each command a thin adapter over one library call.

Errors: library code raises :class:`EdgeDenoiseError` subclasses; :func:`main` is the single place that turns
them into one stderr line and exit code 1 (``--debug`` shows the traceback). Heavy modules (torch, onnx) are
imported inside the commands, so ``edgedenoise --help`` and the runtime commands work without torch.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from . import __version__
from ._deps import needs_torch
from .commands import register as register_commands
from .runtime.errors import EdgeDenoiseError

_DEBUG = False


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="edgedenoise")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
def cli(debug: bool) -> None:
    """Image-denoising CNNs (RED-Net, MemNet) from training to ONNX / TensorRT on the edge.

    \b
    Example:
      edgedenoise models
    """
    global _DEBUG
    _DEBUG = debug


@cli.command("models")
def models_cmd() -> None:
    """List the models: with PyTorch, every registered architecture (parameters, MACs per pixel, size multiple,
    receptive field, inputs, shipped weights); without it (a runtime install), the shipped ONNX models with
    their precisions, MACs per pixel and BSD68 PSNR from their cards.

    \b
    Example:
      edgedenoise models
    """
    try:
        needs_torch("models")
    except EdgeDenoiseError:
        _echo_table(_shipped_rows())
        click.echo("(runtime install: the shipped models; install PyTorch to list every registered architecture)")
        return
    from .models import pretrained_table

    rows = pretrained_table()
    header = ("name", "params", "MACs/pixel", "size multiple", "receptive field", "inputs", "shipped weights")
    _echo_table(
        [header]
        + [
            (
                r["name"],
                f"{r['params']:,}",
                _macs(r["macs_per_pixel"]),
                str(r["size_multiple"]),
                str(r["receptive_field"]),
                r["inputs"],
                r["shipped"],
            )
            for r in rows
        ]
    )


def _macs(v: float) -> str:
    return f"{v / 1e6:.3f} M" if v >= 1e6 else f"{v / 1e3:.2f} k"


def _shipped_rows() -> list[tuple[str, ...]]:
    from .runtime.artifact import shipped_table

    header = ("name", "precisions", "MACs/pixel", "inputs", "trained on", "BSD68 σ25 (dB)")
    rows: list[tuple[str, ...]] = [header]
    for r in shipped_table():
        macs = _macs(r["macs_per_pixel"]) if r["macs_per_pixel"] else "-"
        psnr = f"{r['bsd68_sigma25']:.2f}" if r["bsd68_sigma25"] else "-"
        rows.append((r["name"], ", ".join(r["precisions"]), macs, r["inputs"], r["noise"], psnr))
    return rows


def _echo_table(table: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for i, row in enumerate(table):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))


@cli.command("train")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--resume", type=click.Path(exists=True, dir_okay=False), help="Continue from a last.pt checkpoint.")
@click.option("--out-dir", help="Override the config's out_dir.")
@click.option("--steps", type=int, help="Override the config's steps.")
@click.option("--no-progress", is_flag=True, help="No progress bar (for logs).")
def train_cmd(config: str, resume: str | None, out_dir: str | None, steps: int | None, no_progress: bool) -> None:
    """Train a model from a YAML CONFIG (one file per experiment; see configs/).

    Under `torchrun --nproc-per-node N` it trains with DistributedDataParallel.

    \b
    Example:
      edgedenoise train configs/rednet30_blind.yaml
      edgedenoise train configs/rednet30_blind.yaml --resume runs/rednet30_blind/last.pt
    """
    needs_torch("train")
    from .train import load_config, train

    result = train(load_config(config, out_dir=out_dir, steps=steps), resume=resume, progress=not no_progress)
    click.echo(
        f"best validation PSNR {result['best_psnr']:.3f} dB at step {result['best_step']} "
        f"({result['steps']} steps, {result['wall_s'] / 60:.1f} min); weights: {result['run_dir']}/best.safetensors"
    )


register_commands(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn project errors into one line on stderr and exit code 1."""
    try:
        rv: Any = cli.main(args=argv, prog_name="edgedenoise", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except click.exceptions.Abort:  # click turns Ctrl-C (KeyboardInterrupt) into Abort; we have no prompts
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EdgeDenoiseError as exc:
        if _DEBUG:
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
