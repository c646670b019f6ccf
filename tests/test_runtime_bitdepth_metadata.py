"""Files as cameras write them: 10/12-bit samples in uint16 (``--bit-depth``, PNG ``sBIT``), EXIF kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from runtime_helpers import psnr_np, run_cli

from edgedenoise.runtime import Denoiser
from edgedenoise.runtime.errors import InvalidInputError
from edgedenoise.runtime.imageio import read_image, write_image

SAMPLE = Path(__file__).resolve().parent.parent / "edgedenoise" / "samples" / "cbsd432_103006_gray.png"
MODEL = "rednet12_slim64_u2"  # a shipped blind gray model, fast on the CPU


def _twelve_bit(tmp_path: Path, sbit: bool) -> tuple[Path, np.ndarray]:
    """The sample at 12 bits (0..4095) with AWGN of σ 15 on the 0-255 scale, stored in a uint16 PNG."""
    clean = np.asarray(Image.open(SAMPLE), np.float64)[:96, :128] / 255.0
    noisy = clean + np.random.default_rng(0).normal(0, 15 / 255, clean.shape)
    pixels = np.rint(np.clip(noisy, 0, 1) * 4095).astype(np.uint16)
    path = tmp_path / ("sbit.png" if sbit else "plain.png")
    chunks = PngImagePlugin.PngInfo()
    if sbit:
        chunks.add(b"sBIT", bytes([12]))
    Image.fromarray(pixels).save(path, pnginfo=chunks)
    return path, clean * 4095


@pytest.mark.parametrize("sbit", [False, True])
def test_12_bit_data_in_uint16_is_denoised_on_its_own_scale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sbit: bool
) -> None:
    src, ref = _twelve_bit(tmp_path, sbit)
    noisy = np.asarray(Image.open(src), np.float64)
    out = tmp_path / "out.png"
    args = ["infer", MODEL, str(src), "-o", str(out), "--threads", "1"] + ([] if sbit else ["--bit-depth", "12"])
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    den, info = read_image(out)
    assert den.dtype == np.uint16 and int(den.max()) <= 4095
    before, after = psnr_np(noisy, ref, 4095.0), psnr_np(den, ref, 4095.0)
    assert after >= before + 3.0, (before, after)
    if sbit:
        assert info.significant_bits == 12  # written back
    # without the bit depth the same file is taken for 16-bit data: far darker than the model's range, so it
    # is denoised on the wrong scale (the defect this option fixes)
    with Denoiser(MODEL, threads=1) as dn:
        wrong = dn(np.asarray(Image.open(src)))
    assert psnr_np(wrong, ref, 4095.0) < after - 3.0


def test_bit_depth_is_checked() -> None:
    with Denoiser(MODEL, threads=1) as dn:
        with pytest.raises(InvalidInputError, match="above the 1023 of 10-bit"):
            dn(np.full((8, 8), 4000, np.uint16), bit_depth=10)
        with pytest.raises(InvalidInputError, match="1 to 16"):
            dn(np.zeros((8, 8), np.uint16), bit_depth=17)


def test_jpeg_keeps_exif_with_orientation_reset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132], exif[0x0112] = "Canon", "EOS R5", "2026:11:30 10:00:00", 6
    src = tmp_path / "photo.jpg"
    Image.open(SAMPLE).crop((0, 0, 64, 48)).convert("RGB").save(src, exif=exif.tobytes(), quality=95)
    out = tmp_path / "out" / "photo.jpg"
    code, _, err = run_cli(["infer", MODEL, str(src), "-o", str(out), "--threads", "1"], capsys)
    assert code == 0, err
    with Image.open(out) as im:
        kept = im.getexif()
        assert im.size == (48, 64)  # orientation 6 applied: the pixels are upright
    assert (kept.get(0x010F), kept.get(0x0110), kept.get(0x0132)) == ("Canon", "EOS R5", "2026:11:30 10:00:00")
    assert kept.get(0x0112, 1) == 1  # and no longer rotated a second time by viewers


def test_png_and_tiff_keep_exif(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Sony"
    for suffix in (".png", ".tif"):
        src = tmp_path / f"a{suffix}"
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(src, exif=exif.tobytes())
        pixels, info = read_image(src)
        write_image(tmp_path / f"b{suffix}", pixels, info)
        assert Image.open(tmp_path / f"b{suffix}").getexif().get(0x010F) == "Sony"
