"""``export``, ``build`` and ``compare``: thin adapters over :mod:`edgedenoise.export`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from .._deps import needs_torch
from . import options

if TYPE_CHECKING:
    from ..export.pipeline import ArtifactRecord
    from ..export.quality import QualityReport


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _db(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.2f}"


def format_table(records: Sequence[ArtifactRecord]) -> list[str]:
    """Rows of the ``export`` summary: artifact, precision, size, PSNR vs FP32 (and drop), where written."""
    from ..export.pipeline import ArtifactKind

    header = ("artifact", "precision", "size", "PSNR vs FP32", "PSNR change", "path")
    rows = [header]
    for r in records:
        q = r.quality
        if not r.written:
            rows.append((r.path.name, r.label, "-", "FAILED", "-", "not written (over budget, see below)"))
            continue
        rows.append(
            (
                r.path.name,
                r.label,
                _size(r.size_bytes),
                "reference"
                if r.precision == "fp32" and r.kind is ArtifactKind.ONNX
                else (_db(q.psnr_vs_fp32_db) + " dB" if q else "-"),
                f"{-q.drop_db:+.3f} dB" if q else "-",  # against clean images: negative = lost to INT8/FP16
                str(r.path),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _report_lines(rep: QualityReport, a: str, b: str) -> list[str]:
    return [
        f"images: {rep.n_images}, AWGN sigma {rep.sigma:g}",
        f"PSNR vs clean: A {rep.psnr_fp32_db:.3f} dB, B {rep.psnr_db:.3f} dB (B - A: {-rep.drop_db:+.3f} dB)",
        f"SSIM vs clean: A {rep.ssim_fp32:.4f}, B {rep.ssim:.4f}",
        f"B vs A: PSNR {_db(rep.psnr_vs_fp32_db)} dB, max |B - A| {rep.max_abs_err:.3e}, finite: {rep.finite}",
    ]


def _parse_sigmas(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    """``"15,25,40"`` -> ``(15.0, 25.0, 40.0)``; each level in (0, 255]."""
    if value is None:
        return None
    try:
        levels = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers, e.g. 15,25,40") from None
    bad = [v for v in levels if not 0 < v <= 255]
    if bad:
        raise click.BadParameter(f"noise levels are on the 0-255 scale, in (0, 255]; got {bad[0]:g}")
    return levels


@click.command("export")
@click.option("--model", "model", required=True, help="Registered name (shipped weights), .safetensors or trainer .pt.")
@click.option("-o", "--out-dir", default="out", show_default=True, help="Output folder.")
@click.option("--fp16", is_flag=True, help="Also write <name>.fp16.onnx (gated on finiteness and PSNR).")
@click.option("--int8", is_flag=True, help="Also write calibrated INT8 QDQ models (cpu and trt flavours).")
@click.option(
    "--flavour", "flavours", multiple=True, type=click.Choice(["cpu", "trt"]), help="INT8 flavour(s); default both."
)
@click.option(
    "--calib",
    "calib_dir",
    type=click.Path(file_okay=False),
    help="Calibration images (default calib_data/gray; calib_data/rgb for a colour model).",
)
@click.option(
    "--val",
    "val_dir",
    type=click.Path(file_okay=False),
    help="Quality-gate images, clean, not the calibration ones (default calib_data/val_gray; val_rgb for colour).",
)
@click.option(
    "--calib-method",
    type=click.Choice(["auto", "minmax", "entropy", "percentile"]),
    default="auto",
    show_default=True,
    help="Activation ranges; auto: percentile 99.99 for both flavours (measured, docs/export.md).",
)
@click.option("--int8-budget-db", type=float, default=0.1, show_default=True, help="Largest INT8 PSNR drop vs FP32.")
@click.option(
    "--calib-sigmas",
    callback=_parse_sigmas,
    help="AWGN levels (0-255, comma-separated) of the calibration inputs; default: for a shipped model those of"
    " its shipped INT8 file, else spread over the trained range."
    " Narrow it to your noise (e.g. 15,25,40) for an INT8 file that keeps fewer layers in float, docs/export.md.",
)
@click.option(
    "--quantize-first-conv",
    is_flag=True,
    help="Quantize the Conv(s) reading the noisy image too (by default they stay float: an 8-bit input costs"
    " ~0.09 dB, docs/export.md).",
)
@options.threads
@options.no_progress
def export_cmd(
    model: str,
    out_dir: str,
    fp16: bool,
    int8: bool,
    flavours: tuple[str, ...],
    calib_dir: str | None,
    val_dir: str | None,
    calib_method: str,
    int8_budget_db: float,
    calib_sigmas: tuple[float, ...] | None,
    quantize_first_conv: bool,
    threads: int,
    no_progress: bool,
) -> None:
    """Export a model to ONNX (FP32, re-parameterised) and optionally FP16 and INT8 artifacts.

    Each artifact is checked against FP32 on held-out images (PSNR/SSIM); INT8 layers that cost too much are
    kept in float until the drop is within --int8-budget-db. Engines are built when TensorRT is installed.

    \b
    Example:
      edgedenoise export --model rednet --int8 -o out
      edgedenoise export --model runs/rednet30_blind/best.safetensors --fp16 --int8 --calib-method entropy
    """
    needs_torch("export", "train,export")
    from ..evaluate import torch_threads
    from ..export.errors import CalibrationError
    from ..export.pipeline import ExportOptions, export_model
    from ..export.tensorrt_build import engine_notice, engines_available

    if int8 and calib_sigmas is None:
        calib_sigmas = shipped_calibration_sigmas(model)
        if calib_sigmas:
            levels = ", ".join(f"{v:g}" for v in calib_sigmas)
            click.echo(f"calibration σ {levels}: those of the shipped INT8 file (--calib-sigmas overrides them)")
    with torch_threads(threads):  # torch runs the FP32 reference; export_model's threads= (0: all cores) is ORT's
        records = export_model(
            model, out_dir,
            ExportOptions(
                fp16=fp16, int8=int8, flavours=flavours or ("cpu", "trt"), calib_dir=calib_dir, val_dir=val_dir,
                calib_method=calib_method, int8_budget_db=int8_budget_db, quantize_first_conv=quantize_first_conv,
                calib_sigmas=calib_sigmas, threads=threads, progress=not no_progress, strict=False,
            ),
        )  # fmt: skip
    for line in format_table(records):
        click.echo(line)
    for r in records:
        if r.kept_float:
            n = len(r.kept_float)
            click.echo(f"{r.path.name}: {n} node{'s' if n != 1 else ''} kept in float: {', '.join(r.kept_float)}")
    if not engines_available():
        written = [r for r in records if r.written]
        gpu = [r.path for r in written if r.precision == "fp16" or (r.precision == "int8" and r.flavour == "trt")]
        click.echo(engine_notice(gpu or [r.path for r in written[:1]]))
    failed = [r for r in records if not r.written]
    if failed:
        raise CalibrationError("; ".join(f"{r.path.name} not written: {r.failure}" for r in failed))


def shipped_calibration_sigmas(model: str) -> tuple[float, ...] | None:
    """The AWGN levels (0-255) the shipped CPU INT8 file of model name ``model`` was calibrated at, read from its
    ``edgedenoise.calibration`` metadata; None for a model file, a name without a shipped INT8 file, or a file
    without the record. Re-exporting a shipped model then reproduces the shipped calibration.

    Raises:
        UnknownModelError: ``model`` is neither a file nor a registered name.
    """
    import json

    from ..export.onnx_export import read_metadata
    from ..export.quantize import CALIBRATION_KEY
    from ..models import model_file
    from ..models.pretrained import WEIGHTS_DIR
    from ..models.registry import resolve_name

    if model_file(model) is not None:
        return None
    path = WEIGHTS_DIR / f"{resolve_name(model)}.int8.cpu.onnx"
    if not path.is_file():
        return None
    meta = read_metadata(path)
    if CALIBRATION_KEY not in meta:
        return None
    sigmas = json.loads(meta[CALIBRATION_KEY]).get("sigmas")
    return tuple(float(v) for v in sigmas) if sigmas else None


@click.command("build")
@click.argument("onnx_path", metavar="MODEL.onnx", type=click.Path(dir_okay=False))
@click.option("--fp16", "precision", flag_value="fp16", help="FP16 engine (from a .fp16.onnx, or an FP32 file).")
@click.option("--int8", "precision", flag_value="int8", help="INT8 engine (from a .int8.trt.onnx QDQ file).")
@options.size_option("--min", "min_hw", default="64x64", help="Smallest input of the profile")
@options.size_option("--opt", "opt_hw", default="512x512", help="Input size the engine is tuned for")
@options.size_option("--max", "max_hw", default="1920x1080", help="Largest input of the profile")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Largest batch of the profile.")
@click.option("-o", "--output", "engine_path", help="Engine file (default <name>.<precision>.engine beside the ONNX).")
@click.option("--force", is_flag=True, help="Rebuild even if the existing engine's sidecar matches.")
def build_cmd(
    onnx_path: str,
    precision: str | None,
    min_hw: str,
    opt_hw: str,
    max_hw: str,
    batch: int,
    engine_path: str | None,
    force: bool,
) -> None:
    """Build a TensorRT engine (with a JSON sidecar) from an exported ONNX file, on this machine's GPU.

    \b
    Example:
      edgedenoise build out/rednet30.int8.trt.onnx --max 1920x1080
      edgedenoise build out/rednet30.fp16.onnx --opt 1280x720 --batch 2
    """
    from ..export.tensorrt_build import build_engine, parse_hw

    res = build_engine(
        onnx_path, engine_path, precision=precision, min_hw=parse_hw(min_hw), opt_hw=parse_hw(opt_hw),
        max_hw=parse_hw(max_hw), batch=batch, force=force,
    )  # fmt: skip
    state = "reused (sidecar matches)" if res.reused else "built"
    if res.rebuilt_because:
        state = "rebuilt (" + "; ".join(res.rebuilt_because) + ")"
    p = res.meta.profile  # (N, C, H, W) shapes, shown as WxH like the options
    sizes = " ".join(f"{k} {s[3]}x{s[2]}" for k, s in (("min", p.min), ("opt", p.opt), ("max", p.max)))
    click.echo(f"{res.engine_path}: {state}; {res.meta.precision}, profile {sizes}, batch up to {p.max[0]}")


@click.command("compare")
@click.argument("a", type=click.Path(exists=True, dir_okay=False))
@click.argument("b", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False), help="Folder of clean images.")
@click.option("--sigma", type=float, default=25.0, show_default=True, help="AWGN sigma (0-255) added to each image.")
@options.seed
@options.threads
def compare_cmd(a: str, b: str, data_dir: str, sigma: float, seed: int, threads: int) -> None:
    """Run two ONNX artifacts on the same noisy images and report PSNR/SSIM and their differences.

    \b
    Example:
      edgedenoise compare out/rednet30.onnx out/rednet30.int8.cpu.onnx --data calib_data/val_gray
    """
    from ..export.quality import compare_artifacts

    rep = compare_artifacts(a, b, data_dir, sigma=sigma, seed=seed, threads=threads)  # threads 0: all cores
    for line in _report_lines(rep, a, b):
        click.echo(line)


COMMANDS = [export_cmd, build_cmd, compare_cmd]
