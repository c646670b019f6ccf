"""Frames in and out of a model: layouts, dtypes, colour handling and pixel formats (numpy only).

What a camera pipeline hands the :class:`~.denoiser.Denoiser` (``(H, W)``, ``(H, W, C)``, ``(N, H, W, C)``;
uint8, uint16 with a bit depth, float32; RGB, BGR, YUV 4:2:0) and what the model takes (``(N, C, H, W)``
float32 in its value range), both ways.
"""

from __future__ import annotations

import enum

import numpy as np

from .errors import InvalidInputError

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601

#: RGB -> opponent colour planes (O1, O2, O3) = ((R+G+B)/3, (R-B)/2, (R-2G+B)/4), the luminance-chrominance
#: transform of BM3D's reference code used by CBM3D (Dabov et al., ICIP 2007, Sec. 2). Its rows are orthogonal:
#: independent noise of σ on R, G, B stays independent, with σ times each row's length.
OPPONENT = np.array([[1 / 3, 1 / 3, 1 / 3], [1 / 2, 0.0, -1 / 2], [1 / 4, -1 / 2, 1 / 4]], dtype=np.float64)
#: Added to the chrominance planes (value units of a [0, 1] range) so they sit where a gray model's input does.
CHROMA_OFFSET = np.array([0.0, 0.5, 0.5], dtype=np.float64)


class ColorMode(str, enum.Enum):
    """How a gray (1-channel) model denoises a colour image.

    ``per-channel``: R, G and B each as a gray image. ``luma``: only Y (BT.601), the change added to every
    channel. ``opponent``: the three opponent planes (:data:`OPPONENT`), each as a gray image told its own σ
    (CBM3D's luminance-chrominance route; needs a model with a noise-level input). ``auto``: ``opponent`` for
    models with a noise-level input, ``per-channel`` for blind ones.
    """

    AUTO = "auto"
    PER_CHANNEL = "per-channel"
    LUMA = "luma"
    OPPONENT = "opponent"


class PixelFormat(str, enum.Enum):
    """The layout of a frame as a camera pipeline hands it over.

    ``gray`` ``(H, W)`` / ``(H, W, 1)``; ``rgb`` ``(H, W, 3)`` (the default for 3 channels); ``bgr`` ``(H, W, 3)``
    in OpenCV's order; ``nv12`` and ``i420``: 8-bit YUV 4:2:0 as ``(H·3/2, W)`` uint8, the Y plane on top, then
    interleaved U, V rows (NV12, most ISPs, V4L2, GStreamer/DeepStream) or the U plane and then the V plane
    (I420). Batches ``(N, ...)`` of the RGB/BGR/gray layouts work as without a format.
    """

    GRAY = "gray"
    RGB = "rgb"
    BGR = "bgr"
    NV12 = "nv12"
    I420 = "i420"


class NonFinite(str, enum.Enum):
    """What to do with NaN/Inf in float input."""

    RAISE = "raise"
    REPLACE = "replace"


SUPPORTED_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))


def to_range(nhwc: np.ndarray, lo: float, hi: float, nonfinite: NonFinite, top: float | None = None) -> np.ndarray:
    """``(N, H, W, C)`` any supported dtype -> float32 in the model's value range, applying the NaN policy.
    Integers: ``top`` (default the dtype's maximum) maps to ``hi``.

    Raises:
        InvalidInputError: NaN/Inf under ``NonFinite.RAISE``, or float values far outside the range.
    """
    if nhwc.dtype == np.float32:
        finite = np.isfinite(nhwc)
        if not finite.all():
            if nonfinite is NonFinite.RAISE:
                bad = int(nhwc.size - np.count_nonzero(finite))
                raise InvalidInputError(
                    f"image has {bad} NaN/Inf values; clean them, or use nonfinite='replace' "
                    "(CLI: --nonfinite replace; NaN/-Inf -> range low, +Inf -> range high)"
                )
            nhwc = np.nan_to_num(nhwc, nan=lo, posinf=hi, neginf=lo).astype(np.float32)
        slack = 2.0 * (hi - lo)
        low, high = float(nhwc.min()), float(nhwc.max())
        if low < lo - slack or high > hi + slack:
            raise InvalidInputError(
                f"float image values span [{low:.4g}, {high:.4g}], far outside the model's range [{lo:g}, {hi:g}] "
                f"(accepted: {lo - slack:g}..{hi + slack:g}); scale it to [{lo:g}, {hi:g}] first (e.g. x / 255)"
            )
        return nhwc
    scale = top if top is not None else float(np.iinfo(nhwc.dtype).max)
    x = nhwc.astype(np.float32)  # one float copy, then in place (huge images: no temporaries)
    x *= np.float32((hi - lo) / scale)
    x += np.float32(lo)
    return x


def parse_enum(cls: type[enum.Enum], value: object, what: str) -> enum.Enum:
    """The member of ``cls`` whose value is ``value``.

    Raises:
        InvalidInputError: an unknown value; the message names ``what`` and lists the valid ones.
    """
    try:
        return cls(value)
    except ValueError:
        names = ", ".join(str(k.value) for k in cls)
        raise InvalidInputError(f"unknown {what} {value!r}; choose one of: {names}") from None


def as_nhwc(arr: np.ndarray) -> np.ndarray:
    """``(H, W)`` / ``(H, W, C)`` / ``(N, H, W, C)`` -> ``(N, H, W, C)`` view, C in (1, 3)."""
    if arr.ndim == 2:
        out = arr[None, :, :, None]
    elif arr.ndim == 3 and arr.shape[2] in (1, 3):
        out = arr[None]
    elif arr.ndim == 4 and arr.shape[3] in (1, 3):
        out = arr
    else:
        raise InvalidInputError(
            f"image shape {arr.shape} is not (H, W), (H, W, 1), (H, W, 3) or (N, H, W, C) with C in (1, 3); "
            "pass alpha separately and a gray batch as (N, H, W, 1)"
        )
    if 0 in out.shape:
        raise InvalidInputError(f"image shape {arr.shape} is empty")
    return out


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    """``(N, H, W, C)`` -> ``(N, C, H, W)``, C-contiguous (a copy unless C is 1)."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` -> ``(N, H, W, C)``, a view."""
    return x.transpose(0, 2, 3, 1)


def from_range(y: np.ndarray, lo: float, hi: float, dtype: np.dtype, top: float | None = None) -> np.ndarray:
    """float32 in ``[lo, hi]`` -> ``dtype`` (integers: scaled to ``[0, top]``, default their full range, and
    rounded)."""
    if dtype == np.float32:
        return y.astype(np.float32, copy=False)
    top = top if top is not None else float(np.iinfo(dtype).max)
    y = y - np.float32(lo) if lo else y  # in place below: ``y`` is the caller's scratch array
    y *= np.float32(top / (hi - lo))
    np.rint(y, out=y)
    return y.astype(dtype)


def check_bit_depth(bits: int | None) -> None:
    """Refuse a bit depth that is not None or a whole number from 1 to 16.

    Raises:
        InvalidInputError: the message names the value.
    """
    if bits is not None and not (isinstance(bits, int) and 1 <= bits <= 16):
        raise InvalidInputError(f"bit_depth must be a whole number of bits from 1 to 16, got {bits!r}")


__all__ = [
    "LUMA_WEIGHTS",
    "SUPPORTED_DTYPES",
    "ColorMode",
    "NonFinite",
    "PixelFormat",
    "as_nhwc",
    "check_bit_depth",
    "from_range",
    "nchw_to_nhwc",
    "nhwc_to_nchw",
    "parse_enum",
    "to_range",
]
