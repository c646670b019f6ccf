"""Timing one piece of work the same way for every backend: warm-up runs, then runs timed one by one with
:func:`time.perf_counter`, within an optional time budget, while a thread samples the process's resident memory;
and the machine's float32 matmul ceiling. Torch-free: the work is any zero-argument callable.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .report import MatmulCeiling

RSS_INTERVAL_S = 0.005  # seconds between two RSS samples
MIN_TIMED = 3  # runs timed at least, even past max_seconds


def current_rss_bytes() -> int | None:
    """Resident set size of this process in bytes (``/proc/self/statm`` or psutil), or None."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import psutil  # optional

        return int(psutil.Process().memory_info().rss)
    except Exception:  # psutil missing or unsupported platform
        return None


def _ru_maxrss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS, KiB on Linux


class RssSampler:
    """Peak process RSS while a block runs, sampled by a daemon thread every ``interval`` seconds.

    Use as a context manager; afterwards :attr:`start_mib`, :attr:`peak_mib` (MiB) and :attr:`method` hold the
    result (see :mod:`edgedenoise.runtime.bench` for the caveats).
    """

    def __init__(self, interval: float = RSS_INTERVAL_S) -> None:
        self.interval = interval
        self.start_mib: float | None = None
        self.peak_mib: float | None = None
        self.method = "none"
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            rss = current_rss_bytes()
            if rss is not None and rss > self._peak:
                self._peak = rss

    def __enter__(self) -> RssSampler:
        start = current_rss_bytes()
        if start is not None:
            self.method = "rss-sampled"
            self._peak = start
            self.start_mib = start / 2**20
            self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            last = current_rss_bytes()
            self.peak_mib = max(self._peak, last or 0) / 2**20
            return
        peak = _ru_maxrss_bytes()
        if peak is not None:
            self.method = "ru_maxrss"
            self.peak_mib = peak / 2**20


@dataclass(frozen=True)
class Timing:
    """What :func:`time_runs` measured: timed latencies (ms), warm-up runs done, and memory (see
    :mod:`edgedenoise.runtime.bench`)."""

    samples_ms: tuple[float, ...]
    warmup_runs: int
    rss_start_mib: float | None
    peak_rss_mib: float | None
    memory_method: str

    def row_fields(self) -> dict[str, Any]:
        """The :class:`~.report.BenchRow` fields this timing fills (``warmup`` is :attr:`warmup_runs`)."""
        names = ("samples_ms", "rss_start_mib", "peak_rss_mib", "memory_method")
        return {"warmup": self.warmup_runs, **{n: getattr(self, n) for n in names}}


def time_runs(fn: Callable[[], object], *, warmup: int, iters: int, max_seconds: float | None = None) -> Timing:
    """Run ``fn`` up to ``warmup`` times untimed, then time up to ``iters`` runs, each alone with ``perf_counter``.

    Args:
        fn: the work (e.g. one ``backend.run`` on a fixed batch).
        warmup: untimed runs first (>= 0).
        iters: most timed runs (>= 1).
        max_seconds: time budget of each phase (None: no budget). Warm-up stops once it has taken this long
            (after one run at least); timing stops once the timed runs took this long in total and at least
            ``min(iters, 3)`` were timed. Large frames on slow backends then cost a minute, not ten.

    Returns:
        :class:`Timing`, with the process RSS watched by an :class:`RssSampler` over both phases.

    Raises:
        InvalidInputError: ``warmup < 0``, ``iters < 1`` or ``max_seconds < 0``.
    """
    if warmup < 0 or iters < 1 or (max_seconds is not None and max_seconds < 0):
        raise InvalidInputError(
            f"need warmup >= 0, iters >= 1 and max_seconds >= 0, got {warmup}, {iters} and {max_seconds}"
        )
    budget = math.inf if max_seconds is None else max_seconds
    samples: list[float] = []
    done = 0
    with RssSampler() as sampler:
        t_warm = time.perf_counter()
        while done < warmup:
            fn()
            done += 1
            if time.perf_counter() - t_warm >= budget:
                break
        spent = 0.0
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            samples.append(dt * 1000.0)
            spent += dt
            if spent >= budget and len(samples) >= min(iters, MIN_TIMED):
                break
    return Timing(tuple(samples), done, sampler.start_mib, sampler.peak_mib, sampler.method)


def matmul_ceiling(n: int = 4096, repeats: int = 3, seed: int = 0) -> MatmulCeiling:
    """Time ``numpy.matmul`` of two ``(n, n)`` float32 matrices ``repeats`` times (after one untimed run).

    The practical float32 ceiling of this machine for dense convolution-like work (the BLAS numpy links, all
    its threads). Raises:
        InvalidInputError: ``n < 1`` or ``repeats < 1``.
    """
    if n < 1 or repeats < 1:
        raise InvalidInputError(f"matmul size and repeats must be >= 1, got {n} and {repeats}")
    rng = np.random.default_rng(seed)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return MatmulCeiling(n=n, repeats=repeats, best_s=best)
