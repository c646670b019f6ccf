"""Denoise image files: the library behind ``edgedenoise infer``.

:func:`plan_jobs` expands the inputs (files, folders searched recursively, glob patterns) into
``source -> destination`` jobs and refuses, per file, anything that would overwrite an input or write one
output twice. :class:`InferRun` opens the model once and denoises the jobs one by one, yielding a
:class:`FileResult` per file: a file that cannot be read, denoised or written fails on its own (no output is
left for it; outputs are written atomically by :func:`~.imageio.write_image`) and the run goes on.

``noisy_sigma``: for demos and checks, AWGN of σ (0-255 scale) is added to each image first: image ``i`` of
the run (0-based, in job order) gets :func:`~.metrics.awgn` with seed ``seed + i``, as ``edgedenoise eval``
does for image ``i`` of a sorted folder, and the PSNR of the noisy and of the denoised image against the
file's (clean) pixels is reported. For 8-bit files it follows the benchmark protocol (:mod:`.metrics`: both
quantised to 8 bits, peak 255); for 16-bit and float files it is computed on [0, 1] floats (noisy clipped to
[0, 1]) with peak 1.

Nothing here prints; the CLI turns results into lines.
"""

from __future__ import annotations

import glob
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import write_atomic
from .backend import BackendKind, Closeable, RuntimeInfo
from .denoiser import ColorMode, Denoiser, NonFinite
from .errors import EdgeDenoiseError, InvalidInputError
from .imageio import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    from_float,
    list_images,
    read_image,
    remove_stale_temps,
    to_float,
    write_image,
)
from .metrics import awgn, psnr, quantize8
from .tiling import DEFAULT_MEMORY_MB

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Job:
    """One file to denoise, or an input that failed while planning (``error`` set, ``src`` may be None).

    Attributes:
        label: how messages name it (the source path, or the input argument that matched nothing).
        src: the image file to read.
        dst: where the result goes.
        error: why this job cannot run (planning error), else None.
    """

    label: str
    src: Path | None = None
    dst: Path | None = None
    error: str | None = None


@dataclass(frozen=True)
class FileResult:
    """What happened to one job.

    Attributes:
        label: the source path (or input argument) as a string.
        status: ``"ok"``, ``"skipped"`` (output existed, ``skip_existing``) or ``"failed"``.
        dst: the written file (``ok``), else None.
        message: one line naming the file: the error for ``failed``, a description otherwise.
        shape, dtype, mode: of the image read (``ok`` only).
        psnr_noisy, psnr_denoised: dB against the clean file, with ``noisy_sigma`` only.
        seconds: wall time for this file (read, denoise, write).
        sigma: the noise level (0-255 scale) a noise-level-conditioned model was told for this file (estimated
            when ``"auto"``); None for blind models.
    """

    label: str
    status: str
    dst: str | None = None
    message: str = ""
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    mode: str | None = None
    psnr_noisy: float | None = None
    psnr_denoised: float | None = None
    seconds: float = 0.0
    sigma: float | None = None

    @property
    def failed(self) -> bool:
        """True if this file failed."""
        return self.status == "failed"


@dataclass
class InferSummary:
    """Counts and mean PSNRs of a run (the means over files that have them)."""

    ok: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    psnr_noisy: list[float] = field(default_factory=list)
    psnr_denoised: list[float] = field(default_factory=list)

    def add(self, res: FileResult) -> None:
        """Count one result."""
        setattr(self, res.status, getattr(self, res.status) + 1)
        self.seconds += res.seconds
        if res.psnr_noisy is not None and res.psnr_denoised is not None:
            self.psnr_noisy.append(res.psnr_noisy)
            self.psnr_denoised.append(res.psnr_denoised)

    def line(self) -> str:
        """One line, e.g. ``denoised 68 files (0 skipped, 0 failed) in 12.3 s; mean PSNR 20.17 -> 29.40 dB``."""
        text = f"denoised {self.ok} files ({self.skipped} skipped, {self.failed} failed) in {self.seconds:.1f} s"
        if self.psnr_noisy:
            text += (
                f"; mean PSNR {float(np.mean(self.psnr_noisy)):.3f} dB noisy -> "
                f"{float(np.mean(self.psnr_denoised)):.3f} dB denoised"
            )
        return text


def _expand(arg: str, exclude: Path | None) -> tuple[list[tuple[Path, Path]], str | None]:
    """One INPUT argument -> ``[(file, relative output name)]`` or an error."""
    path = Path(arg)
    if path.is_dir():
        try:
            files = list_images(path, recursive=True)
        except InvalidInputError as exc:
            return [], str(exc)
        if exclude is not None:
            files = [f for f in files if not f.resolve().is_relative_to(exclude)]
        return [(f, f.relative_to(path)) for f in files], None if files else f"{arg}: no images outside the output"
    if path.is_file():
        return [(path, Path(path.name))], None
    if _GLOB_CHARS & set(arg):
        matches = sorted(Path(m) for m in glob.glob(arg, recursive=True))
        files = [m for m in matches if m.is_file() and m.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            return [], f"{arg}: the pattern matches no image file ({', '.join(IMAGE_SUFFIXES)})"
        return [(f, Path(f.name)) for f in files], None
    return [], f"{arg}: no such file or folder"


def plan_jobs(inputs: Sequence[str], output: str | Path | None, in_place: bool = False) -> list[Job]:
    """Expand INPUT arguments into jobs.

    Args:
        inputs: files, folders (searched recursively; the tree is mirrored under ``output``) and glob patterns
            (``**`` allowed; only image suffixes match).
        output: a folder for the results, or a file name when the only input is one file; None with ``in_place``.
        in_place: write each result over its source (atomically).

    Returns:
        One :class:`Job` per file, in input order; inputs that match nothing, outputs that would overwrite an
        input, and outputs two sources would share become jobs with ``error`` set.

    Raises:
        InvalidInputError: no inputs, not exactly one of ``output`` / ``in_place``, or ``output`` an existing
            file where a folder is needed.
    """
    if not inputs:
        raise InvalidInputError("no INPUT given; pass image files, folders or glob patterns")
    if (output is None) == (not in_place):
        raise InvalidInputError("pass exactly one of -o/--output DIR (or FILE) and --in-place")
    out = Path(output) if output is not None else None
    exclude = out.resolve() if out is not None and out.is_dir() else None
    expanded = [(arg, *_expand(arg, exclude)) for arg in inputs]
    single_file = (
        len(inputs) == 1
        and Path(inputs[0]).is_file()
        and out is not None
        and out.suffix.lower() in IMAGE_SUFFIXES
        and not out.is_dir()
    )
    if out is not None and not single_file and out.exists() and not out.is_dir():
        raise InvalidInputError(
            f"-o {out} is an existing file, but the inputs need an output folder; name a folder (new or existing)"
        )
    sources = {f.resolve() for _, files, _ in expanded for f, _ in files}
    jobs: list[Job] = []
    taken: dict[Path, str] = {}
    for arg, files, error in expanded:
        if error is not None:
            jobs.append(Job(label=arg, error=error))
            continue
        for src, rel in files:
            if in_place:
                dst = src
            elif single_file:
                assert out is not None
                dst = out
            else:
                assert out is not None
                dst = out / rel
            key = dst.resolve()
            label = str(src)
            if not in_place and key in sources:
                jobs.append(
                    Job(
                        label,
                        src,
                        dst,
                        f"{src}: output {dst} would overwrite an input; choose another -o or --in-place",
                    )
                )
            elif key in taken:
                jobs.append(Job(label, src, dst, f"{src}: output {dst} is also the output of {taken[key]}; rename one"))
            else:
                taken[key] = label
                jobs.append(Job(label, src, dst))
    return jobs


class InferRun(Closeable):
    """A model opened once, and the files to denoise with it. Iterate to run; use as a context manager.

    Args:
        model: artifact path or shipped model name (see :class:`~.denoiser.Denoiser`).
        inputs, output, in_place: see :func:`plan_jobs`.
        backend, device, allow_fallback, tile, color, threads, max_memory_mb: passed to
            :class:`~.denoiser.Denoiser`.
        noisy_sigma: add AWGN of this σ (0-255 scale) first and report PSNR (see the module docstring).
        seed: base noise seed; job ``i`` uses ``seed + i``.
        skip_existing: leave jobs whose output already exists (and is not empty) alone (status ``skipped``).
        sigma: noise level for models with a noise-level input: σ on the 0-255 scale or ``"auto"`` (estimated per
            file, :func:`~.noise_level.estimate_sigma`); default ``noisy_sigma`` when given, else ``"auto"``.
            Refused by blind models.
        nonfinite: NaN/Inf policy for float images (:class:`~.denoiser.NonFinite`).
        noise_profile: ``(a, b)`` of camera noise (variance ``a·x + b``) for a conditioned model: the σ map of each
            file comes from it (see :class:`~.denoiser.Denoiser`), or ``"auto"``: fitted to each file; exclusive with
            ``sigma`` and ``noisy_sigma``.
        max_pixels: the largest image (width x height) read (:func:`~.imageio.read_image`).
        precision: for a shipped model name, ``auto`` (the faster of FP32 and INT8 here), ``fp32`` or ``int8``.
        bit_depth: significant bits of 16-bit files (10 or 12 for most sensors); None: a PNG's ``sBIT`` chunk when
            it has one, else 16.

    Before the first job that writes into a folder, the temporary files that killed earlier runs left there are
    removed (:func:`~.imageio.remove_stale_temps`; listed in :attr:`stale_removed`). A file that fails, including
    one too large for the memory left (``MemoryError``), becomes a ``failed`` result and the run goes on.

    Raises:
        InvalidInputError: bad arguments (including ``noisy_sigma`` with ``in_place``, which would replace
            clean originals with a demo result); ArtifactError / BackendUnavailableError: see Denoiser.
    """

    def __init__(
        self,
        model: str | Path,
        inputs: Sequence[str],
        output: str | Path | None = None,
        *,
        in_place: bool = False,
        backend: str | BackendKind = BackendKind.AUTO,
        device: int | None = None,
        allow_fallback: bool = False,
        tile: int | None = None,
        color: str | ColorMode = ColorMode.AUTO,
        threads: int | None = None,
        noisy_sigma: float | None = None,
        seed: int = 0,
        skip_existing: bool = False,
        sigma: float | str | None = None,
        nonfinite: str | NonFinite = NonFinite.RAISE,
        max_memory_mb: float = DEFAULT_MEMORY_MB,
        bit_depth: int | None = None,
        noise_profile: tuple[float, float] | str | None = None,
        max_pixels: int = MAX_PIXELS,
        precision: str = "auto",
    ) -> None:
        if noisy_sigma is not None and in_place:
            raise InvalidInputError(
                "--noisy-sigma with --in-place would replace your clean images with a demo result; use -o DIR"
            )
        if noise_profile is not None and (sigma is not None or noisy_sigma is not None):
            raise InvalidInputError(
                "--noise-profile describes the files' own noise: do not combine it with --sigma or --noisy-sigma"
            )
        if noisy_sigma is not None and not (np.isfinite(noisy_sigma) and noisy_sigma >= 0):
            raise InvalidInputError(f"--noisy-sigma must be a number >= 0 (0-255 scale), got {noisy_sigma}")
        self.jobs = plan_jobs(inputs, output, in_place)
        self.noisy_sigma = noisy_sigma
        self.seed = seed
        self.skip_existing = skip_existing
        self.in_place = in_place
        self.summary = InferSummary()
        self.results: list[FileResult] = []
        self.denoiser = Denoiser(
            model,
            backend=backend,
            device=device,
            allow_fallback=allow_fallback,
            tile=tile,
            color=color,
            threads=threads,
            nonfinite=nonfinite,
            sigma=sigma,
            max_memory_mb=max_memory_mb,
            bit_depth=bit_depth,
            noise_profile=noise_profile,
            precision=precision,
        )
        self.bit_depth = bit_depth
        self.max_pixels = max_pixels
        self._cleaned: set[Path] = set()
        self.stale_removed: list[Path] = []
        self.sigma = sigma if sigma is not None else (noisy_sigma if self.denoiser.takes_noise_level else None)

    @property
    def info(self) -> RuntimeInfo:
        """What runs the model (backend, providers, device)."""
        return self.denoiser.info

    def __iter__(self) -> Iterator[FileResult]:
        for index, job in enumerate(self.jobs):
            res = self.run_job(job, self.seed + index)
            self.summary.add(res)
            self.results.append(res)
            yield res

    def run_job(self, job: Job, seed: int = 0) -> FileResult:
        """Denoise one job (``seed``: its noise seed); never raises a project error (it becomes ``failed``)."""
        if job.error is not None or job.src is None or job.dst is None:
            return FileResult(job.label, "failed", message=job.error or f"{job.label}: nothing to do")
        t0 = time.perf_counter()
        if job.dst.parent not in self._cleaned:  # temp files a killed earlier run left in this folder
            self._cleaned.add(job.dst.parent)
            self.stale_removed.extend(remove_stale_temps(job.dst.parent))
        if self.skip_existing and not self.in_place and _nonempty_file(job.dst):
            return FileResult(job.label, "skipped", str(job.dst), f"{job.src}: {job.dst} exists, skipped")
        try:
            pixels, info = read_image(job.src, self.max_pixels)
            p_noisy = p_den = None
            told: float | None = None
            bits = self.bit_depth or info.significant_bits if pixels.dtype == np.uint16 else None
            profile = self.denoiser.noise_profile is not None and self.sigma is None
            if self.noisy_sigma is None:
                told = self._told_sigma(pixels, bits)
                out = self.denoiser(pixels, sigma=None if profile else told, bit_depth=bits)
            else:
                top = float((1 << bits) - 1) if bits else None
                clean = to_float(pixels) if top is None else pixels.astype(np.float32) / np.float32(top)
                noisy = awgn(clean, self.noisy_sigma, seed)
                told = self._told_sigma(noisy)
                den = self.denoiser(noisy, sigma=None if profile else told)
                p_noisy, p_den = _psnr_pair(pixels, clean, noisy, den)
                if top is None:
                    out = from_float(den, pixels.dtype)
                else:
                    out = np.rint(np.clip(den, 0.0, 1.0) * top).astype(pixels.dtype)
            write_image(job.dst, out, info)
        except (EdgeDenoiseError, MemoryError) as exc:
            msg = str(exc) if isinstance(exc, EdgeDenoiseError) else "out of memory; use a smaller --tile"
            if str(job.src) not in msg:
                msg = f"{job.src}: {msg}"
            return FileResult(job.label, "failed", message=msg, seconds=time.perf_counter() - t0)
        text = f"{job.src} -> {job.dst}"
        if told is not None:
            how = "estimated" if self.sigma is None or self.sigma == "auto" else "given"
            if profile:
                fitted = self.denoiser.noise_profile == "auto"
                how = "mean of the noise profile " + ("fitted to the file" if fitted else "given")
            text += f" (σ {told:.1f}, {how})"
        if p_noisy is not None and p_den is not None:
            text += f": PSNR {p_noisy:.3f} dB noisy -> {p_den:.3f} dB denoised"
        return FileResult(
            job.label,
            "ok",
            str(job.dst),
            text,
            shape=tuple(pixels.shape),
            dtype=str(pixels.dtype),
            mode=info.mode,
            psnr_noisy=p_noisy,
            psnr_denoised=p_den,
            seconds=time.perf_counter() - t0,
            sigma=told,
        )

    def _told_sigma(self, image: np.ndarray, bit_depth: int | None = None) -> float | None:
        """The σ (0-255) a conditioned model gets for ``image`` (``"auto"`` resolved once, here), else None."""
        if not self.denoiser.takes_noise_level:
            return None
        value = self.denoiser.resolve_sigma(image, self.sigma, bit_depth)
        return None if value is None else float(np.mean(value))

    @property
    def failed(self) -> bool:
        """True if any job so far failed."""
        return self.summary.failed > 0

    def write_report(self, path: str | Path) -> Path:
        """Write the runtime info, every result and the summary as JSON (atomically); returns the path."""
        info = asdict(self.info)
        info["artifact"] = str(info["artifact"])
        data: dict[str, Any] = {
            "runtime": info,
            "noisy_sigma": self.noisy_sigma,
            "seed": self.seed,
            "files": [asdict(r) for r in self.results],
            "summary": {
                "ok": self.summary.ok,
                "skipped": self.summary.skipped,
                "failed": self.summary.failed,
                "seconds": self.summary.seconds,
                "mean_psnr_noisy": float(np.mean(self.summary.psnr_noisy)) if self.summary.psnr_noisy else None,
                "mean_psnr_denoised": float(np.mean(self.summary.psnr_denoised))
                if self.summary.psnr_denoised
                else None,
            },
        }
        return write_atomic(path, json.dumps(data, indent=2) + "\n")

    def close(self) -> None:
        """Release the model."""
        self.denoiser.close()


def _nonempty_file(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def _psnr_pair(pixels: np.ndarray, clean: np.ndarray, noisy: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) of the noisy and the denoised image against the clean file (see the module docstring)."""
    if pixels.dtype == np.uint8:
        ref = pixels.astype(np.float64)
        return psnr(quantize8(noisy), ref), psnr(quantize8(den), ref)
    return (
        psnr(np.clip(noisy, 0.0, 1.0), clean, data_range=1.0),
        psnr(np.clip(den, 0.0, 1.0), clean, data_range=1.0),
    )
