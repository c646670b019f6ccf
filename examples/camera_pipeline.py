"""A camera pipeline around one reused :class:`edgedenoise.runtime.Denoiser`: frames in, denoised video out.

Frames come from OpenCV (``cv2.VideoCapture``: a video file, or a camera by its index, e.g. ``--source 0``) when
``--source`` is given; otherwise from a generated colour sequence: the shipped colour sample panned across a
larger canvas with fresh seeded camera noise on every frame (Poisson-Gaussian, variance ``a·x + b``, or AWGN),
so that PSNR against the clean frame is reported too. OpenCV delivers BGR; ``--pixel-format`` chooses what the
Denoiser is handed: ``bgr`` as delivered, or the frame converted to ``nv12`` / ``i420`` (the YUV 4:2:0 layouts of
ISPs, V4L2 and GStreamer) with ``cv2.cvtColor`` and converted back after. A decoder thread feeds a bounded queue
(as a camera driver would); the main thread denoises and, with ``--output``, writes an MP4 (to a temporary name
beside it, renamed when complete). Every frame's latency (the ``Denoiser`` call alone) is recorded; the script
prints p50/p90/p99 and throughput.

Needs no PyTorch; needs OpenCV (``pip install 'edgedenoise[camera]'``: opencv-python-headless) for ``--source``,
``--output`` and the YUV formats. Run from the repository root, e.g.::

    python examples/camera_pipeline.py unet3_f32_u4_nl --frames 100 --size 1280x720 --noise-profile 0.01,0.0004
    python examples/camera_pipeline.py unet3_f32_u4_nl --source street.mp4 --sigma auto --output clean.mp4
    python examples/camera_pipeline.py unet3_f32_u4_nl --source 0 --pixel-format nv12 --frames 300
"""

from __future__ import annotations

import argparse
import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgedenoise.runtime import Denoiser
from edgedenoise.runtime.atomic import publish
from edgedenoise.runtime.errors import EdgeDenoiseError, InvalidInputError

SAMPLE = Path(__file__).resolve().parent.parent / "edgedenoise" / "samples" / "cbsd432_103006.png"
_END = object()


def opencv() -> Any:
    """The ``cv2`` module.

    Raises:
        InvalidInputError: OpenCV is not installed (names the extra to install).
    """
    try:
        import cv2
    except ImportError as exc:
        raise InvalidInputError(
            "this needs OpenCV: pip install 'edgedenoise[camera]' (opencv-python-headless)"
        ) from exc
    return cv2


def capture_frames(source: str, limit: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """``(frame, None)`` for each frame of a video file or camera: ``(H, W, 3)`` uint8 **BGR** (OpenCV's order).

    Args:
        source: a video file, or a camera index (``"0"``) for ``cv2.VideoCapture``.
        limit: stop after this many frames.

    Raises:
        InvalidInputError: OpenCV missing, or the source cannot be opened.
    """
    cv2 = opencv()
    cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not cap.isOpened():
        raise InvalidInputError(f"cannot open video source {source!r}: give a readable video file or a camera index")
    try:
        for _ in range(limit):
            ok, frame = cap.read()
            if not ok:
                return
            yield frame, None
    finally:
        cap.release()


def generated_frames(
    height: int, width: int, limit: int, noise: tuple[float, float], seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(noisy, clean)`` ``(H, W, 3)`` uint8 **BGR** frames: the colour sample panned, plus camera noise.

    ``noise`` is ``(a, b)``: per-pixel variance ``a·x + b`` of the clean value ``x`` in [0, 1] (``a = 0``: AWGN
    of σ = 255·sqrt(b)). The noisy frame is clipped and rounded to 8 bits, as a camera delivers it.
    """
    from PIL import Image

    base = np.asarray(Image.open(SAMPLE).convert("RGB"), dtype=np.float32)[..., ::-1] / 255.0
    reps = (-(-(height + 64) // base.shape[0]), -(-(width + 64) // base.shape[1]), 1)
    canvas = np.tile(base, reps)  # large enough to pan over
    rng = np.random.default_rng(seed)
    a, b = noise
    for i in range(limit):
        dy, dx = (3 * i) % 64, (5 * i) % 64
        clean = np.ascontiguousarray(canvas[dy : dy + height, dx : dx + width])
        std = np.sqrt(a * clean + b, dtype=np.float32)
        noisy = clean + std * rng.standard_normal(clean.shape, dtype=np.float32)
        yield to_uint8(noisy), to_uint8(clean)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float in [0, 1] (clipped) -> uint8, rounded."""
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def denoise_frame(dn: Denoiser, bgr: np.ndarray, pixel_format: str) -> np.ndarray:
    """Denoise one ``(H, W, 3)`` uint8 BGR frame handed to ``dn`` as ``pixel_format``; returns BGR uint8.

    ``nv12`` / ``i420``: converted with OpenCV (``COLOR_BGR2YUV_I420``, and NV12 built from it by interleaving
    U and V), denoised in that layout ((H·3/2, W) uint8, even H and W), and converted back.
    """
    if pixel_format == "bgr":
        return np.asarray(dn(bgr, pixel_format="bgr"))
    cv2 = opencv()
    h, w = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    if pixel_format == "i420":
        return np.asarray(cv2.cvtColor(dn(i420, pixel_format="i420"), cv2.COLOR_YUV2BGR_I420))
    quarter = (h // 2) * (w // 2)
    chroma = i420[h:].reshape(-1)
    nv12 = np.empty_like(i420)
    nv12[:h] = i420[:h]
    uv = nv12[h:].reshape(-1)
    uv[0::2], uv[1::2] = chroma[:quarter], chroma[quarter:]
    return np.asarray(cv2.cvtColor(dn(nv12, pixel_format="nv12"), cv2.COLOR_YUV2BGR_NV12))


def round_trip(bgr: np.ndarray, pixel_format: str) -> np.ndarray:
    """``bgr`` converted to ``pixel_format`` and back without denoising: what the layout alone does to a frame
    (YUV 4:2:0 halves the chroma resolution), so that PSNR before and after measures the denoiser only."""
    if pixel_format == "bgr":
        return bgr
    cv2 = opencv()
    return np.asarray(cv2.cvtColor(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), cv2.COLOR_YUV2BGR_I420))


def _producer(frames: Iterator[tuple[np.ndarray, np.ndarray | None]], q: queue.Queue[object]) -> None:
    try:
        for item in frames:
            q.put(item)
    except EdgeDenoiseError as exc:
        q.put(exc)
    finally:
        q.put(_END)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _noise_level(args: argparse.Namespace) -> dict[str, Any]:
    """The Denoiser's noise settings from ``--sigma`` / ``--noise-profile`` (blind models take neither)."""
    if args.noise_profile:
        try:
            a, b = (float(v) for v in args.noise_profile.split(","))
        except ValueError:
            raise InvalidInputError(
                f"--noise-profile {args.noise_profile!r}: give A,B (variance a·x + b), e.g. 0.01,0.0004"
            ) from None
        return {"noise_profile": (a, b)}
    if args.sigma is None:
        return {}
    return {"sigma": args.sigma if args.sigma == "auto" else float(args.sigma)}


def run(args: argparse.Namespace) -> dict[str, float]:
    """Run the pipeline; returns the latency percentiles (ms), throughput and, for generated frames, PSNRs (dB)."""
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise InvalidInputError(f"--size {args.size!r}: give WxH in pixels, e.g. 640x480") from None
    if width < 1 or height < 1 or args.frames < 1:
        raise InvalidInputError(f"--size {args.size} and --frames {args.frames} must be positive")
    if args.output and not Path(args.output).resolve().parent.is_dir():
        raise InvalidInputError(f"--output {args.output}: the folder {Path(args.output).parent} does not exist")
    if args.pixel_format in ("nv12", "i420") and (width % 2 or height % 2):
        raise InvalidInputError(f"--pixel-format {args.pixel_format} needs an even frame size, got {args.size}")
    noise = (args.gen_a, args.gen_b)
    if args.pixel_format != "bgr" or args.output or args.source:
        opencv()  # fail before opening anything
    with Denoiser(args.model, threads=args.threads, **_noise_level(args)) as dn:
        print(f"backend: {dn.info.summary()}")
        frames = (
            capture_frames(args.source, args.frames)
            if args.source
            else generated_frames(height, width, args.frames, noise, args.seed)
        )
        q: queue.Queue[object] = queue.Queue(maxsize=4)
        threading.Thread(target=_producer, args=(frames, q), daemon=True).start()
        latencies: list[float] = []
        psnr_in: list[float] = []
        psnr_out: list[float] = []
        writer, tmp = None, None
        t_start = time.perf_counter()
        try:
            while (item := q.get()) is not _END:
                if isinstance(item, EdgeDenoiseError):
                    raise item
                frame, clean = item  # type: ignore[misc]
                if not latencies and not psnr_in:  # the first frame allocates and tunes: not measured
                    denoise_frame(dn, frame, args.pixel_format)
                    t_start = time.perf_counter()
                t0 = time.perf_counter()
                out = denoise_frame(dn, frame, args.pixel_format)
                latencies.append(time.perf_counter() - t0)
                if args.output:
                    if writer is None:
                        cv2 = opencv()
                        target = Path(args.output)
                        # OpenCV picks the container from the suffix: the temporary name keeps ".mp4"
                        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".mp4")
                        os.close(fd)
                        tmp = Path(name)
                        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                        writer = cv2.VideoWriter(str(tmp), fourcc, args.fps, (out.shape[1], out.shape[0]))
                    writer.write(out)
                if clean is not None:  # the noisy figure goes through the same layout round trip as the output
                    psnr_in.append(_psnr(round_trip(frame, args.pixel_format), clean))
                    psnr_out.append(_psnr(out, clean))
            if writer is not None and tmp is not None:
                writer.release()
                writer = None
                publish(tmp, Path(args.output))
        finally:
            if writer is not None:
                writer.release()
            if tmp is not None and tmp.exists():
                tmp.unlink()
        wall = time.perf_counter() - t_start
    if not latencies:
        raise InvalidInputError("no frames were decoded")
    ms = np.asarray(latencies) * 1000.0
    stats = {
        "frames": float(len(ms)),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "fps": len(ms) / wall,
    }
    if psnr_in:
        stats["psnr_noisy_db"] = float(np.mean(psnr_in))
        stats["psnr_denoised_db"] = float(np.mean(psnr_out))
    return stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help=".onnx / .engine file or shipped model name")
    p.add_argument("--source", help="video file or camera index for cv2.VideoCapture; default: generated frames")
    p.add_argument("--output", help="write the denoised frames to this MP4 (mp4v)")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate written to --output (default 25)")
    p.add_argument("--frames", type=int, default=50, help="number of frames (default 50)")
    p.add_argument("--size", default="640x480", help="WxH of generated frames (default 640x480)")
    p.add_argument(
        "--pixel-format", choices=("bgr", "nv12", "i420"), default="bgr", help="layout handed to the Denoiser"
    )
    p.add_argument("--sigma", help="σ (0-255) or 'auto' for a noise-level-conditioned model (default: auto)")
    p.add_argument("--noise-profile", help="A,B: camera noise variance a·x + b for a conditioned model")
    p.add_argument("--gen-a", type=float, default=0.01, help="Poisson gain a of generated frames (default 0.01)")
    p.add_argument("--gen-b", type=float, default=0.0004, help="read-noise variance b of generated frames (0.0004)")
    p.add_argument("--seed", type=int, default=0, help="noise seed of generated frames (default 0)")
    p.add_argument("--threads", type=int, help="CPU threads of the Denoiser (default: all cores)")
    args = p.parse_args()
    try:
        stats = run(args)
    except EdgeDenoiseError as exc:
        raise SystemExit(f"error: {exc}") from None
    line = (
        f"{int(stats['frames'])} frames: latency p50 {stats['p50_ms']:.1f} ms, p90 {stats['p90_ms']:.1f} ms, "
        f"p99 {stats['p99_ms']:.1f} ms; {stats['fps']:.1f} frames/s"
    )
    if "psnr_noisy_db" in stats:
        line += f"; PSNR {stats['psnr_noisy_db']:.2f} dB noisy -> {stats['psnr_denoised_db']:.2f} dB denoised"
    print(line)


if __name__ == "__main__":
    main()
