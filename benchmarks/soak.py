"""Soak test of the runtime: many frames through one Denoiser (resident memory must stay flat), and concurrent
calls from several threads (they must give the sequential results).

Prints figures and a PASS/FAIL line; exits 1 on FAIL. Run from the repository root, e.g.

    nice -n 5 .venv/bin/python benchmarks/soak.py                       # tiny rednet10, 1,000 frames of 256x256
    .venv/bin/python benchmarks/soak.py --model out/rednet30.int8.cpu.onnx --size 1920x1080 --frames 1000
    .venv/bin/python benchmarks/soak.py --sizes 256x256,240x320,255x257,64x64   # frames cycle through sizes
    .venv/bin/python benchmarks/soak.py --random-sizes                          # a new size (128..256) each frame

Method:

* One :class:`~edgedenoise.runtime.Denoiser` for the whole run. Without ``--model`` a tiny RED-Net (rednet10,
  8 features, seeded random weights) is exported first by a child process (torch and onnx needed there); the
  measuring process imports only the runtime.
* Each frame is fresh seeded AWGN (σ 25) on a smooth test pattern, ``uint8`` gray by default (``--dtype``,
  ``--channels``), so no input array is reused.
* Resident set size (RSS) from ``psutil`` if it is installed, else ``/proc/self/statm`` (resident pages x page
  size, Linux). Samples: before the model opens, after it opens, after ``--warmup`` frames (allocator arenas and
  the first frames' buffers), every 10 % of the run, and at the end. Growth = (end - after warm-up) / after
  warm-up; the acceptance is ``--max-growth`` (5 %) over the run. ``gc.collect()`` runs before each sample, and
  with ``--trim`` also glibc's ``malloc_trim(0)``, so that heap memory that is free but kept by the allocator
  (fragmentation when frame sizes change) is not counted as growth.
* Concurrency: ``--threads`` threads each denoise their own image (different sizes) ``--calls`` times, all at
  once, against one Denoiser; every result is compared with the same image denoised sequentially first. The
  maximum absolute difference over all calls is printed (0 means bit-identical).
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size of this process in bytes (psutil, else /proc/self/statm)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE


def malloc_trim() -> bool:
    """Return the C heap's free memory to the OS (glibc ``malloc_trim(0)``); False where that is unavailable.

    Without it RSS also counts memory that is free but kept by the allocator (fragmentation from frames of
    changing sizes); with it, what remains is memory in use.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return bool(libc.malloc_trim(0) >= 0)
    except (OSError, AttributeError):
        return False


def rss_source() -> str:
    try:
        import psutil  # noqa: F401

        return "psutil"
    except ImportError:
        return "/proc/self/statm"


_EXPORT = """
import sys, torch
from edgedenoise.export.onnx_export import export_onnx
from edgedenoise.models import create_model
torch.manual_seed(0)
export_onnx(create_model("rednet10", features=8).eval(), sys.argv[1])
"""


def tiny_model(folder: Path) -> Path:
    """Export a rednet10 with 8 features and seeded weights (needs torch and onnx), in a child process so that
    this one holds only the runtime (no torch in the memory figures)."""
    path = folder / "rednet10_f8.onnx"
    subprocess.run([sys.executable, "-c", _EXPORT, str(path)], check=True)
    return path


def parse_size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def frame(index: int, hw: tuple[int, int], channels: int, dtype: str) -> np.ndarray:
    """A smooth pattern plus fresh AWGN (σ = 25/255), seeded by ``index``, in ``dtype``."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    clean = 0.5 + 0.3 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    noisy = clean + np.random.default_rng(index).standard_normal((h, w), dtype=np.float32) * np.float32(25 / 255)
    if channels == 3:
        noisy = np.stack([noisy, noisy[::-1], noisy[:, ::-1]], axis=-1)
    if dtype == "float32":
        return np.clip(noisy, 0, 1).astype(np.float32)
    top = np.iinfo(dtype).max
    return np.clip(np.rint(noisy * top), 0, top).astype(dtype)


def soak(
    dn: object, args: argparse.Namespace, sizes: list[tuple[int, int]]
) -> tuple[list[tuple[str, int]], list[float]]:
    samples: list[tuple[str, int]] = []
    times: list[float] = []
    every = max(1, args.frames // 10)
    rng = np.random.default_rng(0)
    for i in range(args.frames):
        hw = sizes[i % len(sizes)]
        if args.random_sizes:  # a new size almost every frame (e.g. a folder of photos)
            hw = (int(rng.integers(hw[0] // 2, hw[0] + 1)), int(rng.integers(hw[1] // 2, hw[1] + 1)))
        x = frame(i, hw, args.channels, args.dtype)
        t0 = time.perf_counter()
        y = dn(x)  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
        assert y.shape == x.shape and y.dtype == x.dtype
        done = i + 1
        if done == args.warmup or done % every == 0 or done == args.frames:
            gc.collect()
            if args.trim:
                malloc_trim()
            samples.append((f"after {done} frames" + (" (warm-up)" if done == args.warmup else ""), rss_bytes()))
    return samples, times


def concurrency(dn: object, args: argparse.Namespace) -> tuple[float, int]:
    """Max |threaded - sequential| over all calls, and the number of calls compared."""
    base = parse_size(args.size)
    inputs = [
        frame(10_000 + t, (base[0] - 3 * t, base[1] + 5 * t), args.channels, args.dtype) for t in range(args.threads)
    ]
    sequential = [dn(x) for x in inputs]  # type: ignore[operator]
    results: list[list[np.ndarray]] = [[] for _ in inputs]
    errors: list[BaseException] = []
    start = threading.Barrier(args.threads)

    def work(t: int) -> None:
        try:
            start.wait()
            for _ in range(args.calls):
                results[t].append(dn(inputs[t]))  # type: ignore[operator]
        except BaseException as exc:  # reported below, never swallowed
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(args.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    worst = 0.0
    for t, outs in enumerate(results):
        for y in outs:
            worst = max(worst, float(np.abs(y.astype(np.float64) - sequential[t].astype(np.float64)).max()))
    return worst, sum(len(r) for r in results)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="an .onnx/.engine file or shipped name (default: a tiny rednet10 exported now)")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--size", default="256x256", help="WIDTHxHEIGHT of the frames")
    ap.add_argument("--sizes", help="comma-separated WIDTHxHEIGHT list; frames cycle through them (overrides --size)")
    ap.add_argument("--random-sizes", action="store_true", help="each frame a random size, H/2..H x W/2..W")
    ap.add_argument("--channels", type=int, choices=(1, 3), default=1)
    ap.add_argument("--dtype", choices=("uint8", "uint16", "float32"), default="uint8")
    ap.add_argument("--warmup", type=int, default=20, help="frames before the reference memory sample")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--tile", type=int, default=None)
    ap.add_argument("--ort-threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    ap.add_argument("--threads", type=int, default=4, help="threads for the concurrency check")
    ap.add_argument("--calls", type=int, default=10, help="calls per thread in the concurrency check")
    ap.add_argument("--trim", action="store_true", help="malloc_trim(0) before each sample: count memory in use only")
    ap.add_argument("--max-growth", type=float, default=5.0, help="acceptance: RSS growth in %% after warm-up")
    args = ap.parse_args()
    if args.warmup >= args.frames:
        ap.error("--warmup must be smaller than --frames")

    from edgedenoise.runtime import Denoiser

    sizes = [parse_size(s) for s in args.sizes.split(",")] if args.sizes else [parse_size(args.size)]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(tiny_model(Path(tmp)))
        gc.collect()
        rss0 = rss_bytes()
        with Denoiser(model, backend=args.backend, tile=args.tile, threads=args.ort_threads) as dn:
            gc.collect()
            rss_open = rss_bytes()
            t_start = time.perf_counter()
            samples, times = soak(dn, args, sizes)
            wall = time.perf_counter() - t_start
            worst, calls = concurrency(dn, args)
            info = dn.info.summary()
    ref = dict(samples)[next(k for k, _ in samples if k.endswith("(warm-up)"))]
    end = samples[-1][1]
    growth = 100.0 * (end - ref) / ref
    ms = np.array(times) * 1e3
    mb = 1 / 2**20
    print(f"model: {info}")
    shape_txt = ",".join(f"{h}x{w}" for h, w in sizes)
    shape_txt = f"random sizes up to {shape_txt}" if args.random_sizes else shape_txt
    trim = " after malloc_trim(0)" if args.trim else ""
    print(
        f"frames: {args.frames} x {shape_txt} x {args.channels} channel(s), {args.dtype}; RSS from {rss_source()}{trim}"
    )
    print(f"RSS before the model: {rss0 * mb:.1f} MB; model open: {rss_open * mb:.1f} MB")
    for label, value in samples:
        print(f"RSS {label}: {value * mb:.1f} MB")
    print(f"RSS growth after warm-up: {(end - ref) * mb:+.2f} MB = {growth:+.2f} % (acceptance < {args.max_growth} %)")
    print(
        f"latency per frame: p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, "
        f"max {ms.max():.1f} ms; {args.frames / wall:.1f} frames/s"
    )
    print(
        f"concurrency: {args.threads} threads x {args.calls} calls ({calls} results) vs sequential: "
        f"max |diff| = {worst}"
    )
    ok = growth < args.max_growth and worst == 0.0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
