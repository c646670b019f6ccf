"""Image files: round trips keep mode, bit depth and alpha; what Pillow would degrade is refused; writes are atomic."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgedenoise.runtime.errors import InvalidInputError
from edgedenoise.runtime.imageio import list_images, read_image, write_image


def png16(path: Path, arr: np.ndarray, color_type: int) -> Path:
    """Write a 16-bit PNG by hand (Pillow cannot write 16-bit colour): IHDR, one zlib IDAT, IEND (PNG spec §11)."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    return path


RNG = np.random.default_rng(0)
GRAY8 = RNG.integers(0, 256, (13, 17), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, (13, 17, 3), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, (13, 17), dtype=np.uint16)
ALPHA = RNG.integers(0, 256, (13, 17), dtype=np.uint8)


@pytest.mark.parametrize(
    "name,pixels,mode",
    [
        ("g.png", GRAY8, "L"),
        ("c.png", RGB8, "RGB"),
        ("g16.png", GRAY16, "I;16"),
        ("g16.tif", GRAY16, "I;16"),
        ("c.tif", RGB8, "RGB"),
        ("g.bmp", GRAY8, "L"),
        ("c.bmp", RGB8, "RGB"),
        ("f.tif", RNG.random((13, 17), dtype=np.float32), "F"),
    ],
)
def test_lossless_round_trip(tmp_path: Path, name: str, pixels: np.ndarray, mode: str) -> None:
    write_image(tmp_path / name, pixels)
    got, info = read_image(tmp_path / name)
    assert info.mode == mode and got.dtype == pixels.dtype
    np.testing.assert_array_equal(got, pixels)
    assert Image.open(tmp_path / name).mode == mode  # Pillow's own view of the written file


def test_alpha_passes_through_untouched(tmp_path: Path) -> None:
    for mode, base in (("RGBA", RGB8), ("LA", GRAY8)):
        src = tmp_path / f"{mode}.png"
        planes = [base[..., i] for i in range(3)] if base.ndim == 3 else [base]
        Image.merge(mode, [Image.fromarray(p) for p in [*planes, ALPHA]]).save(src)
        px, info = read_image(src)
        assert info.mode == mode and px.shape == base.shape
        np.testing.assert_array_equal(info.alpha, ALPHA)
        write_image(tmp_path / f"out_{mode}.png", 255 - px, info)
        out = np.asarray(Image.open(tmp_path / f"out_{mode}.png"))
        np.testing.assert_array_equal(out[..., -1], ALPHA)
        assert Image.open(tmp_path / f"out_{mode}.png").mode == mode


def test_jpeg_keeps_shape_and_mode(tmp_path: Path) -> None:
    Image.fromarray(RGB8).save(tmp_path / "c.jpg", quality=90)
    px, info = read_image(tmp_path / "c.jpg")
    assert px.shape == RGB8.shape and info.mode == "RGB" and info.format == "JPEG"
    write_image(tmp_path / "o.jpg", px, info)
    assert Image.open(tmp_path / "o.jpg").mode == "RGB"


def test_palette_becomes_rgb(tmp_path: Path) -> None:
    Image.fromarray(RGB8).convert("P").save(tmp_path / "p.png")
    px, info = read_image(tmp_path / "p.png")
    assert info.mode == "RGB" and px.shape == RGB8.shape
    np.testing.assert_array_equal(px, np.asarray(Image.open(tmp_path / "p.png").convert("RGB")))


def test_icc_profile_is_kept(tmp_path: Path) -> None:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(RGB8).save(tmp_path / "icc.png", icc_profile=icc)
    px, info = read_image(tmp_path / "icc.png")
    write_image(tmp_path / "o.png", px, info)
    assert Image.open(tmp_path / "o.png").info.get("icc_profile") == icc


def _refused(tmp_path: Path) -> dict[str, Path]:
    files = {
        "rgb16": png16(tmp_path / "rgb16.png", RNG.integers(0, 65536, (5, 6, 3)).astype(np.uint16), 2),
        "la16": png16(tmp_path / "la16.png", RNG.integers(0, 65536, (5, 6, 2)).astype(np.uint16), 4),
    }
    Image.fromarray(GRAY8).convert("1").save(tmp_path / "bilevel.png")
    Image.fromarray(RGB8).convert("CMYK").save(tmp_path / "cmyk.jpg")
    frames = [Image.fromarray(GRAY8), Image.fromarray(255 - GRAY8)]
    frames[0].save(tmp_path / "multi.tif", save_all=True, append_images=frames[1:])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("this is a text file, not a PNG\n")
    Image.fromarray(RGB8).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(RNG.integers(0, 256, 300, dtype=np.uint8)))
    for name in ("bilevel.png", "cmyk.jpg", "multi.tif", "empty.png", "text.png", "truncated.png", "garbage.png"):
        files[name] = tmp_path / name
    return files


def test_refused_files_name_the_file(tmp_path: Path) -> None:
    expect = {
        "rgb16": "16-bit colour",
        "la16": "16-bit colour",
        "bilevel.png": "mode '1'",
        "cmyk.jpg": "mode 'CMYK'",
        "multi.tif": "2 frames",
        "empty.png": "empty",
        "text.png": "cannot decode",
        "truncated.png": "cannot decode",
        "garbage.png": "cannot decode",
    }
    for key, path in _refused(tmp_path).items():
        with pytest.raises(InvalidInputError) as err:
            read_image(path)
        msg = str(err.value)
        assert msg.startswith(str(path)) and expect[key] in msg and "\n" not in msg, (key, msg)


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    dst = tmp_path / "keep.jpg"
    dst.write_bytes(b"old content")
    with pytest.raises(InvalidInputError, match="JPEG cannot store mode I;16"):
        write_image(dst, GRAY16)
    with pytest.raises(InvalidInputError, match="cannot write"):
        write_image(tmp_path / "x.png", RNG.random((4, 4, 3)).astype(np.float32))
    assert dst.read_bytes() == b"old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jpg"]


def test_list_images_recursive_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".cache").mkdir()
    for rel in ("x.PNG", "a/y.tif", "a/b/z.jpeg", ".hidden.png", ".cache/w.png", "a/notes.txt"):
        (tmp_path / rel).write_bytes(b"")
    got = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)]
    assert got == ["a/b/z.jpeg", "a/y.tif", "x.PNG"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no image files"):
        list_images(tmp_path / "empty")
