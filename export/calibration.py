"""Calibration and validation images for INT8 quantization and the quality gate.

The images are clean training-set crops (``calib_data/``, see its README); the model sees *noisy* images at
run time, so each clean image gets seeded AWGN (:func:`edgedenoise.runtime.metrics.awgn`) at a noise level the
model was trained for (:func:`calibration_sigmas`). Calibration feeds the noisy images to ONNX Runtime's
calibrators through :class:`NoisyImageReader`, which implements ORT's ``CalibrationDataReader`` protocol
(``get_next`` returning a feed dict, ``None`` at the end; ``__len__`` and ``set_range`` for strided
calibration, see ``onnxruntime.quantization.quantize_static``).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

try:
    from onnxruntime.quantization import CalibrationDataReader
except ImportError:  # no `onnx` (a runtime-only install): `compare` still loads images from here, readers are unused
    CalibrationDataReader = object  # type: ignore[misc,assignment]

from ..runtime.contract import INPUT_NAME, SIGMA_NAME, ModelCfg
from ..runtime.errors import InvalidInputError
from ..runtime.imageio import list_images, read_image, to_float
from ..runtime.metrics import awgn
from .errors import CalibrationError

if TYPE_CHECKING:
    from .quantize import Int8Options

CALIB_DIR = Path(__file__).resolve().parent.parent / "calib_data"
DEFAULT_CALIB_SUBDIR = "gray"
DEFAULT_VAL_SUBDIR = "val_gray"
DEFAULT_SIGMA = 25.0
# ITU-R BT.601 luma, the weights Pillow's convert("L") and MATLAB's rgb2gray use.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def default_calib_dir(in_channels: int) -> Path:
    """The shipped calibration folder for a model with ``in_channels`` channels: ``calib_data/gray`` (1) or
    ``calib_data/rgb`` (3); training-set crops, see ``calib_data/README.md``.

    Raises:
        CalibrationError: another channel count; pass ``--calib DIR``.
    """
    return _shipped(in_channels, {1: DEFAULT_CALIB_SUBDIR, 3: "rgb"}, "--calib DIR")


def default_val_dir(in_channels: int) -> Path:
    """The shipped quality-gate folder, ``calib_data/val_gray`` (1 channel) or ``calib_data/val_rgb`` (3):
    disjoint from calibration and from anything the shipped models train on.

    Raises:
        CalibrationError: another channel count; pass ``--val DIR``.
    """
    return _shipped(in_channels, {1: DEFAULT_VAL_SUBDIR, 3: "val_rgb"}, "--val DIR")


def _shipped(in_channels: int, subdirs: dict[int, str], option: str) -> Path:
    if in_channels not in subdirs:
        raise CalibrationError(
            f"no images ship for {in_channels}-channel models in calib_data/; pass {option} with training-set images"
        )
    return CALIB_DIR / subdirs[in_channels]


def load_images(
    folder: str | Path, in_channels: int, size_multiple: int = 1, *, max_images: int | None = None
) -> list[np.ndarray]:
    """Read the images of ``folder`` (sorted by name) as model inputs.

    Args:
        folder: a folder of PNG/TIFF/JPEG/BMP files (8 or 16 bit).
        in_channels: 1 (RGB files are converted to gray with BT.601 luma) or 3 (gray files are refused).
        size_multiple: each image is cropped (bottom/right) to a multiple of this.
        max_images: read at most this many (the first ones by name).

    Returns:
        ``(C, H, W)`` float32 arrays in [0, 1].

    Raises:
        InvalidInputError: the folder does not exist, holds no image, or an image cannot be decoded.
        CalibrationError: a gray image for an RGB model, or an image smaller than ``size_multiple``.
    """
    out = []
    for path in list_images(folder)[:max_images]:
        pixels, _ = read_image(path)
        x = to_float(pixels)
        if x.ndim == 3:
            x = (x @ _LUMA)[None] if in_channels == 1 else np.transpose(x, (2, 0, 1))
        elif in_channels == 3:
            raise CalibrationError(f"{path}: gray image for an RGB model; use RGB calibration images")
        else:
            x = x[None]
        h = x.shape[1] // size_multiple * size_multiple
        w = x.shape[2] // size_multiple * size_multiple
        if h == 0 or w == 0:
            raise CalibrationError(f"{path}: {x.shape[2]}x{x.shape[1]} is smaller than the size multiple")
        out.append(np.ascontiguousarray(x[:, :h, :w], dtype=np.float32))
    return out


def calibration_sigmas(cfg: ModelCfg) -> tuple[float, ...]:
    """AWGN levels (0-255 scale) for calibration, from the noise the model was trained for (``cfg.noise``).

    ``"awgn:S"`` -> ``(S,)``; ``"awgn:A-B"`` (a range; a ``,clip8=...`` suffix is ignored) -> three levels: for a
    blind model evenly spaced from ``max(A, 5)`` to ``B``, so that the activation ranges cover the strongest
    noise it handles; for a noise-level-conditioned model at 4/15, 8/15 and 12/15 of ``B`` (20, 40, 60 for
    σ up to 75). A conditioned model's activations grow with the σ it is told, and one set of per-tensor ranges
    serves every σ: calibrated at 5, 40 and 75 the all-INT8 ``unet3_f32_u4_nl`` lost 1.64 / 0.93 / 0.60 / 0.26 /
    0.13 dB at σ 5 / 15 / 25 / 50 / 75 on the gate images, at 20, 40 and 60 0.54 / 0.09 / 0.02 / -0.04 / 0.31
    (``benchmarks/int8_sigma_range.py``; docs/export.md). Anything else (``"untrained"``, Poisson-Gaussian labels)
    -> ``(25,)``, the usual benchmark level. Pass explicit sigmas to override (``export --calib-sigmas``).
    """
    m = re.fullmatch(r"awgn:([0-9.]+)(?:-([0-9.]+))?(?:,.*)?", cfg.noise)
    if not m:
        return (DEFAULT_SIGMA,)
    if m.group(2) is None:
        return (float(m.group(1)),)
    lo, hi = max(float(m.group(1)), 5.0), float(m.group(2))
    if cfg.noise_level_input and hi > lo:
        return tuple(float(hi * k / 15) for k in (4, 8, 12))
    return tuple(float(v) for v in np.linspace(lo, hi, 3)) if hi > lo else (hi,)


def gate_sigma(cfg: ModelCfg) -> float:
    """The AWGN level (0-255) of the quality gate: the trained level, or 25 for blind/other models."""
    m = re.fullmatch(r"awgn:([0-9.]+)", cfg.noise)
    return float(m.group(1)) if m else DEFAULT_SIGMA


def add_noise(images: Sequence[np.ndarray], sigmas: Sequence[float], seed: int = 0) -> list[np.ndarray]:
    """Noisy model inputs: image ``i`` gets AWGN of ``sigmas[i % len(sigmas)]`` with seed ``seed + i``.

    Args:
        images: ``(C, H, W)`` float32 in [0, 1].
        sigmas: noise levels on the 0-255 scale.

    Returns:
        ``(1, C, H, W)`` float32 arrays (not clipped), one per image.
    """
    if not sigmas:
        raise InvalidInputError("at least one noise sigma is needed")
    return [awgn(x, float(sigmas[i % len(sigmas)]), seed + i)[None] for i, x in enumerate(images)]


def calibration_feeds(
    images: Sequence[np.ndarray], sigmas: Sequence[float], cfg: ModelCfg, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """ONNX Runtime feeds for calibration: :func:`add_noise`'s inputs under ``noisy`` and, for a model with a
    noise-level input, the matching uniform σ map ``(1, 1, H, W)`` float32 (σ/255) under ``sigma``."""
    feeds = []
    for i, x in enumerate(add_noise(images, sigmas, seed)):
        feed = {INPUT_NAME: x}
        if cfg.noise_level_input:
            sigma = float(sigmas[i % len(sigmas)])
            feed[SIGMA_NAME] = np.full((1, 1, *x.shape[2:]), sigma / 255.0, np.float32)
        feeds.append(feed)
    return feeds


def files_sha256(folder: str | Path) -> str:
    """sha256 over the sorted image names and bytes of ``folder`` (identifies a calibration set)."""
    h = hashlib.sha256()
    for path in list_images(folder):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@dataclass
class NoisyImageReader(CalibrationDataReader):
    """ONNX Runtime calibration data reader over prepared noisy inputs.

    Args:
        inputs: feeds from :func:`calibration_feeds` (``noisy`` ``(1, C, H, W)`` float32, and ``sigma`` for a
            conditioned model), or bare ``(1, C, H, W)`` arrays (fed as ``noisy``).
        progress: show a tqdm bar (on stderr) over the inputs.
    """

    inputs: Sequence[np.ndarray | dict[str, np.ndarray]]
    progress: bool = False

    def __post_init__(self) -> None:
        self._start, self._end = 0, len(self.inputs)
        self._pos = 0
        self._bar = None
        if self.progress:
            from tqdm import tqdm

            self._bar = tqdm(total=len(self.inputs), desc="calibrating", unit="img", leave=False)

    def __len__(self) -> int:
        return len(self.inputs)

    def set_range(self, start_index: int, end_index: int) -> None:
        """Restrict the next reads to ``inputs[start_index:end_index]`` (strided calibration)."""
        self._start, self._end = start_index, min(end_index, len(self.inputs))
        self._pos = self._start

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next feed ``{"noisy": (1, C, H, W) float32[, "sigma": (1, 1, H, W)]}``, or ``None`` at the end."""
        if self._pos >= self._end:
            return None
        x = self.inputs[self._pos]
        self._pos += 1
        if self._bar is not None:
            self._bar.update(1)
            if self._pos >= len(self.inputs):
                self._bar.close()
        return dict(x) if isinstance(x, dict) else {INPUT_NAME: x}

    def rewind(self) -> None:
        """Start again from the first input."""
        self._start, self._end, self._pos = 0, len(self.inputs), 0


def calibrate_flavours(
    prepared_path: str | Path,
    options: Sequence[Int8Options],
    inputs: Sequence[dict[str, np.ndarray]],
    *,
    cache_dir: str | Path,
    calib_id: str,
    progress: bool = False,
    threads: int = 0,
    value_stride: int = 2,
) -> list[Path]:
    """One calibration pass for several INT8 flavours: writes the range cache each flavour's quantization reads.

    ONNX Runtime calibrates once per ``quantize_static`` call, running the model with every tensor to calibrate
    as an output and feeding the values to a histogram collector; two flavours (``cpu``: asymmetric uint8 over the
    inputs and outputs of Conv/Add/Relu/...; ``trt``: symmetric int8 over Conv inputs) so ran the calibration
    images twice. Here the model runs once with the union of the flavours' tensors as outputs, and each flavour's
    own collector (ONNX Runtime's ``HistogramCollector``, with that flavour's symmetry and percentile) reads the
    same values, in the same chunks of ``strided_calibration`` images; the ranges are those ``quantize_static``
    computes, and are saved where :func:`.quantize.quantize_int8` looks for them
    (:func:`.quantize.calibration_cache_path`). Only the percentile method takes this path (the default of both
    flavours); other methods, and a single flavour, are left to ``quantize_static``.

    The histograms, not the model runs, are most of a calibration's time (on RED30, 92 of 127 s): with
    ``value_stride`` s > 1 each collector reads every s-th row and column of every activation (1/s² of the
    values, from every image). The 99.99th percentile of about 50 M values per RED30 tensor is then estimated
    from about 12 M; with s = 1 the ranges are exactly ``quantize_static``'s.

    Args:
        prepared_path: FP32 ONNX after :func:`.quantize.preprocess_for_quantization`.
        options: one :class:`.quantize.Int8Options` per flavour.
        inputs: calibration feeds (:func:`calibration_feeds`).
        cache_dir, calib_id: as for :func:`.quantize.quantize_int8`.
        progress: a tqdm bar over the images.
        threads: ONNX Runtime threads (0: one per core).
        value_stride: spatial step of the values the histograms read (1: all).

    Returns:
        The cache files written (empty when nothing needed the shared pass).

    Raises:
        CalibrationError: no calibration inputs.
    """
    import onnx
    from onnxruntime.quantization.calibrate import CalibrationMethod, HistogramCollector, TensorsData, save_tensors_data

    from ..runtime.ort_session import cpu_session
    from .quantize import CalibMethod, _quiet, calibration_cache_path

    todo = [
        o
        for o in options
        if o.method is CalibMethod.PERCENTILE
        and not calibration_cache_path(cache_dir, prepared_path, o, calib_id).is_file()
    ]
    if len(todo) < 2:
        return []
    if not inputs:
        raise CalibrationError("INT8 calibration needs at least one image (the calibration folder is empty?)")
    model = onnx.load_model(str(prepared_path))
    typed = {v.name: v for v in (*model.graph.value_info, *model.graph.output, *model.graph.input)}
    weights = {i.name for i in model.graph.initializer}
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)

    def tensors(op_types: Sequence[str]) -> set[str]:
        # ONNX Runtime's choice (CalibraterBase.select_tensors_to_calibrate): the float, non-initializer inputs and
        # outputs of every node of the given types
        return {
            t
            for n in model.graph.node
            if n.op_type in op_types
            for t in (*n.input, *n.output)
            if t in typed and t not in weights and typed[t].type.tensor_type.elem_type in floats
        }

    wanted = {id(o): tensors(o.op_types) for o in todo}
    union = sorted(set().union(*wanted.values()))
    outputs = {o.name for o in model.graph.output}
    model.graph.output.extend(typed[t] for t in union if t not in outputs)
    collectors = {
        id(o): HistogramCollector(
            method="percentile",
            symmetric=o.flavour.value == "trt",  # as _ort_settings: CalibTensorRangeSymmetric for the trt flavour
            num_bins=2048,  # ONNX Runtime's default for the percentile calibrator
            num_quantized_bins=128,
            percentile=o.percentile,
            scenario="same",
        )
        for o in todo
    }
    stride = min(o.strided_calibration for o in todo)
    stride = stride if len(inputs) % stride == 0 else 1
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(inputs), desc="calibrating (all flavours)", unit="img", leave=False)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="edgedenoise.calib.") as tmp:
        path = Path(tmp) / "augmented.onnx"
        onnx.save_model(model, str(path))
        session = cpu_session(path, threads=threads, optimize=False)
        names = [o.name for o in session.get_outputs()]
        for start in range(0, len(inputs), stride):
            chunk: dict[str, list[np.ndarray]] = {t: [] for t in union}
            for feed in inputs[start : start + stride]:
                values = {**dict(zip(names, session.run(None, dict(feed)), strict=True)), **feed}
                for t in union:
                    v = np.asarray(values[t])
                    chunk[t].append(v[..., ::value_stride, ::value_stride] if v.ndim == 4 else v)
                if bar is not None:
                    bar.update(1)
            with _quiet():
                for o in todo:
                    collectors[id(o)].collect({t: chunk[t] for t in wanted[id(o)]})
        if bar is not None:
            bar.close()
    for o in todo:
        with _quiet():
            ranges = collectors[id(o)].compute_collection_result()
        cache = calibration_cache_path(cache_dir, prepared_path, o, calib_id)
        save_tensors_data(TensorsData(CalibrationMethod.Percentile, ranges), cache)
        written.append(cache)
    return written
