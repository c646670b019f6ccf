"""``edgedenoise models``: the registered architectures (with PyTorch) or the shipped artifacts (without)."""

from __future__ import annotations

from typing import Any

import click

from .._deps import needs_torch
from ..runtime.errors import EdgeDenoiseError


@click.command("models")
def models_cmd() -> None:
    """List the models: with PyTorch, every registered architecture (parameters, MACs per pixel, size multiple,
    receptive field, inputs, shipped weights, the shipped card's σ 25 PSNR on BSD68 or CBSD68); without it (a
    runtime install), the shipped ONNX models with their precisions, MACs per pixel and that PSNR.

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
    from ..runtime.artifact import shipped_table

    rows = pretrained_table()
    scores = {r["name"]: _score(r) for r in shipped_table()}
    header = (
        "name", "params", "MACs/pixel", "size multiple", "receptive field", "inputs", "shipped weights",
        "σ25 PSNR (dB)",
    )  # fmt: skip
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
                scores.get(r["name"], "-"),
            )
            for r in rows
        ]
    )


def _macs(v: float) -> str:
    return f"{v / 1e6:.3f} M" if v >= 1e6 else f"{v / 1e3:.2f} k"


def _score(row: dict[str, Any]) -> str:
    """The card's FP32 PSNR at σ 25 on BSD68 (CBSD68 for colour), e.g. ``"28.81 (BSD68)"``, or ``"-"``."""
    return f"{row['bsd68_sigma25']:.2f} ({row['test_set']})" if row["bsd68_sigma25"] else "-"


def _shipped_rows() -> list[tuple[str, ...]]:
    from ..runtime.artifact import shipped_table

    header = ("name", "precisions", "MACs/pixel", "inputs", "trained on", "σ25 PSNR (dB)")
    rows: list[tuple[str, ...]] = [header]
    for r in shipped_table():
        macs = _macs(r["macs_per_pixel"]) if r["macs_per_pixel"] else "-"
        rows.append((r["name"], ", ".join(r["precisions"]), macs, r["inputs"], r["noise"], _score(r)))
    return rows


def _echo_table(table: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for i, row in enumerate(table):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))


COMMANDS = [models_cmd]
