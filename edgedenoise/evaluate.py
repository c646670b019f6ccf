"""Benchmark evaluation: PSNR and SSIM of a denoiser on a folder of clean images at fixed AWGN levels.

The protocol (DnCNN / RED-Net papers and their released test code; ``../shared/data/README.md``):

1. Images are read in sorted file-name order (:func:`edgedenoise.runtime.imageio.list_images`); only 8-bit
   files are accepted (the benchmark sets are 8-bit). The clean image is ``uint8 / 255`` as float32, in the
   layout the file has: ``(H, W)`` gray or ``(H, W, 3)`` colour.
2. **Noise seed scheme**: the ``i``-th image (0-based, sorted order) gets
   ``noisy = edgedenoise.runtime.metrics.awgn(clean, sigma, seed + i)``, i.e.
   ``clean + default_rng(seed + i).standard_normal(clean.shape, float32) * sigma / 255`` in that ``(H, W)`` /
   ``(H, W, 3)`` layout. The same index-seed is used at every σ (one standard-normal field per image,
   scaled by σ), and ``limit=N`` keeps the first N images, so their seeds do not change. The noisy input is
   **not** clipped.
3. The model sees ``(1, C, H, W)`` float32, padded at the bottom/right by reflection to a multiple of its
   ``ModelCfg.size_multiple`` and cropped back afterwards.
4. Optional x8 self-ensemble: the input is run through the 8 flips/rotations (the dihedral group of the
   square), each output is transformed back, and the 8 are averaged before clipping. The RED-Net paper
   (Mao et al., NIPS 2016) reports results with this test-time augmentation; the technique is Timofte et al.,
   "Seven ways to improve example-based single image super resolution", CVPR 2016.
5. The estimate is clipped to [0, 1] and quantised to 8 bits (:func:`~edgedenoise.runtime.metrics.quantize8`);
   PSNR and SSIM are computed against the 8-bit clean image with a peak of 255
   (:func:`~edgedenoise.runtime.metrics.psnr`, :func:`~edgedenoise.runtime.metrics.ssim`; colour SSIM is the
   mean over channels). The figure per σ is the arithmetic mean of the per-image values.

Colour images are evaluated by a gray model only when asked (``to_gray=True``): they are converted to
8-bit luma with MATLAB's ``rgb2gray`` weights (ITU-R BT.601), ``rint(0.298936 R + 0.587043 G + 0.114021 B)``,
which turns CBSD68 into BSD68 exactly.

A model is given as an ``nn.Module`` built by :func:`edgedenoise.models.create_model`, or as a string: a
registered name with shipped weights, a ``.safetensors`` file, a trainer checkpoint ``.pt``, or an exported
``.onnx`` file (run by ONNX Runtime on the CPU; no torch needed for that case). Torch models are loaded by
:func:`edgedenoise.models.load_torch_model`, the one loader every tool shares; this module only wraps them.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .runtime.contract import CFG_METADATA_KEY, INPUT_NAME, SIGMA_NAME, ModelCfg
from .runtime.errors import ArtifactError, InvalidInputError
from .runtime.imageio import list_images, read_image
from .runtime.metrics import awgn, psnr, quantize8, ssim
from .runtime.noise_level import estimate_sigma

if TYPE_CHECKING:
    from torch import nn

SEED_SCHEME = (
    "noisy_i = edgedenoise.runtime.metrics.awgn(clean_i, sigma, seed + i); i = 0-based index in sorted "
    "file-name order; clean_i = uint8 / 255 as float32 in the file's (H, W) or (H, W, 3) layout; not clipped"
)
# MATLAB rgb2gray: the first row of the inverse NTSC (YIQ) transform, i.e. BT.601 luma.
LUMA_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class ImageScore:
    """Scores of one image at one σ: PSNR in dB and SSIM (unitless), both on the 8-bit scale."""

    name: str
    psnr: float
    ssim: float


@dataclass(frozen=True)
class SigmaResult:
    """All images at one noise level σ (0-255 scale); ``psnr`` / ``ssim`` are the means over images."""

    sigma: float
    images: tuple[ImageScore, ...]

    @property
    def psnr(self) -> float:
        """Mean PSNR over the images (dB)."""
        return float(np.mean([s.psnr for s in self.images]))

    @property
    def ssim(self) -> float:
        """Mean SSIM over the images."""
        return float(np.mean([s.ssim for s in self.images]))


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate` measured, with everything needed to reproduce it."""

    model: str
    cfg: ModelCfg
    backend: str
    data_dir: str
    seed: int
    ensemble: bool
    to_gray: bool
    results: tuple[SigmaResult, ...]
    seed_scheme: str = field(default=SEED_SCHEME)
    clip8: bool = False
    model_sigma: str = "true"

    def at(self, sigma: float) -> SigmaResult:
        """The :class:`SigmaResult` for ``sigma``.

        Raises:
            KeyError: ``sigma`` was not evaluated.
        """
        for r in self.results:
            if r.sigma == float(sigma):
                return r
        raise KeyError(f"sigma {sigma:g} was not evaluated (have {[r.sigma for r in self.results]})")

    def to_dict(self, per_image: bool = True) -> dict[str, Any]:
        """JSON-able form: settings, then per σ the mean PSNR/SSIM (and the per-image scores)."""
        rows = []
        for r in self.results:
            row: dict[str, Any] = {"sigma": r.sigma, "psnr": r.psnr, "ssim": r.ssim, "n_images": len(r.images)}
            if per_image:
                row["images"] = [{"name": s.name, "psnr": s.psnr, "ssim": s.ssim} for s in r.images]
            rows.append(row)
        return {
            "model": self.model,
            "arch": self.cfg.arch,
            "cfg": json.loads(self.cfg.to_json()),
            "backend": self.backend,
            "data": self.data_dir,
            "seed": self.seed,
            "seed_scheme": self.seed_scheme,
            "ensemble": self.ensemble,
            "to_gray": self.to_gray,
            "clip8": self.clip8,
            "model_sigma": self.model_sigma,
            "results": rows,
        }

    def format_table(self, per_image: bool = False) -> str:
        """A plain-text table: one line per σ with mean PSNR (dB) and SSIM; per-image rows if asked."""
        n = len(self.results[0].images) if self.results else 0
        head = (
            f"model {self.model} ({self.cfg.arch}, {self.backend}), data {self.data_dir} ({n} images), "
            f"seed {self.seed}, x8 ensemble {'on' if self.ensemble else 'off'}"
            + (", noisy input clipped and rounded to 8 bits" if self.clip8 else "")
            + (f", model told σ: {self.model_sigma}" if self.cfg.noise_level_input else "")
        )
        lines = [head, f"{'sigma':>6}  {'PSNR (dB)':>9}  {'SSIM':>6}"]
        for r in self.results:
            lines.append(f"{r.sigma:>6g}  {r.psnr:>9.3f}  {r.ssim:>6.4f}")
        if per_image:
            width = max(len(s.name) for r in self.results for s in r.images)
            for r in self.results:
                lines.append("")
                lines.append(f"sigma {r.sigma:g}")
                lines.extend(f"  {s.name:<{width}}  {s.psnr:>9.3f}  {s.ssim:>6.4f}" for s in r.images)
        return "\n".join(lines)


# ---------------------------------------------------------------- models as predictors


class Predictor(Protocol):
    """What :func:`evaluate` runs: a model's contract plus ``(1, C, H, W) float32 -> (1, C, H, W) float32``."""

    cfg: ModelCfg
    backend: str

    def __call__(self, x: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
        """Denoise ``x``: ``(N, C, H, W)`` float32, H and W multiples of ``cfg.size_multiple``; ``sigma``: the
        ``(N, 1, H, W)`` float32 noise map (σ/255) for a model with ``cfg.noise_level_input``, else None."""
        ...


class TorchPredictor:
    """A torch ``nn.Module`` (built by ``create_model``) as a :class:`Predictor`, run under ``inference_mode``.

    Args:
        module: the model; it is put in eval mode and moved to ``device``.
        device: ``"cpu"``, ``"cuda"``... (default: CUDA if available, else CPU). On CUDA, TF32 is disabled
            while the predictor runs so results match the CPU to float32 precision.
    """

    backend = "torch"

    def __init__(self, module: nn.Module, device: str | None = None) -> None:
        import torch

        from .models import model_cfg

        self.cfg = model_cfg(module)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.module = module.to(self.device).eval()

    def __call__(self, x: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
        import torch

        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.inference_mode())
            if self.device.type == "cuda":
                prev = torch.backends.cudnn.allow_tf32
                torch.backends.cudnn.allow_tf32 = False
                stack.callback(setattr, torch.backends.cudnn, "allow_tf32", prev)
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
            if sigma is None:
                return self.module(t).float().cpu().numpy()
            smap = torch.from_numpy(np.ascontiguousarray(sigma, dtype=np.float32)).to(self.device)
            return self.module(t, smap).float().cpu().numpy()


class OrtPredictor:
    """An exported ``.onnx`` model run by ONNX Runtime's CPU provider, as a :class:`Predictor`.

    The contract is read from the model's ``metadata_props`` (key ``edgedenoise.cfg``); the input must be
    named ``noisy`` (``edgedenoise.runtime.contract.INPUT_NAME``).

    Args:
        path: the ``.onnx`` file.
        threads: ONNX Runtime intra-op threads (None or 0: its default, one per physical core).

    Raises:
        ArtifactError: the file does not exist, cannot be loaded, has no ``edgedenoise.cfg`` metadata, or has no
            ``noisy`` input.
    """

    backend = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        from .runtime.ort_session import cpu_session

        if not Path(path).is_file():
            raise ArtifactError(f"model file {str(path)!r} does not exist")
        try:  # refuses external data outside the model's folder before ORT reads it
            self.session = cpu_session(path, threads=threads)
        except ArtifactError as exc:
            raise ArtifactError(f"{str(path)!r} cannot be loaded by ONNX Runtime ({exc})") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        if CFG_METADATA_KEY not in meta:
            raise ArtifactError(
                f"{str(path)!r} has no {CFG_METADATA_KEY!r} metadata; export it with `edgedenoise export`"
            )
        self.cfg = ModelCfg.from_json(meta[CFG_METADATA_KEY])
        names = [i.name for i in self.session.get_inputs()]
        if INPUT_NAME not in names:
            raise ArtifactError(f"{str(path)!r} has inputs {names}, expected one named {INPUT_NAME!r}; re-export it")

    def __call__(self, x: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
        feeds = {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)}
        if sigma is not None:
            feeds[SIGMA_NAME] = np.ascontiguousarray(sigma, dtype=np.float32)
        out = self.session.run(None, feeds)[0]
        return np.asarray(out, dtype=np.float32)


def load_predictor(
    model: str | Path | nn.Module | Predictor, *, threads: int | None = None, device: str | None = None
) -> Predictor:
    """Turn any model description into a :class:`Predictor`.

    Args:
        model: a :class:`Predictor` (returned as is); an ``nn.Module`` from ``create_model``; a path to an
            ``.onnx``, ``.safetensors`` or trainer ``.pt`` file; or a registered model name (alias allowed)
            whose weights ship with the package.
        threads: ONNX Runtime intra-op threads for ``.onnx`` models (torch threads are set by :func:`evaluate`).
        device: torch device for torch models (default: CUDA if available, else CPU).

    Raises:
        ArtifactError: a model file that does not exist, cannot be loaded, or is of no kind listed above.
        UnknownModelError: a name that is not registered or has no shipped weights.
    """
    if hasattr(model, "cfg") and hasattr(model, "backend") and callable(model):
        return model  # type: ignore[return-value]
    if not isinstance(model, (str, Path)):
        return TorchPredictor(model, device)
    path = Path(model)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return OrtPredictor(path, threads)
    if path.is_file() and suffix not in (".safetensors", ".pt", ".pth"):
        raise ArtifactError(
            f"{str(path)!r} is not a model file; give a .onnx, .safetensors or trainer .pt file, or a model name"
        )
    from .models import load_torch_model  # names, weights files and checkpoints: one loader

    return TorchPredictor(load_torch_model(model), device)


# ---------------------------------------------------------------- dihedral transforms, padding


def dihedral(x: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 flips/rotations of the last two axes of ``x``: ``mode & 3`` quarter turns (``np.rot90``),
    then a left-right flip if ``mode & 4``. The same convention as :func:`edgedenoise.data.augment`."""
    y = np.rot90(x, k=mode & 3, axes=(-2, -1))
    return y[..., ::-1] if mode & 4 else y


def dihedral_inverse(y: np.ndarray, mode: int) -> np.ndarray:
    """Undo :func:`dihedral`: ``dihedral_inverse(dihedral(x, m), m) == x`` for every ``m`` in 0..7."""
    if mode & 4:
        y = y[..., ::-1]
    return np.rot90(y, k=-(mode & 3), axes=(-2, -1))


def _pad_to_multiple(x: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad the last two axes of ``x`` at the bottom/right up to multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return x
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode="reflect")


def denoise_array(
    predictor: Predictor, noisy: np.ndarray, ensemble: bool = False, sigma: float | None = None
) -> np.ndarray:
    """Run ``predictor`` on one image with padding (and optionally the x8 self-ensemble).

    Args:
        predictor: the model.
        noisy: ``(C, H, W)`` float32 (values may exceed [0, 1]).
        ensemble: average the outputs of the 8 flips/rotations (each transformed back).
        sigma: the noise level (0-255 scale) told to a model with a noise-level input (a uniform map);
            ignored by blind models.

    Returns:
        ``(C, H, W)`` float32 estimate, not clipped.

    Raises:
        InvalidInputError: a conditioned model and no ``sigma``.
    """
    h, w = noisy.shape[-2:]
    x = _pad_to_multiple(noisy, predictor.cfg.size_multiple)[None]
    smap = None
    if predictor.cfg.noise_level_input:
        if sigma is None:
            raise InvalidInputError(f"{predictor.cfg.arch} takes a noise level; give its σ")
        lo, hi = predictor.cfg.value_range
        smap = np.full((1, 1, *x.shape[2:]), sigma / 255.0 * (hi - lo), np.float32)

    def run(xx: np.ndarray, mm: np.ndarray | None) -> np.ndarray:
        # blind predictors (and classical baselines) take the image alone
        return predictor(np.ascontiguousarray(xx)) if mm is None else predictor(np.ascontiguousarray(xx), mm)

    if not ensemble:
        return np.asarray(run(x, smap)[0, :, :h, :w], dtype=np.float32)
    acc = np.zeros(x.shape, dtype=np.float64)
    for mode in range(8):
        y = run(dihedral(x, mode), None if smap is None else np.ascontiguousarray(dihedral(smap, mode)))
        acc += dihedral_inverse(y, mode)
    return (acc / 8.0).astype(np.float32)[0, :, :h, :w]


# ---------------------------------------------------------------- images


def load_clean(path: Path, in_channels: int, to_gray: bool = False) -> np.ndarray:
    """Read one benchmark image as 8-bit pixels the model can take.

    Args:
        path: image file.
        in_channels: the model's channel count (1 gray, 3 RGB).
        to_gray: convert an RGB image to 8-bit luma (MATLAB ``rgb2gray`` weights) for a gray model.

    Returns:
        ``(H, W)`` (gray) or ``(H, W, 3)`` (RGB) uint8.

    Raises:
        InvalidInputError: unreadable, not 8-bit, smaller than 11x11 (SSIM's window), or a colour/gray
            mismatch with the model; the message names the file and the fix.
    """
    pix, _ = read_image(path)
    if pix.dtype != np.uint8:
        raise InvalidInputError(
            f"{path}: {pix.dtype} pixels; the benchmark protocol is 8-bit, convert the set to 8-bit PNG"
        )
    if min(pix.shape[:2]) < 11:
        raise InvalidInputError(f"{path}: {pix.shape[1]}x{pix.shape[0]} is smaller than SSIM's 11x11 window")
    if in_channels == 1 and pix.ndim == 3:
        if not to_gray:
            raise InvalidInputError(
                f"{path}: colour image for a gray model; use a gray set, or pass to_gray=True (--gray) to "
                "evaluate its luma"
            )
        luma = pix.astype(np.float64) @ np.asarray(LUMA_WEIGHTS)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)
    if in_channels == 3 and pix.ndim == 2:
        raise InvalidInputError(f"{path}: gray image for an RGB model; evaluate RGB models on colour sets")
    return pix


# ---------------------------------------------------------------- evaluate


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Set PyTorch's intra-op thread count to ``threads`` for the block and restore it afterwards.

    ``None`` or 0 leaves PyTorch's default (one thread per physical core). Without PyTorch installed (an
    ONNX-only evaluation in a runtime install) it does nothing.
    """
    if not threads:
        yield
        return
    try:
        import torch
    except ImportError:  # an ONNX-only evaluation in a runtime install
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def evaluate(
    model: str | Path | nn.Module | Predictor,
    data_dir: str | Path,
    sigmas: Sequence[float],
    *,
    seed: int = 0,
    ensemble: bool = False,
    limit: int | None = None,
    to_gray: bool = False,
    threads: int | None = None,
    device: str | None = None,
    progress: bool = False,
    clip8: bool = False,
    model_sigma: str | float = "true",
) -> EvalResult:
    """PSNR and SSIM of ``model`` on the images of ``data_dir`` at each AWGN level in ``sigmas``.

    See the module docstring for the protocol and the noise seed scheme (:data:`SEED_SCHEME`).

    Args:
        model: a model name with shipped weights, a ``.safetensors`` / ``.pt`` / ``.onnx`` path, an
            ``nn.Module`` from ``create_model``, or a :class:`Predictor`.
        data_dir: folder of 8-bit clean images (e.g. ``../shared/data/BSD68``).
        sigmas: AWGN σ values on the 0-255 scale, each >= 0.
        seed: base noise seed (>= 0); image ``i`` uses ``seed + i``.
        ensemble: x8 self-ensemble (flips/rotations, averaged).
        limit: evaluate only the first ``limit`` images (sorted order).
        to_gray: evaluate colour images as 8-bit luma with a gray model.
        threads: CPU threads while evaluating: PyTorch's intra-op threads for a torch model, ONNX Runtime's for an
            ``.onnx``; None or 0 keeps the libraries' default (one per physical core).
        device: torch device (default: CUDA if available, else CPU).
        progress: show a tqdm bar on stderr (disabled automatically when stderr is not a terminal).
        clip8: clip the noisy image to [0, 1] and round it to 8 bits before the model sees it (what a noisy
            8-bit file holds); False is the standard protocol (unclipped float noise).
        model_sigma: what a noise-level-conditioned model is told: ``"true"`` (the σ of the added noise),
            ``"auto"`` (estimated from each noisy image, :func:`edgedenoise.runtime.noise_level.estimate_sigma`)
            or a fixed σ (0-255). Blind models ignore it.

    Returns:
        :class:`EvalResult` with per-image and mean PSNR (dB) / SSIM per σ, in the order of ``sigmas``.

    Raises:
        InvalidInputError: bad σ, seed or limit; a folder without images; unreadable, non-8-bit or
            mismatched (gray/colour) images.
        ArtifactError, UnknownModelError: the model cannot be loaded.
    """
    sig = [float(s) for s in sigmas]
    if not sig or any(not math.isfinite(s) or s < 0 for s in sig):
        raise InvalidInputError(f"sigmas must be one or more finite values >= 0 (0-255 scale), got {list(sigmas)}")
    if seed < 0:
        raise InvalidInputError(f"seed must be >= 0, got {seed}")
    if limit is not None and limit < 1:
        raise InvalidInputError(f"limit must be >= 1, got {limit}")
    fixed = None
    if model_sigma not in ("true", "auto"):
        try:
            fixed = float(model_sigma)
        except (TypeError, ValueError):
            fixed = -1.0
        if not math.isfinite(fixed) or fixed < 0:
            raise InvalidInputError(
                f"model_sigma must be 'true', 'auto' or a σ >= 0 (0-255 scale), got {model_sigma!r}"
            )
    files = list_images(data_dir)[:limit]
    with torch_threads(threads):
        predictor = load_predictor(model, threads=threads, device=device)
        cfg = predictor.cfg
        cleans = [load_clean(p, cfg.in_channels, to_gray) for p in files]
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(sig) * len(files), desc=f"eval {cfg.arch}", disable=None, leave=False)
        results = []
        try:
            for s in sig:
                scores = []
                for i, (path, pix) in enumerate(zip(files, cleans, strict=True)):
                    noisy = awgn(pix.astype(np.float32) / np.float32(255.0), s, seed + i)
                    if clip8:
                        noisy = quantize8(noisy).astype(np.float32) / np.float32(255.0)
                    chw = noisy[None] if noisy.ndim == 2 else noisy.transpose(2, 0, 1)
                    told = s if fixed is None else fixed
                    if model_sigma == "auto" and cfg.noise_level_input:
                        told = estimate_sigma(noisy, cfg.value_range)
                    out = denoise_array(predictor, np.ascontiguousarray(chw), ensemble, told)
                    est = quantize8(out[0] if pix.ndim == 2 else out.transpose(1, 2, 0))
                    ref = pix.astype(np.float64)
                    scores.append(ImageScore(path.name, psnr(est, ref), ssim(est, ref)))
                    if bar is not None:
                        bar.update(1)
                results.append(SigmaResult(s, tuple(scores)))
        finally:
            if bar is not None:
                bar.close()
    name = model if isinstance(model, (str, Path)) else cfg.arch
    return EvalResult(
        model=str(name),
        cfg=cfg,
        backend=predictor.backend,
        data_dir=str(data_dir),
        seed=seed,
        ensemble=ensemble,
        to_gray=to_gray,
        results=tuple(results),
        clip8=clip8,
        model_sigma=str(model_sigma) if fixed is None else f"{fixed:g}",
    )


__all__ = [
    "LUMA_WEIGHTS",
    "SEED_SCHEME",
    "EvalResult",
    "ImageScore",
    "OrtPredictor",
    "Predictor",
    "SigmaResult",
    "TorchPredictor",
    "denoise_array",
    "dihedral",
    "dihedral_inverse",
    "evaluate",
    "load_clean",
    "load_predictor",
    "torch_threads",
]
