"""Image files in and out, through Pillow, without losing mode or bit depth.

Reading returns the pixels as a numpy array plus an :class:`ImageInfo` that remembers what the file was
(mode, format, alpha, ICC profile, TIFF compression), so :func:`write_image` can write the result back in the
same form. Writing is atomic: a hidden temporary file in the destination folder, ``fsync``, then
``os.replace``, so a crash never leaves a half-written image and an existing file is replaced only by a
complete one. A process killed mid-write can leave its temporary file (``.<name>.edgedenoise-<pid>-*.tmp``);
:func:`remove_stale_temps` deletes those once their process is gone (``edgedenoise infer`` does it for every
output folder it writes to).

What is supported, and what is refused rather than silently changed:

* 8-bit gray (``L``) and RGB, with or without alpha (``LA``, ``RGBA``: the alpha plane is passed through
  untouched); 16-bit gray (``I;16``, PNG and TIFF); 32-bit float gray TIFF (``F``).
* Palette images (``P``) are expanded to RGB / RGBA and written back as such: a denoised image has more
  colours than a palette holds.
* **Refused** (:class:`InvalidInputError`): 16-bit colour or 16-bit gray+alpha (Pillow decodes them to 8 bits
  per sample, which would silently throw away half the bit depth), bilevel (``1``), CMYK, YCbCr, LAB, HSV,
  32-bit integer, multi-frame files, empty / truncated / non-image files, and images over ``MAX_PIXELS``.
* EXIF orientation is applied on read, so the pixels (and the written output) are upright.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import TEMP_SUFFIX, TEMP_TAG, write_atomic
from .errors import InvalidInputError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
MAX_PIXELS = 178_956_970  # Pillow's own refusal threshold (2 x Image.MAX_IMAGE_PIXELS); ~13000 x 13000
# Pillow raw modes that hold 16 bits per sample but decode to an 8-bit mode (precision would be lost).
_WIDE_RAWMODE = re.compile(r"^(RGBX?|RGBA|LA|L|CMYK|YCbCr);16[BLN]?$")
_LOSSLESS_TIFF = ("tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits")
# Temporary files of atomic writes: hidden, beside the destination, named after it and the writing process,
# e.g. ".a.png.edgedenoise-4711-k3j9x2ab.tmp", so that a later run can recognise and remove the ones a killed
# process left behind (see remove_stale_temps).
_TEMP_NAME = re.compile(r"^\..+" + re.escape(TEMP_TAG) + r"(?P<pid>\d+)-[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX) + "$")


@dataclass(frozen=True)
class ImageInfo:
    """What a decoded file was.

    Attributes:
        mode: Pillow mode of the pixels returned (``L``, ``RGB``, ``LA``, ``RGBA``, ``I;16``, ``F``).
        format: Pillow's file format name (``PNG``, ``TIFF``, ``JPEG``, ``BMP``), None if unknown.
        alpha: ``(H, W)`` alpha plane in the file's dtype, passed through untouched on write; None without alpha.
        icc_profile: the embedded ICC profile, written back where the format holds one.
        compression: a lossless TIFF compression to keep (``tiff_lzw``, ...), else None.
        exif: the EXIF block (camera make and model, date, exposure...) with its orientation reset to normal,
            since the pixels are returned upright; written back to JPEG, PNG and TIFF. None without EXIF.
        significant_bits: bits that carry data in a 16-bit gray PNG, from its ``sBIT`` chunk (e.g. 10 or 12
            for a sensor's samples stored in uint16), written back; None when the file does not say.
    """

    mode: str
    format: str | None
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    compression: str | None = None
    exif: bytes | None = None
    significant_bits: int | None = None


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Image files (by suffix: PNG, TIFF, JPEG, BMP, any case) in ``folder``, sorted; hidden files skipped.

    Raises:
        InvalidInputError: ``folder`` is not a directory or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"image folder {str(folder)!r} does not exist or is not a directory")
    it = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(
        p
        for p in it
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not p.name.startswith(".")
        and not any(part.startswith(".") for part in p.relative_to(folder).parts[:-1])
    )
    if not files:
        raise InvalidInputError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {str(folder)!r}")
    return files


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, ImageInfo]:
    """Decode an image file without changing its sample values.

    ``max_pixels``: the largest width x height accepted (default :data:`MAX_PIXELS`, Pillow's own
    decompression-bomb limit); raise it deliberately for huge scans or panoramas (``infer --max-pixels``).

    Returns:
        ``(pixels, info)``: pixels are ``(H, W)`` for gray or ``(H, W, 3)`` for colour, dtype ``uint8``
        (8-bit files), ``uint16`` (16-bit gray PNG/TIFF) or ``float32`` (float TIFF, values as stored).
        ``LA``/``RGBA`` keep their alpha in ``info.alpha``; palette images become RGB(A); EXIF orientation
        is applied.

    Raises:
        InvalidInputError: missing, empty, truncated, damaged or not an image, multi-frame, larger than
            ``max_pixels``, or a mode we refuse (see the module docstring); the message starts with the file name.
            Whatever exception a damaged file makes Pillow raise becomes this error (found by fuzzing: a TIFF
            with a damaged header raised ``TypeError: Missing dimensions``).
    """
    from PIL import Image, ImageOps

    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise InvalidInputError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise InvalidInputError(f"{name}: file is empty")
    try:
        with warnings.catch_warnings():
            # Pillow warns about odd but readable files (corrupt EXIF, our own pixel limit applies to bombs):
            # the file either decodes or fails below with one error, so the warnings are not shown.
            warnings.simplefilter("ignore")
            with _pillow_limit(max_pixels), Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise InvalidInputError(
                        f"{name}: {w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,}; raise it with "
                        "--max-pixels (max_pixels=) if the file is trusted and memory allows"
                    )
                if w == 0 or h == 0:
                    raise InvalidInputError(f"{name}: image has zero size ({w}x{h})")
                frames = int(getattr(im, "n_frames", 1))
                if frames > 1:
                    raise InvalidInputError(f"{name}: has {frames} frames; split it into single images first")
                _refuse_wide_colour(im, name)
                fmt = im.format
                icc = im.info.get("icc_profile")
                compression = im.info.get("compression")
                exif = _upright_exif(im)  # from the file (a TIFF's tags do not follow exif_transpose's copy)
                upright = ImageOps.exif_transpose(im)
                upright.load()
                pixels, mode, alpha = _to_array(upright, name)
    except InvalidInputError:
        raise
    except Image.DecompressionBombError as exc:
        size = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(size.group(1)):,} pixels" if size else "its size"
        raise InvalidInputError(
            f"{name}: {count} exceeds the limit of {max_pixels:,} (decompression-bomb guard); raise it with "
            "--max-pixels if the file is trusted"
        ) from exc
    except MemoryError as exc:
        raise InvalidInputError(f"{name}: too large to decode in the memory left") from exc
    except Exception as exc:  # noqa: BLE001  a damaged file makes Pillow raise anything (TypeError, struct.error...)
        lines = str(exc).replace(name, "").strip(" :'\"").splitlines()
        reason = lines[0] if lines else type(exc).__name__
        raise InvalidInputError(f"{name}: cannot decode as an image ({reason})") from exc
    info = ImageInfo(
        mode=mode,
        format=fmt,
        alpha=alpha,
        icc_profile=icc if isinstance(icc, bytes) and icc else None,
        compression=compression if compression in _LOSSLESS_TIFF else None,
        exif=exif,
        significant_bits=_png_sbit(path) if fmt == "PNG" and pixels.dtype == np.uint16 else None,
    )
    return pixels, info


_PILLOW_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _pillow_limit(max_pixels: int) -> Iterator[None]:
    """Pillow's decompression-bomb guard (a process-wide setting) at ``max_pixels`` while a file is opened."""
    from PIL import Image

    if max_pixels == MAX_PIXELS:
        yield
        return
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max(1, max_pixels // 2)  # Pillow refuses above twice this
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _upright_exif(im: Any) -> bytes | None:
    """The EXIF block of an image as it will be written once its pixels are upright: Orientation (tag 0x0112)
    set to 1 (the rotation is applied to the pixels), a TIFF's own layout tags left out."""
    from PIL import Image

    raw = im.getexif().tobytes()  # a copy: the image's own Exif object must keep its orientation for exif_transpose
    exif = Image.Exif()
    exif.load(raw)
    for tag in _TIFF_LAYOUT_TAGS:  # a TIFF's own layout tags describe its strips, not the picture: the writer sets them
        exif.pop(tag, None)
    if not exif:
        return None
    if 0x0112 in exif:
        exif[0x0112] = 1
    data = exif.tobytes()
    return bytes(data) if data else None


# TIFF tags of the image layout (TIFF 6.0, Sec. 8 and 14-15): width, length, bits, compression, photometric,
# strips, samples, planar config, predictor, tiles, sample format.
_TIFF_LAYOUT_TAGS = (256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325, 338, 339)


def _png_sbit(path: Path) -> int | None:
    """The gray significant-bits value of a PNG's ``sBIT`` chunk (PNG spec 11.3.3.4), if it has one before IDAT."""
    with open(path, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            return None
        while True:
            head = f.read(8)
            if len(head) < 8:
                return None
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            if kind in (b"IDAT", b"IEND"):
                return None
            body = f.read(length)
            f.seek(4, 1)  # CRC
            if kind == b"sBIT" and length >= 1 and 1 <= body[0] <= 16:
                return int(body[0])


def _rawmodes(im: Any) -> list[str]:
    out = []
    for tile in getattr(im, "tile", None) or []:
        args = tile.args if hasattr(tile, "args") else tile[3]
        raw = args[0] if isinstance(args, tuple) and args else args
        if isinstance(raw, str):
            out.append(raw)
    return out


def _refuse_wide_colour(im: Any, name: str) -> None:
    """Refuse files whose 16-bit samples Pillow would decode to 8 bits (16-bit RGB, RGBA, LA)."""
    wide = [r for r in _rawmodes(im) if _WIDE_RAWMODE.match(r)]
    if wide:
        raise InvalidInputError(
            f"{name}: 16-bit colour/alpha ({wide[0]}) is not supported (Pillow decodes it to 8 bits); "
            "convert it to 8-bit RGB or 16-bit gray first"
        )


def _to_array(im: Any, name: str) -> tuple[np.ndarray, str, np.ndarray | None]:
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("LA", "RGBA"):
        arr = np.asarray(im)
        alpha = arr[..., -1].copy()
        arr = arr[..., 0] if mode == "LA" else arr[..., :3]
        return np.ascontiguousarray(arr), mode, alpha
    if mode in ("L", "RGB"):
        return np.array(im), mode, None
    if mode.startswith("I;16") or (mode == "I" and any(r.startswith("I;16") for r in _rawmodes(im))):
        return np.asarray(im).astype(np.uint16), "I;16", None
    if mode == "F":
        return np.asarray(im).astype(np.float32), "F", None
    raise InvalidInputError(
        f"{name}: image mode {mode!r} is not supported; convert it to 8/16-bit gray or 8-bit RGB first"
    )


def write_image(path: str | Path, pixels: np.ndarray, info: ImageInfo | None = None) -> Path:
    """Write pixels atomically in the form ``info`` describes (default: inferred from dtype and shape).

    Args:
        path: destination; its suffix picks the format (PNG, TIFF, JPEG, BMP). Parent folders are created.
        pixels: ``(H, W)`` or ``(H, W, 3)``, ``uint8``; ``(H, W)`` ``uint16`` (PNG/TIFF) or ``float32`` (TIFF).
        info: from :func:`read_image`; restores the alpha plane, ICC profile and TIFF compression.

    Returns:
        ``path``.

    Raises:
        InvalidInputError: the format cannot hold these pixels (e.g. 16-bit into JPEG), or an alpha plane of
            another size; nothing is written.
    """
    from PIL import Image

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InvalidInputError(f"{path}: unknown image suffix {path.suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    arr = np.ascontiguousarray(pixels)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise InvalidInputError(f"{path}: cannot write an array of shape {arr.shape}; pass (H, W) or (H, W, 3)")
    if arr.dtype == np.uint8:
        im = Image.fromarray(arr)
    elif arr.dtype == np.uint16 and arr.ndim == 2:
        im = Image.fromarray(arr)  # mode I;16
    elif arr.dtype == np.float32 and arr.ndim == 2:
        im = Image.fromarray(arr)  # mode F
    else:
        raise InvalidInputError(
            f"{path}: cannot write {arr.dtype} with shape {arr.shape}; use uint8 (gray/RGB), or uint16/float32 gray"
        )
    if info is not None and info.alpha is not None:
        if info.alpha.shape != arr.shape[:2] or info.alpha.dtype != np.uint8 or im.mode not in ("L", "RGB"):
            raise InvalidInputError(f"{path}: alpha plane {info.alpha.shape} does not fit pixels {arr.shape}")
        im = Image.merge("LA" if im.mode == "L" else "RGBA", [*im.split(), Image.fromarray(info.alpha)])
    allowed = {
        ".jpg": ("L", "RGB"),
        ".jpeg": ("L", "RGB"),
        ".bmp": ("L", "RGB", "RGBA"),
        ".png": ("L", "LA", "RGB", "RGBA", "I;16"),
    }.get(suffix)
    if allowed is not None and im.mode not in allowed:
        fmt = Image.registered_extensions()[suffix]
        raise InvalidInputError(f"{path}: {fmt} cannot store mode {im.mode}; write a .png or .tif")
    kwargs: dict[str, Any] = {}
    if suffix in (".jpg", ".jpeg"):
        kwargs.update(quality=95, subsampling=0)
    if info is not None and info.icc_profile and suffix in (".png", ".tif", ".tiff", ".jpg", ".jpeg"):
        kwargs["icc_profile"] = info.icc_profile
    if info is not None and info.compression and suffix in (".tif", ".tiff"):
        kwargs["compression"] = info.compression
    if info is not None and info.exif and suffix in (".png", ".tif", ".tiff", ".jpg", ".jpeg"):
        kwargs["exif"] = info.exif
    if info is not None and info.significant_bits and suffix == ".png" and arr.dtype == np.uint16:
        from PIL import PngImagePlugin

        chunks = PngImagePlugin.PngInfo()
        chunks.add(b"sBIT", bytes([info.significant_bits]))
        kwargs["pnginfo"] = chunks
    try:
        write_atomic(path, lambda tmp: im.save(tmp, format=Image.registered_extensions()[suffix], **kwargs))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InvalidInputError(f"{path}: cannot write ({reason})") from exc
    return path


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only (POSIX)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the temporary files of atomic writes (:func:`.atomic.temp_beside`) that killed processes left.

    A file is stale if its name has the pattern ``.<name>.edgedenoise-<pid>-<random>.tmp`` and no process with
    that id runs on this machine. The files of running writers are left alone. Two machines (or containers
    with separate process-id spaces) writing into one shared folder could see each other's live files as
    stale; removing one makes that write fail with an error for its file, never a corrupt or lost image.
    Only POSIX systems are cleaned (elsewhere this returns ``[]``).

    Args:
        folder: the folder to clean (not recursive). A missing folder is fine.

    Returns:
        The files removed.
    """
    folder = Path(folder)
    if os.name != "posix" or not folder.is_dir():
        return []
    removed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            match = _TEMP_NAME.match(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            if _pid_running(int(match["pid"])):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


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
