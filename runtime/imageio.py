"""Image files in and out, through Pillow, without losing mode or bit depth.

Reading returns the pixels as a numpy array plus an :class:`ImageInfo` that remembers what the file was
(mode, bit depth, alpha), so :func:`write_image` can write the result back in the same form. Writing is
atomic: a temporary file in the destination folder, then ``os.replace``. Decompression bombs (more than
``MAX_PIXELS`` pixels) are rejected before decoding.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InvalidInputError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
MAX_PIXELS = 200_000_000  # 200 MP; Pillow's own default warns at 89 MP and refuses at 179 MP


@dataclass(frozen=True)
class ImageInfo:
    """What a decoded file was: Pillow ``mode``, file ``format``, and the alpha plane if it had one.

    ``alpha`` is ``(H, W)`` in the file's dtype, passed through untouched on write.
    """

    mode: str
    format: str | None
    alpha: np.ndarray | None = None


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Image files (by suffix: PNG, TIFF, JPEG, BMP) in ``folder``, sorted.

    Raises:
        InvalidInputError: ``folder`` is not a directory or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"image folder {str(folder)!r} does not exist or is not a directory")
    it = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(p for p in it if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InvalidInputError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {str(folder)!r}")
    return files


def read_image(path: str | Path) -> tuple[np.ndarray, ImageInfo]:
    """Decode an image file without changing its sample values.

    Returns:
        ``(pixels, info)``: pixels are ``(H, W)`` for gray or ``(H, W, 3)`` for colour, dtype ``uint8``
        (8-bit files), ``uint16`` (16-bit gray PNG/TIFF) or ``float32`` (float TIFF, values as stored).
        Palette images become RGB (or gray if the palette is gray-only is not checked: always RGB); LA/RGBA
        keep their alpha in ``info.alpha``; CMYK JPEG becomes RGB; EXIF orientation is applied.

    Raises:
        InvalidInputError: missing, empty, truncated, not an image, multi-frame, larger than ``MAX_PIXELS``,
            or a mode we cannot denoise (e.g. 1-bit); the message names the file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise InvalidInputError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise InvalidInputError(f"{name}: file is empty")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise InvalidInputError(
                    f"{name}: {w}x{h} = {w * h:,} pixels exceeds the limit of {MAX_PIXELS:,} "
                    "(raise edgedenoise.runtime.imageio.MAX_PIXELS if the file is trusted)"
                )
            if w == 0 or h == 0:
                raise InvalidInputError(f"{name}: image has zero size ({w}x{h})")
            frames = int(getattr(im, "n_frames", 1))
            if frames > 1:
                raise InvalidInputError(f"{name}: has {frames} frames; split it into single images first")
            fmt = im.format
            upright = ImageOps.exif_transpose(im)
            upright.load()
            return _to_array(upright, name, fmt)
    except InvalidInputError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInputError(f"{name}: cannot decode as an image ({exc})") from exc


def _to_array(im: object, name: str, fmt: str | None) -> tuple[np.ndarray, ImageInfo]:
    from PIL import Image

    assert isinstance(im, Image.Image)
    mode = im.mode
    alpha = None
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode_out = im.mode
    elif mode == "CMYK":
        im = im.convert("RGB")
        mode_out = "RGB"
    else:
        mode_out = mode
    if mode_out in ("LA", "RGBA"):
        arr = np.asarray(im)
        alpha = arr[..., -1].copy()
        arr = arr[..., :-1]
        if mode_out == "LA":
            arr = arr[..., 0]
        return np.ascontiguousarray(arr), ImageInfo(mode_out, fmt, alpha)
    if mode_out in ("L", "RGB"):
        return np.asarray(im).copy(), ImageInfo(mode_out, fmt)
    if mode_out in ("I;16", "I;16B", "I;16L"):
        return np.asarray(im).astype(np.uint16), ImageInfo("I;16", fmt)
    if mode_out == "I":
        arr = np.asarray(im)
        if arr.min() < 0 or arr.max() > 65535:
            raise InvalidInputError(
                f"{name}: 32-bit integer image with values outside 0..65535 is not supported"
            )
        return arr.astype(np.uint16), ImageInfo("I;16", fmt)
    if mode_out == "F":
        return np.asarray(im).astype(np.float32), ImageInfo("F", fmt)
    raise InvalidInputError(
        f"{name}: image mode {mode!r} is not supported; convert it to 8/16-bit gray or RGB first"
    )


def write_image(path: str | Path, pixels: np.ndarray, info: ImageInfo | None = None) -> Path:
    """Write pixels atomically in the form ``info`` describes (default: inferred from dtype and shape).

    Args:
        path: destination; its suffix picks the format (PNG, TIFF, JPEG, BMP).
        pixels: ``(H, W)`` or ``(H, W, 3)``, ``uint8``, ``uint16`` (gray) or ``float32`` (gray, TIFF only).
        info: from :func:`read_image`; restores the alpha plane and the mode.

    Raises:
        InvalidInputError: the format cannot hold these pixels (e.g. 16-bit into JPEG); nothing is written.
    """
    from PIL import Image

    path = Path(path)
    arr = np.ascontiguousarray(pixels)
    if arr.dtype == np.uint16:
        if arr.ndim != 2:
            raise InvalidInputError(f"{path}: 16-bit colour output is not supported by Pillow; write 8-bit")
        im = Image.fromarray(arr.astype(np.uint16), mode="I;16")
    elif arr.dtype == np.float32:
        im = Image.fromarray(arr, mode="F")
    elif arr.dtype == np.uint8:
        im = Image.fromarray(arr)
    else:
        raise InvalidInputError(f"{path}: cannot write dtype {arr.dtype}; use uint8, uint16 or float32")
    if info is not None and info.alpha is not None:
        a = Image.fromarray(info.alpha)
        im = Image.merge("LA" if im.mode == "L" else "RGBA", [*im.split(), a])
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg") and im.mode not in ("L", "RGB"):
        raise InvalidInputError(f"{path}: JPEG cannot store mode {im.mode}; write a .png or .tif instead")
    if suffix == ".bmp" and im.mode not in ("L", "RGB", "RGBA"):
        raise InvalidInputError(f"{path}: BMP cannot store mode {im.mode}; write a .png or .tif instead")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        kwargs = {"quality": 95} if suffix in (".jpg", ".jpeg") else {}
        im.save(tmp, format=Image.registered_extensions().get(suffix), **kwargs)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def to_float(pixels: np.ndarray) -> np.ndarray:
    """Integer pixels to float32 in [0, 1] (uint8 / 255, uint16 / 65535); float32 passes through."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / 255.0
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / 65535.0
    return pixels.astype(np.float32, copy=False)


def from_float(x: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """float in [0, 1] back to ``dtype`` (uint8/uint16 rounded and clipped; float32 clipped to [0, 1])."""
    dt = np.dtype(dtype)
    if dt == np.uint8:
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    if dt == np.uint16:
        return np.clip(np.rint(x * 65535.0), 0, 65535).astype(np.uint16)
    return np.clip(x, 0.0, 1.0).astype(dt)
