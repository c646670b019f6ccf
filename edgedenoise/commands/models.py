"""``edgedenoise models``: the registered architectures (with PyTorch) or the shipped artifacts (without)."""

from __future__ import annotations

import click

from .._deps import needs_torch
from ..runtime.errors import EdgeDenoiseError


@click.command("models")
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
    from ..models import pretrained_table

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
    from ..runtime.artifact import shipped_table

    header = ("name", "precisions", "MACs/pixel", "inputs", "trained on", "σ25 PSNR (dB)")
    rows: list[tuple[str, ...]] = [header]
    for r in shipped_table():
        macs = _macs(r["macs_per_pixel"]) if r["macs_per_pixel"] else "-"
        psnr = f"{r['bsd68_sigma25']:.2f} ({r['test_set']})" if r["bsd68_sigma25"] else "-"
        rows.append((r["name"], ", ".join(r["precisions"]), macs, r["inputs"], r["noise"], psnr))
    return rows


def _echo_table(table: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for i, row in enumerate(table):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))


COMMANDS = [models_cmd]
