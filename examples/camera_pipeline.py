"""A camera pipeline around one :class:`edgedenoise.runtime.Denoiser`: frames in, denoised frames out, latency out.

Frames come from a video file through imageio's PyAV plugin (``pip install imageio av``) when ``--video`` is
given, else from a generated sequence: the shipped sample image panned across a larger canvas, with fresh
seeded AWGN on every frame, so that PSNR against the clean frame can be reported too. A decoder thread feeds a
bounded queue (as a camera driver would), the main thread denoises, and every frame's denoise latency (wall
time of the ``Denoiser`` call alone) is recorded; the script prints p50/p90/p99 and throughput.

Needs no PyTorch. Run from the repository root, e.g.::

    python examples/camera_pipeline.py rednet30.int8.cpu --frames 100 --size 1280x720
    python examples/camera_pipeline.py rednet30.fp16.engine --video street.mp4 --frames 300
"""

from __future__ import annotations

import argparse
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgedenoise.runtime import Denoiser
from edgedenoise.runtime.errors import EdgeDenoiseError, InvalidInputError

SAMPLE = Path(__file__).resolve().parent.parent / "edgedenoise" / "samples" / "cbsd432_103006_gray.png"
_END = object()


def video_frames(path: str, limit: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """``(frame, None)`` for each decoded frame of a video: ``(H, W, 3)`` uint8 RGB.

    Raises:
        InvalidInputError: imageio or PyAV is not installed, or the file cannot be decoded.
    """
    try:
        import imageio.v3 as iio
    except ImportError as exc:
        raise InvalidInputError("--video needs imageio and PyAV: pip install imageio av") from exc
    try:
        for i, frame in enumerate(iio.imiter(path, plugin="pyav")):
            if i >= limit:
                return
            yield np.asarray(frame), None
    except (ImportError, OSError, ValueError) as exc:
        raise InvalidInputError(f"{path}: cannot decode video ({exc}); is PyAV installed (pip install av)?") from exc


def generated_frames(
    height: int, width: int, limit: int, sigma: float, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(noisy, clean)`` float32 frames in [0, 1] (noisy not clipped): the sample image panned, plus AWGN."""
    from PIL import Image

    base = np.asarray(Image.open(SAMPLE), dtype=np.float32) / 255.0
    reps = (-(-(height + 64) // base.shape[0]), -(-(width + 64) // base.shape[1]))
    canvas = np.tile(base, reps)  # large enough to pan over
    rng = np.random.default_rng(seed)
    for i in range(limit):
        dy, dx = (3 * i) % 64, (5 * i) % 64
        clean = np.ascontiguousarray(canvas[dy : dy + height, dx : dx + width])
        noise = rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(sigma / 255.0)
        yield clean + noise, clean


def _producer(frames: Iterator[tuple[np.ndarray, np.ndarray | None]], q: queue.Queue[object]) -> None:
    try:
        for item in frames:
            q.put(item)
    except EdgeDenoiseError as exc:
        q.put(exc)
    finally:
        q.put(_END)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1).astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def run(args: argparse.Namespace) -> dict[str, float]:
    """Run the pipeline; returns the latency percentiles (ms), throughput and, for generated frames, PSNRs."""
    width, height = (int(v) for v in args.size.lower().split("x"))
    with Denoiser(args.model, backend=args.backend, device=args.device, tile=args.tile, threads=args.threads) as dn:
        print(f"backend: {dn.info.summary()}")
        if args.video:
            frames: Iterator[tuple[np.ndarray, np.ndarray | None]] = video_frames(args.video, args.frames)
        else:
            frames = generated_frames(height, width, args.frames, args.sigma, args.seed)
        q: queue.Queue[object] = queue.Queue(maxsize=4)
        threading.Thread(target=_producer, args=(frames, q), daemon=True).start()
        latencies: list[float] = []
        psnr_in: list[float] = []
        psnr_out: list[float] = []
        warmed = False
        t_start = time.perf_counter()
        while (item := q.get()) is not _END:
            if isinstance(item, EdgeDenoiseError):
                raise item
            frame, clean = item  # type: ignore[misc]
            if not warmed:  # first allocation / tuning happens here, not in the first measured frame
                dn.warmup(frame.shape[0], frame.shape[1], frame.shape[2] if frame.ndim == 3 else 1)
                warmed = True
                t_start = time.perf_counter()
            t0 = time.perf_counter()
            out = dn(frame)
            latencies.append(time.perf_counter() - t0)
            if clean is not None:
                psnr_in.append(_psnr(frame, clean))
                psnr_out.append(_psnr(out, clean))
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
    p.add_argument("--video", help="video file (needs imageio + PyAV); default: a generated noisy sequence")
    p.add_argument("--frames", type=int, default=50, help="number of frames (default 50)")
    p.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of generated frames (default 640x480)")
    p.add_argument("--sigma", type=float, default=25.0, help="AWGN σ (0-255) of generated frames (default 25)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto")
    p.add_argument("--device", type=int)
    p.add_argument("--tile", type=int)
    p.add_argument("--threads", type=int)
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
