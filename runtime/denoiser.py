"""The :class:`Denoiser`: the one object a camera pipeline holds.

It opens an artifact on a backend (:func:`~.backend.open_backend`), reads the model's contract from the
artifact, and turns any numpy image into what the model takes and back:

* **Layouts**: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` and batches ``(N, H, W, C)`` with C = 1 or 3; the result
  has the input's shape.
* **Dtypes**: ``uint8`` (0..255), ``uint16`` (0..65535, or 0..2^b - 1 with ``bit_depth=b``: 10- and 12-bit
  sensor data stored in uint16) and ``float32`` (already in the model's value range, normally [0, 1]; noisy
  values outside it are fine); the result has the input's dtype, clipped to the range (integers rounded).
* **Gray model, colour image** (``color``, :class:`ColorMode`): a model told the noise level denoises the
  three opponent planes ``(R+G+B)/3``, ``(R-B)/2``, ``(R-2G+B)/4`` (CBM3D's luminance-chrominance route, Dabov
  et al., ICIP 2007), each with its own σ (AWGN of σ on R, G, B gives 0.577σ, 0.707σ, 0.612σ; a noise profile
  is carried through the transform per pixel), and takes the predicted noise back to RGB (``OPPONENT``, the
  default for such models: the chrominance planes are smooth, so most of their noise goes; +1.5 dB over per
  channel on CBSD68 at σ 25). A blind model denoises each of R, G, B as a gray image (``PER_CHANNEL``, its
  default). ``LUMA`` denoises only ``Y = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601) and adds ``Y' - Y`` to
  every channel (a third of the work, chroma noise stays: for footage whose chroma the ISP already filtered).
  **Colour model, gray image**: the gray plane is repeated into R, G, B and the mean of the output is returned.
* **Sizes**: the image is padded (reflect, bottom and right) to ``ModelCfg.size_multiple`` and to an engine
  profile's minimum, and cropped back exactly; 1x1 and 2x2 images work (numpy's reflect pad repeats a single
  pixel). An image is tiled, with an overlap of at least the receptive field and blended seams (:mod:`.tiling`),
  only when it would not fit: by default when its activations (the artifact's ``activation_bytes_per_pixel``
  times its pixels) exceed ``max_memory_mb``, as Intel Open Image Denoise's ``maxMemoryMB`` decides, with the
  largest square tile that fits; else beyond an explicit ``tile`` or an engine's profile maximum. Tiling costs
  speed (the overlap is computed twice), so a frame that fits runs whole.
* **Noise level** (models with ``ModelCfg.noise_level_input``): the model is told σ per pixel. Give it on the
  0-255 scale (the field's convention for any bit depth) as one number (AWGN), an ``(H, W)`` map (signal-dependent
  noise), or ``"auto"``: estimated per image from the image itself (:func:`~.noise_level.estimate_sigma`).
  Without a σ, such a model runs on ``"auto"``; :meth:`Denoiser.resolve_sigma` tells what an image gets. Blind
  models refuse a σ.
* **NaN/Inf** in float input: rejected with :class:`InvalidInputError` by default (``NonFinite.RAISE``), or
  replaced (``NonFinite.REPLACE``: NaN and -Inf -> range low, +Inf -> range high). A model *output* with NaN/Inf
  (e.g. an FP16 overflow) always raises :class:`InferenceError`: a black frame is never returned silently.
* **Float scale**: float input with values outside ``[low - 2 * width, high + 2 * width]`` of the value range
  (``[-2, 3]`` for ``(0, 1)``) is refused with :class:`InvalidInputError`: such an image is on another scale
  (0-255 floats, linear HDR), and clipping the output to the range would silently destroy it. Noise does not
  reach that far: AWGN of σ = 55 (the top of the blind models' range, 0.216 in [0, 1] units) would need a
  9.3σ excursion beyond the range's edge (probability about 1e-20 per pixel).

Thread safety: one ``Denoiser`` may be called from several threads at once. It keeps no per-call state; the
ONNX Runtime backends run concurrently (``InferenceSession.run`` is thread-safe), the native TensorRT backend
serialises calls with a lock (one execution context). For parallel GPU work, create one ``Denoiser`` per
thread or stream.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .backend import Backend, BackendKind, Closeable, RuntimeInfo, open_backend
from .contract import ACTIVATION_BYTES_KEY, ModelCfg
from .errors import InferenceError, InvalidInputError
from .frames import (
    CHROMA_OFFSET,
    LUMA_WEIGHTS,
    OPPONENT,
    SUPPORTED_DTYPES,
    ColorMode,
    NonFinite,
    PixelFormat,
    as_nhwc,
    check_bit_depth,
    from_range,
    nchw_to_nhwc,
    nhwc_to_nchw,
    parse_enum,
    to_range,
)
from .noise_level import estimate_noise_profile, estimate_sigma, profile_sigma_map, sigma_map_from
from .precision import PrecisionChoice, resolve_precision
from .tiling import (
    DEFAULT_BLEND,
    DEFAULT_MEMORY_MB,
    DEFAULT_TILE,
    axis_weights,
    blend_weights,
    min_tile,
    plan_tiles,
)

# The opponent transform in float32 for the frame path (derived once from the float64 definitions in .frames).
_OPP_T = OPPONENT.T.astype(np.float32)
_OPP_INV_T = np.linalg.inv(OPPONENT).T.astype(np.float32)
_OPP_SQ = np.square(OPPONENT).astype(np.float32)
_OPP_LEN = np.linalg.norm(OPPONENT, axis=1).astype(np.float32)
_CHROMA = CHROMA_OFFSET.astype(np.float32)


class Denoiser(Closeable):
    """Denoise numpy images with an exported model, on the best (or the named) backend.

    Args:
        model: an ``.onnx`` / ``.engine`` path or a shipped model name (see :func:`~.artifact.resolve_model`).
        backend: ``"auto"`` or a :class:`~.backend.BackendKind` value (``tensorrt``, ``ort-tensorrt``,
            ``ort-cuda``, ``ort-cpu``).
        device: CUDA device index for GPU backends (None: device 0, and ``auto`` may use the CPU).
        allow_fallback: if the named backend cannot run, use the next one (recorded in :attr:`info`).
        tile: largest tile side in pixels (None: an engine's profile maximum, else decided by ``max_memory_mb``;
            0: never tile, only when the backend sets no size limit).
        max_memory_mb: activation memory one model run may take, in MiB, when ``tile`` is None (artifacts without
            the ``activation_bytes_per_pixel`` metadata tile at :data:`DEFAULT_TILE` instead).
        bit_depth: significant bits of ``uint16`` images (1-16; None: 16), used when a call gives none: a 12-bit
            image spans 0..4095, not 0..65535.
        noise_profile: ``(a, b)``, camera noise of variance ``a·x + b`` (x the clean signal in [0, 1]): a
            conditioned model is told, per frame and per pixel, the σ that profile gives for a smoothed estimate of
            the signal (:func:`~.noise_level.profile_sigma_map`); used when a call gives no ``sigma``. ``"auto"``
            fits ``(a, b)`` to each frame (:func:`~.noise_level.estimate_noise_profile`; :meth:`profile_of`).
        precision: for a shipped model *name* run on the CPU: ``"auto"`` (default) runs its FP32 or its INT8 file,
            whichever a short cached timing probe finds faster on this machine (:mod:`.precision`; both are within
            the export's quality budget; :attr:`precision_choice` says what was measured); ``"fp32"`` / ``"int8"``
            pick the file. Paths and names with a precision (``rednet30.int8.cpu``) are run as given.
        blend: width in pixels of the linear cross-fade between tiles (beyond the receptive-field halo).
        color: :class:`ColorMode` for gray models on colour images; ``auto`` (default): ``opponent`` for models
            with a noise-level input (CBM3D's luminance-chrominance planes, each told its σ: +1.5 dB over
            per-channel on CBSD68 at σ 25, docs/noise-level.md), ``per-channel`` for blind models.
        nonfinite: :class:`NonFinite` policy for NaN/Inf in float input.
        threads: ONNX Runtime intra-op threads (None: its default).
        sigma: the noise level for models that take one, used when a call gives none: σ on the 0-255 scale, an
            ``(H, W)`` map of it, or ``"auto"`` (the default: estimated per image). Refused by blind models.

    Attributes:
        info: what runs (:class:`~.backend.RuntimeInfo`): the artifact, the backend and its providers, what was
            not used and why; ``info.summary()`` is one line.
        precision_choice: with ``precision="auto"`` and a bare shipped name, the file picked and the probe
            latencies that decided it (:class:`~.precision.PrecisionChoice`); None for a path or a name that
            carries its precision (``"rednet30.int8.cpu"``).

    Raises:
        ArtifactError, BackendUnavailableError, InvalidInputError: see :func:`~.backend.open_backend`;
            InvalidInputError also for a tile the model or engine cannot use, or a σ a blind model is given.

    Example::

        with Denoiser("rednet30.int8.cpu") as dn:     # a shipped name, or a path to an .onnx / .engine
            clean = dn(noisy_uint8_hw)          # (H, W) uint8 -> (H, W) uint8
            print(dn.info.summary())
        with Denoiser("unet3_f32_u4_nl", sigma=25.0) as dn:   # a noise-level-conditioned model
            clean = dn(noisy_uint8_hw)
            auto = dn(noisy_uint8_hw, sigma="auto")
    """

    def __init__(
        self,
        model: str | Path,
        *,
        backend: str | BackendKind = BackendKind.AUTO,
        device: int | None = None,
        allow_fallback: bool = False,
        tile: int | None = None,
        blend: int = DEFAULT_BLEND,
        color: str | ColorMode = ColorMode.AUTO,
        nonfinite: str | NonFinite = NonFinite.RAISE,
        threads: int | None = None,
        sigma: float | str | np.ndarray | None = None,
        max_memory_mb: float = DEFAULT_MEMORY_MB,
        bit_depth: int | None = None,
        noise_profile: tuple[float, float] | str | None = None,
        precision: str = "auto",
    ) -> None:
        self.color = parse_enum(ColorMode, color, "color mode")
        self.nonfinite = NonFinite(parse_enum(NonFinite, nonfinite, "NaN/Inf policy"))
        if blend < 0:
            raise InvalidInputError(f"blend must be >= 0 pixels, got {blend}")
        self.blend = blend
        if tile is not None and tile < 0:
            raise InvalidInputError(f"tile must be a positive number of pixels or 0 (no tiling), got {tile}")
        check_bit_depth(bit_depth)
        self.bit_depth = bit_depth
        if not max_memory_mb > 0:
            raise InvalidInputError(f"max_memory_mb must be > 0 MiB, got {max_memory_mb}")
        self.max_memory_mb = float(max_memory_mb)
        self._fit_px: int | None = None  # memory-budget mode: pixels one run may hold (None: the tile decides)
        self._backend: Backend | None = None
        self.precision_choice: PrecisionChoice | None = None
        model, self.precision_choice = resolve_precision(model, precision, backend, device, threads)
        max_tile = tile if tile else DEFAULT_TILE  # the ORT TensorRT provider builds its profile up to this
        self._backend, self.info = open_backend(
            model, backend, device=device, allow_fallback=allow_fallback, threads=threads, max_tile=max_tile
        )
        try:
            self._tile_hw = self._choose_tile(tile)
            if sigma is not None and not self.takes_noise_level:
                raise InvalidInputError(
                    f"{self.info.artifact.name} is a blind model (no noise-level input); do not pass sigma"
                )
            self._check_sigma_arg(sigma)
            self.sigma = sigma if sigma is not None else ("auto" if self.takes_noise_level else None)
            if self.cfg.in_channels == 3 and self.color is not ColorMode.AUTO:
                raise InvalidInputError(
                    f"color mode {self.color.value!r} applies to gray models; {self.info.artifact.name} is a colour "
                    "model (RGB in and out): leave color at 'auto'"
                )
            if self.color is ColorMode.AUTO:
                self.color = ColorMode.OPPONENT if self.takes_noise_level else ColorMode.PER_CHANNEL
            elif self.color is ColorMode.OPPONENT and not self.takes_noise_level:
                raise InvalidInputError(
                    f"color mode 'opponent' tells each plane its own σ and needs a noise-level-conditioned model; "
                    f"{self.info.artifact.name} is blind: use 'per-channel' or 'luma'"
                )
            if noise_profile is not None:
                if not self.takes_noise_level:
                    raise InvalidInputError(
                        f"{self.info.artifact.name} is a blind model (no noise-level input); a noise profile needs a "
                        "noise-level-conditioned model (e.g. unet3_f32_u4_nl)"
                    )
                if sigma is not None:
                    raise InvalidInputError("pass either sigma or noise_profile, not both")
                if isinstance(noise_profile, str):
                    if noise_profile != "auto":
                        raise InvalidInputError(f"noise_profile {noise_profile!r} is not (a, b) or 'auto'")
                else:
                    profile_sigma_map(np.zeros((1, 1), np.float32), noise_profile)  # validates (a, b)
            self.noise_profile: tuple[float, float] | str | None = (
                noise_profile
                if noise_profile is None or isinstance(noise_profile, str)
                else (float(noise_profile[0]), float(noise_profile[1]))
            )
        except BaseException:
            self.close()
            raise

    # -- configuration ---------------------------------------------------------------------------------------
    @property
    def cfg(self) -> ModelCfg:
        """The model's contract, as read from the artifact."""
        return self._live.contract.cfg

    @property
    def tile(self) -> tuple[int, int] | None:
        """``(tile_h, tile_w)`` in pixels, or None when images are never tiled."""
        return self._tile_hw

    @property
    def takes_noise_level(self) -> bool:
        """True if the model has a noise-level input (pass ``sigma`` to :meth:`__call__`)."""
        return self._live.input_spec.noise_level

    def _choose_tile(self, tile: int | None) -> tuple[int, int] | None:
        spec = self._live.input_spec
        cfg = self._live.contract.cfg
        if tile == 0:
            if spec.max_hw is not None:
                raise InvalidInputError(
                    f"tile 0 (no tiling) is impossible: {self.info.artifact.name} takes at most "
                    f"{spec.max_hw[1]}x{spec.max_hw[0]} pixels; pass a tile up to that, or none"
                )
            return None
        m = cfg.size_multiple
        smallest = max(min_tile(cfg.receptive_field, m, self.blend), spec.min_hw[0], spec.min_hw[1])
        if tile is None:
            per_px = self._activation_bytes()
            if spec.max_hw is None and per_px:
                self._fit_px = max(1, int(self.max_memory_mb * 2**20 / per_px))
                side = max(smallest, math.isqrt(self._fit_px) // m * m)
                return (side, side)
            hw = spec.max_hw if spec.max_hw is not None else (DEFAULT_TILE, DEFAULT_TILE)
        else:
            if spec.max_hw is not None and (tile > spec.max_hw[0] or tile > spec.max_hw[1]):
                raise InvalidInputError(
                    f"tile {tile} exceeds what {self.info.artifact.name} takes "
                    f"({spec.max_hw[1]}x{spec.max_hw[0]}, its profile maximum); pass a smaller --tile"
                )
            hw = (tile, tile)
        hw = (hw[0] // m * m, hw[1] // m * m)
        if min(hw) < smallest:
            raise InvalidInputError(
                f"tile {min(hw)} is too small for {cfg.arch} (receptive field {cfg.receptive_field}, "
                f"blend {self.blend}, size multiple {m}); use a tile of at least {smallest}"
            )
        return hw

    def _activation_bytes(self) -> float | None:
        try:
            value = float(self._live.contract.metadata.get(ACTIVATION_BYTES_KEY, ""))
        except ValueError:
            return None
        return value if math.isfinite(value) and value > 0 else None

    def _fits(self, pixels: int, h: int, w: int) -> bool:
        """Whether a run of ``pixels`` (all images of a batch, padded ``h`` x ``w`` each) needs no tiling."""
        if self._fit_px is not None:
            return pixels <= self._fit_px
        return self._tile_hw is None or (h <= self._tile_hw[0] and w <= self._tile_hw[1])

    @property
    def _live(self) -> Backend:
        if self._backend is None:
            raise InvalidInputError("this Denoiser is closed; create a new one")
        return self._backend

    # -- public API ------------------------------------------------------------------------------------------
    def __call__(
        self,
        image: np.ndarray,
        *,
        sigma: float | str | np.ndarray | None = None,
        bit_depth: int | None = None,
        pixel_format: str | PixelFormat | None = None,
    ) -> np.ndarray:
        """Denoise one image or a batch.

        Args:
            image: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(N, H, W, C)`` with C in (1, 3);
                ``uint8``, ``uint16`` or ``float32`` (in the model's value range; may exceed it by noise), in
                either byte order; any strides (views, read-only arrays); never modified.
            sigma: only for models that take a noise level (:attr:`takes_noise_level`): σ on the 0-255 scale,
                an ``(H, W)`` map of it, or ``"auto"``; None uses the Denoiser's ``sigma``.
            bit_depth: significant bits of a ``uint16`` image (None: the Denoiser's ``bit_depth``, else 16).
            pixel_format: :class:`PixelFormat` of ``image`` (None: gray or RGB by its shape). ``bgr`` gives
                exactly the RGB result with the channels reversed; ``nv12`` / ``i420`` denoise the Y (luma) plane
                and, with a gray model, the U and V planes at their own estimated σ (H and W even, uint8).

        Returns:
            The denoised image, a new array: same shape and dtype (byte order included); clipped to the value
            range (integers rounded, within ``bit_depth`` bits).

        Raises:
            InvalidInputError: unsupported shape or dtype, empty image, NaN/Inf under ``NonFinite.RAISE``,
                ``sigma`` given to a model that takes none, negative, or a map of another shape; a
                ``bit_depth`` outside 1-16, or a uint16 image with values above ``2**bit_depth - 1``.
            InferenceError: the backend failed or returned NaN/Inf.
        """
        if pixel_format is not None:
            fmt = parse_enum(PixelFormat, pixel_format, "pixel format")
            if fmt in (PixelFormat.NV12, PixelFormat.I420):
                return self._yuv420(np.asarray(image), fmt, sigma, bit_depth)
            arr = np.asarray(image)
            channels = arr.shape[-1] if arr.ndim >= 3 else 1
            if (fmt is PixelFormat.GRAY) != (channels == 1) or arr.ndim < 2:
                want = "(H, W) or (H, W, 1)" if fmt is PixelFormat.GRAY else "(H, W, 3) or (N, H, W, 3)"
                raise InvalidInputError(f"a {fmt.value} frame is {want}, got shape {arr.shape}")
            if fmt is PixelFormat.BGR:
                return np.ascontiguousarray(self(arr[..., ::-1], sigma=sigma, bit_depth=bit_depth)[..., ::-1])
        arr = np.asarray(image)
        given = arr.dtype
        if not given.isnative and given.newbyteorder("=") in SUPPORTED_DTYPES:  # e.g. '>u2' from a big-endian TIFF/FITS
            arr = arr.astype(given.newbyteorder("="))
        if arr.dtype not in SUPPORTED_DTYPES:
            raise InvalidInputError(
                f"image dtype {arr.dtype} is not supported; pass uint8, uint16 or float32 (e.g. x.astype(np.float32))"
            )
        nhwc = as_nhwc(arr)
        lo, hi = self.cfg.value_range
        top = self._int_top(nhwc, bit_depth)
        x = to_range(nhwc, lo, hi, self.nonfinite, top)
        y = self._denoise_nhwc(x, self._sigma_maps(x, sigma))
        if not np.isfinite(y).all():
            raise InferenceError(
                f"{self.info.artifact.name} ({self.info.backend}, {self.info.precision}) returned NaN/Inf; "
                "an FP16 overflow is the usual cause: use the FP32 or INT8 artifact"
            )
        np.clip(y, lo, hi, out=y)  # in place: ``y`` is the model's fresh output (huge images: no copy)
        out = from_range(y, lo, hi, arr.dtype, top)
        return out.reshape(arr.shape).astype(given, copy=False)

    def _yuv420(
        self, frame: np.ndarray, fmt: PixelFormat, sigma: float | str | np.ndarray | None, bit_depth: int | None
    ) -> np.ndarray:
        """An NV12 / I420 frame ``(H·3/2, W)`` uint8: the Y plane denoised with ``sigma``; with a gray model the U
        and V planes (H/2, W/2) too, each with its own estimated σ (``"auto"``: chroma noise differs from luma
        noise, and a σ or camera profile given for the frame describes Y), else the chroma rows are copied.

        Why the chroma: measured on generated camera frames (Poisson-Gaussian a = 0.01, b = 0.0004, 640x480,
        ``unet3_f32_u4_nl``), denoising Y alone took the BGR PSNR from 22.48 to 22.58 dB (the chroma noise
        stays); the chroma planes cost a quarter of the Y plane each.
        """
        if frame.ndim != 2 or frame.dtype != np.uint8 or frame.shape[0] % 3 or frame.shape[1] % 2:
            raise InvalidInputError(
                f"a YUV 4:2:0 frame (nv12, i420) is (H*3/2, W) uint8 with H and W even, got {frame.shape} {frame.dtype}"
            )
        h = frame.shape[0] * 2 // 3
        if h % 2:
            raise InvalidInputError(f"a YUV 4:2:0 frame needs an even height; {frame.shape[0]} rows give H = {h}")
        w = frame.shape[1]
        out = frame.copy()
        out[:h] = self(frame[:h], sigma=sigma, bit_depth=bit_depth)
        if self.cfg.in_channels != 1:
            return out
        chroma_sigma = "auto" if self.takes_noise_level else None
        if fmt is PixelFormat.I420:  # U then V, each (H/2, W/2), contiguous
            planes = out[h:].reshape(2, h // 2, w // 2)
            for k in range(2):
                planes[k] = self(np.ascontiguousarray(planes[k]), sigma=chroma_sigma, bit_depth=bit_depth)
        else:  # NV12: U and V interleaved in (H/2, W) rows
            uv = out[h:]
            for k in range(2):
                uv[:, k::2] = self(np.ascontiguousarray(uv[:, k::2]), sigma=chroma_sigma, bit_depth=bit_depth)
        return out

    def _int_top(self, nhwc: np.ndarray, bit_depth: int | None) -> float | None:
        """The value that maps to the range's top for an integer image (None for float)."""
        if nhwc.dtype == np.float32:
            return None
        bits = bit_depth if bit_depth is not None else self.bit_depth
        check_bit_depth(bits)
        if bits is None or nhwc.dtype != np.uint16:
            return float(np.iinfo(nhwc.dtype).max)
        top = float((1 << bits) - 1)
        peak = int(nhwc.max())
        if peak > top:
            raise InvalidInputError(
                f"uint16 image has values up to {peak}, above the {top:.0f} of {bits}-bit data; "
                "pass the right bit depth (--bit-depth), or none for full 16-bit data"
            )
        return top

    denoise = __call__

    def resolve_sigma(
        self, image: np.ndarray, sigma: float | str | np.ndarray | None = None, bit_depth: int | None = None
    ) -> float | np.ndarray | None:
        """The noise level :meth:`__call__` would use for ``image``, on the 0-255 scale.

        Args:
            image: as for :meth:`__call__` (one image; for a batch, the first).
            sigma, bit_depth: as for :meth:`__call__`.

        Returns:
            None for a blind model; a float (``"auto"`` resolved by :func:`~.noise_level.estimate_sigma`, or the
            number given), or an ``(H, W)`` map: the one given, or the noise profile's (the root mean square of
            its per-channel maps).
        """
        nhwc = as_nhwc(np.asarray(image))
        if nhwc.dtype not in SUPPORTED_DTYPES:
            nhwc = nhwc.astype(np.float32)
        x = self._in_range(nhwc, bit_depth)
        given = self._effective_sigma(sigma)
        if given is None:
            return None
        if sigma is None and self.noise_profile is not None:
            maps = self._sigma_maps(x[:1], None)
            assert maps is not None
            lo, hi = self.cfg.value_range
            return np.sqrt(np.mean(np.square(maps[0]), axis=0)) * np.float32(255.0 / (hi - lo))
        if isinstance(given, str):
            return estimate_sigma(x[0], self.cfg.value_range)
        if np.ndim(given) == 0:
            return float(given)  # type: ignore[arg-type]
        return np.asarray(given, dtype=np.float32)

    def warmup(self, height: int | None = None, width: int | None = None, channels: int | None = None) -> None:
        """Run once on a zero image so that the first real frame does not pay for allocation and tuning.

        Args:
            height, width: the frame size the pipeline will use (default: one tile, or 256x256).
            channels: 1 or 3 (default: the model's channels).
        """
        h = height or (self._tile_hw[0] if self._tile_hw else 256)
        w = width or (self._tile_hw[1] if self._tile_hw else 256)
        c = channels or self.cfg.in_channels
        sigma = 25.0 if self.takes_noise_level else None
        self(np.zeros((h, w, c), np.float32), sigma=sigma)

    def close(self) -> None:
        """Release the backend (device memory, sessions). Idempotent."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __repr__(self) -> str:
        return f"Denoiser({self.info.summary()})"

    # -- internals -------------------------------------------------------------------------------------------
    def _check_sigma_arg(self, sigma: object) -> None:
        if isinstance(sigma, str) and sigma != "auto":
            raise InvalidInputError(f"sigma {sigma!r} is not a number, a map or 'auto'")

    def _effective_sigma(self, sigma: float | str | np.ndarray | None) -> float | str | np.ndarray | None:
        spec = self._live.input_spec
        if sigma is not None and not spec.noise_level:
            raise InvalidInputError(f"{self.info.artifact.name} has no noise-level input; do not pass sigma")
        self._check_sigma_arg(sigma)
        return sigma if sigma is not None else self.sigma

    def _sigma_maps(self, x: np.ndarray, sigma: float | str | np.ndarray | None) -> np.ndarray | None:
        """σ maps in value units for the ``(N, H, W, C)`` images ``x``: ``(N, 1, H, W)``, or ``(N, C, H, W)`` (one
        per channel) for a noise profile; None for a blind model."""
        given = self._effective_sigma(sigma)
        if given is None:
            return None
        n, h, w, c = x.shape
        rng = self.cfg.value_range
        if sigma is None and self.noise_profile is not None:
            maps = []
            for i in range(n):
                prof = self._fit_profile(x[i])
                maps.append(np.stack([profile_sigma_map(x[i, :, :, k], prof, rng) for k in range(c)]))
            return np.stack(maps)
        if isinstance(given, str) or np.ndim(given) == 0:  # one σ per image: a broadcast view, no (H, W) array
            per_image = [estimate_sigma(x[i], rng) if isinstance(given, str) else given for i in range(n)]
            values = np.stack([sigma_map_from(v, (1, 1), rng) for v in per_image]).reshape(n, 1, 1, 1)
            return np.broadcast_to(values, (n, 1, h, w))
        one = sigma_map_from(given, (h, w), rng)
        return np.broadcast_to(one, (n, 1, h, w))

    def profile_of(self, image: np.ndarray, bit_depth: int | None = None) -> tuple[float, float]:
        """The ``(a, b)`` noise profile (on the [0, 1] scale) this Denoiser uses for ``image``: with
        ``noise_profile="auto"`` the one fitted to it (:func:`~.noise_level.estimate_noise_profile`), else the
        fixed one.

        Args:
            image: one image as :meth:`__call__` takes it (``(H, W)`` or ``(H, W, C)``; uint8, uint16 or float32
                in the model's value range).
            bit_depth: significant bits of a ``uint16`` image (None: the Denoiser's, else 16).

        Raises:
            InvalidInputError: the Denoiser has no noise profile, an unsupported image, or one under 16x16.
        """
        if self.noise_profile is None:
            raise InvalidInputError("this Denoiser has no noise profile: pass noise_profile=(a, b) or 'auto'")
        if not isinstance(self.noise_profile, str):
            return self.noise_profile
        arr = np.asarray(image)
        if arr.dtype not in SUPPORTED_DTYPES:
            raise InvalidInputError(f"image dtype {arr.dtype} is not supported; pass uint8, uint16 or float32")
        return self._fit_profile(self._in_range(as_nhwc(arr), bit_depth)[0])

    def _in_range(self, nhwc: np.ndarray, bit_depth: int | None) -> np.ndarray:
        """``(N, H, W, C)`` of a supported dtype -> float32 in the model's value range (NaN policy applied)."""
        lo, hi = self.cfg.value_range
        return to_range(nhwc, lo, hi, self.nonfinite, self._int_top(nhwc, bit_depth))

    def _fit_profile(self, x: np.ndarray) -> tuple[float, float]:
        """``(H, W, C)`` float32 in the value range -> the profile for it (fitted or fixed)."""
        if isinstance(self.noise_profile, str):
            return estimate_noise_profile(x, self.cfg.value_range)
        assert self.noise_profile is not None
        return self.noise_profile

    def _denoise_nhwc(self, x: np.ndarray, smap: np.ndarray | None) -> np.ndarray:
        """``(N, H, W, C)`` float32 -> same, unclipped, mapping image channels onto the model's channels;
        ``smap``: σ maps (value units) from :meth:`_sigma_maps` for a conditioned model, else None."""
        n, h, w, c = x.shape
        mc = self.cfg.in_channels
        per_channel = smap is not None and smap.shape[1] > 1  # a noise profile: one map per channel
        if c == mc:
            if per_channel and smap is not None:  # one map for the joint model: the channels' mean variance
                smap = np.sqrt(np.mean(np.square(smap), axis=1, keepdims=True))
            return nchw_to_nhwc(self._run_nchw(nhwc_to_nchw(x), smap))
        if mc == 1 and self.color is ColorMode.PER_CHANNEL:  # (N, H, W, 3) -> (3N, 1, H, W)
            planes = x.transpose(0, 3, 1, 2).reshape(n * c, 1, h, w)
            if smap is not None:
                smap = smap.reshape(n * c, 1, h, w) if per_channel else _repeat_images(smap, c)
            y = self._run_nchw(np.ascontiguousarray(planes), smap)
            return y.reshape(n, c, h, w).transpose(0, 2, 3, 1)
        if mc == 1 and self.color is ColorMode.OPPONENT:  # (N, H, W, 3) -> opponent planes (3N, 1, H, W)
            lo, hi = self.cfg.value_range
            opp = (x - np.float32(lo)) @ _OPP_T + (_CHROMA * np.float32(hi - lo) + np.float32(lo))  # float32 frame
            planes = opp.transpose(0, 3, 1, 2).reshape(n * c, 1, h, w)
            if smap is not None:
                if per_channel:  # independent channel noises: the variances combine with the squared weights
                    omap = np.sqrt(np.einsum("nchw,kc->nkhw", np.square(smap), _OPP_SQ))
                else:
                    omap = smap * _OPP_LEN[None, :, None, None]
                smap = np.ascontiguousarray(omap, dtype=np.float32).reshape(n * c, 1, h, w)
            y = self._run_nchw(np.ascontiguousarray(planes), smap)
            noise = planes - y  # the predicted noise of each plane, back through the inverse transform
            back = noise.reshape(n, c, h, w).transpose(0, 2, 3, 1) @ _OPP_INV_T
            return (x - back).astype(np.float32, copy=False)
        if mc == 1:  # luma: denoise Y, add the change to every channel
            luma = x @ LUMA_WEIGHTS  # (N, H, W)
            if per_channel and smap is not None:  # σ of a weighted sum of independent channel noises
                smap = np.sqrt(np.einsum("nchw,c->nhw", np.square(smap), np.square(LUMA_WEIGHTS)))[:, None]
            y = self._run_nchw(np.ascontiguousarray(luma[:, None]), smap)[:, 0]
            return x + (y - luma)[..., None]
        # colour model, gray image: repeat into RGB, return the mean of the output channels
        rgb = np.repeat(nhwc_to_nchw(x), 3, axis=1)
        return self._run_nchw(rgb, smap).mean(axis=1)[..., None]

    def _run_nchw(self, x: np.ndarray, smap: np.ndarray | None) -> np.ndarray:
        """``(B, C, H, W)`` float32 -> same: pad, tile if needed, run in batches the backend accepts, crop.

        A σ map ``(B, 1, H, W)`` is padded and tiled with the image, so every tile gets its own part of it (a
        uniform map may be a broadcast view: it is materialised one tile at a time)."""
        b, c, h, w = x.shape
        spec = self._live.input_spec
        m = self.cfg.size_multiple
        ph = max(-(-h // m) * m, -(-spec.min_hw[0] // m) * m)
        pw = max(-(-w // m) * m, -(-spec.min_hw[1] // m) * m)
        if (ph, pw) != (h, w):
            pads = ((0, 0), (0, 0), (0, ph - h), (0, pw - w))
            x = np.pad(x, pads, mode="reflect")
            smap = None if smap is None else np.pad(smap, pads, mode="reflect")
        tile = self._tile_hw
        if tile is None or self._fits(ph * pw, ph, pw):
            y = self._run_batches(x, smap)
        else:
            y = self._run_tiled(x, smap, tile)
        return y[:, :, :h, :w]

    def _run_batches(self, x: np.ndarray, smap: np.ndarray | None) -> np.ndarray:
        """Run ``(B, C, h, w)`` (and its ``(B, 1, h, w)`` σ map) in chunks: at most the backend's batch limit, and
        at most one tile's pixels per run (so the three planes of a colour image or a batch of frames cost no
        more memory than a tile)."""
        backend = self._live
        x = np.ascontiguousarray(x)
        noise = None if smap is None else np.ascontiguousarray(smap, dtype=np.float32)
        budget = self._fit_px or (self._tile_hw[0] * self._tile_hw[1] if self._tile_hw else None)
        by_pixels = max(1, budget // (x.shape[2] * x.shape[3])) if budget else x.shape[0]
        limit = min(backend.input_spec.max_batch or x.shape[0], by_pixels)
        if x.shape[0] <= limit:
            out = backend.run(x, noise)
        else:
            parts = [
                backend.run(x[i : i + limit], None if noise is None else noise[i : i + limit])
                for i in range(0, x.shape[0], limit)
            ]
            out = np.concatenate(parts, axis=0)
        if out.shape != x.shape:
            raise InferenceError(f"{self.info.artifact.name} returned shape {out.shape} for input {x.shape}")
        return out

    def _run_tiled(self, x: np.ndarray, smap: np.ndarray | None, tile: tuple[int, int]) -> np.ndarray:
        _, _, h, w = x.shape
        cfg = self.cfg
        spec = self._live.input_spec
        plan = plan_tiles(h, w, tile[0], tile[1], cfg.receptive_field, cfg.size_multiple, self.blend, spec.min_hw)
        acc = np.zeros(x.shape, np.float32)
        # the tiles form a grid and each weight is an outer product, so the sum of the weights is the outer
        # product of the per-axis sums: two vectors instead of an (H, W) array (memory for huge images)
        norm_y, norm_x = np.zeros(h, np.float32), np.zeros(w, np.float32)
        for r0, r1 in plan.rows:
            norm_y[r0:r1] += axis_weights(r0, r1, h, plan.halo, plan.blend)
        for c0, c1 in plan.cols:
            norm_x[c0:c1] += axis_weights(c0, c1, w, plan.halo, plan.blend)
        for r0, r1 in plan.rows:
            for c0, c1 in plan.cols:
                part = None if smap is None else smap[:, :, r0:r1, c0:c1]
                y = self._run_batches(x[:, :, r0:r1, c0:c1], part)
                y *= blend_weights(plan, (r0, r1), (c0, c1), h, w)
                acc[:, :, r0:r1, c0:c1] += y
        for r0 in range(0, h, 1024):  # in row bands: no (H, W) temporary
            acc[:, :, r0 : r0 + 1024] /= norm_y[r0 : r0 + 1024, None] * norm_x[None, :]
        return acc


def _repeat_images(smap: np.ndarray, times: int) -> np.ndarray:
    """``np.repeat(smap, times, axis=0)`` that keeps a map broadcast over H and W a broadcast view."""
    n, _, h, w = smap.shape
    if smap.strides[2:] == (0, 0):
        return np.broadcast_to(np.repeat(np.ascontiguousarray(smap[:, :, :1, :1]), times, axis=0), (n * times, 1, h, w))
    return np.repeat(smap, times, axis=0)


__all__ = ["ColorMode", "DEFAULT_TILE", "Denoiser", "NonFinite", "PixelFormat", "RuntimeInfo"]
