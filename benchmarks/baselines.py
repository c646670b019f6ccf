"""Classical baselines on the benchmark protocol: BM3D and OpenCV's non-local means, PSNR/SSIM and seconds.

Run from the repository root (needs the ``bench`` extra: ``pip install -e '.[bench]'``)::

    .venv/bin/python benchmarks/baselines.py                          # BSD68, σ 25, both methods, cached
    .venv/bin/python benchmarks/baselines.py --methods nlm --limit 4 --frame 256x256 --refresh

``benchmarks/results.py`` calls :func:`run_baselines` for the report; this script alone prints the figures.

Protocol: exactly that of ``edgedenoise eval`` (:mod:`edgedenoise.evaluate`), because the baselines *are* run
through :func:`edgedenoise.evaluate.evaluate`, each wrapped as a ``Predictor``: image ``i`` (sorted file
order) gets ``awgn(clean_i, sigma, seed + i)``, not clipped; the estimate is clipped, quantised to 8 bits and
scored with :mod:`edgedenoise.runtime.metrics` (PSNR and SSIM, peak 255). Seconds per image time only the
denoiser call (:func:`time.perf_counter`), not the noise or the metrics, the same as for our models.

* **BM3D** (Dabov et al., "Image denoising by sparse 3-D transform-domain collaborative filtering", IEEE TIP
  2007), the ``bm3d`` package (Mäkinen, Azzari, Foi, 2020: the authors' reference implementation, v4):
  ``bm3d.bm3d(noisy, sigma_psd=sigma / 255)`` on the unclipped float noisy image, default profile ``"np"``,
  both stages. The published BSD68 σ = 25 figure is 28.57 dB (Zhang et al., DnCNN, IEEE TIP 2017, Table II).
* **Non-local means** (Buades, Coll, Morel, CVPR 2005), OpenCV's ``cv2.fastNlMeansDenoising`` on ``uint8``
  (the noisy image clipped to [0, 1] and rounded to 8 bits, which the function requires), with OpenCV's
  recommended ``templateWindowSize = 7`` and ``searchWindowSize = 21`` (OpenCV docs, "Denoising",
  ``fastNlMeansDenoising``). The filter strength ``h`` follows ``h = k * sigma`` (OpenCV's weights are
  ``exp(-d² / h²)`` with ``d²`` the mean squared patch distance, so ``h`` scales with the noise level; the IPOL
  paper of the method, Buades et al. 2011, likewise sets ``h`` proportional to σ, but with a σ-corrected distance
  OpenCV does not use, so its constants do not carry over). ``k`` is **tuned on training images** (the first
  :data:`NLM_TUNE_IMAGES` of ``Train400``, same noise scheme) over :data:`NLM_FACTORS`, never on a test set.

Frame speed: each method also denoises one ``--frame`` sized frame (default 1920x1080, the clean first test
image resized with Pillow's bicubic filter, plus AWGN): NLM the median of 3 runs, BM3D one run (about minutes).

Results are cached in ``benchmarks/results/baselines.json`` keyed by every setting (method, parameters, package
version, data set and its file names, σ, seed, frame size, CPU): a report re-run reuses them; ``--refresh``
measures again.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "benchmarks" / "results" / "baselines.json"
METHODS = ("bm3d", "nlm")
NLM_TEMPLATE, NLM_SEARCH = 7, 21  # OpenCV's recommended window sizes
NLM_FACTORS = tuple(round(0.5 + 0.05 * i, 2) for i in range(21))  # k in h = k * sigma: 0.50 .. 1.50
NLM_TUNE_IMAGES = 16


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def require(method: str) -> None:
    """Raise an :class:`~edgedenoise.runtime.errors.EdgeDenoiseError` if ``method``'s package is missing."""
    from edgedenoise.runtime.errors import EdgeDenoiseError

    module = {"bm3d": "bm3d", "nlm": "cv2"}[method]
    try:
        __import__(module)
    except ImportError as exc:
        raise EdgeDenoiseError(
            f"baseline {method!r} needs the {module} package; install the bench extra: pip install -e '.[bench]'"
        ) from exc


# ---------------------------------------------------------------- denoisers as Predictors


class TimedPredictor:
    """Wrap a ``Predictor`` (``cfg``, ``backend``, ``(1, C, H, W) float32 -> same``); record seconds per call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cfg = inner.cfg
        self.backend = inner.backend
        self.seconds: list[float] = []

    def __call__(self, x: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
        t0 = time.perf_counter()
        y = self.inner(x) if sigma is None else self.inner(x, sigma)
        self.seconds.append(time.perf_counter() - t0)
        return y


class PlaneDenoiser:
    """A classical gray denoiser as an ``edgedenoise.evaluate`` Predictor: ``fn`` maps an ``(H, W)`` float32
    noisy plane (unclipped, [0, 1] scale) to an ``(H, W)`` estimate on the same scale."""

    def __init__(self, name: str, fn: Callable[[np.ndarray], np.ndarray], backend: str) -> None:
        from edgedenoise.runtime.contract import ModelCfg

        self.cfg = ModelCfg(arch=name, in_channels=1, residual=False, noise="classical")
        self.backend = backend
        self.fn = fn

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(x.shape, np.float32)
        for n in range(x.shape[0]):
            out[n, 0] = self.fn(np.ascontiguousarray(x[n, 0], dtype=np.float32))
        return out


def bm3d_denoiser(sigma: float) -> PlaneDenoiser:
    """BM3D for AWGN of ``sigma`` (0-255 scale): ``bm3d.bm3d(noisy, sigma_psd=sigma / 255)``."""
    import bm3d

    def fn(noisy: np.ndarray) -> np.ndarray:
        return np.asarray(bm3d.bm3d(noisy, sigma_psd=sigma / 255.0), dtype=np.float32)

    return PlaneDenoiser("bm3d", fn, f"bm3d {_version('bm3d')}")


def nlm_h(sigma: float, factor: float) -> float:
    """OpenCV NLM filter strength ``h = factor * sigma`` (0-255 scale)."""
    return factor * sigma


def nlm_denoiser(h: float) -> PlaneDenoiser:
    """OpenCV ``fastNlMeansDenoising(uint8, h, 7, 21)``; input clipped and rounded to 8 bits, output / 255."""
    import cv2

    def fn(noisy: np.ndarray) -> np.ndarray:
        u8 = np.rint(np.clip(noisy, 0.0, 1.0) * 255.0).astype(np.uint8)
        out = cv2.fastNlMeansDenoising(
            u8, None, h=float(h), templateWindowSize=NLM_TEMPLATE, searchWindowSize=NLM_SEARCH
        )
        return out.astype(np.float32) / np.float32(255.0)

    return PlaneDenoiser("nlm", fn, f"opencv {_version('opencv-python-headless')}")


# ---------------------------------------------------------------- measuring


def score(
    predictor: Any, data_dir: Path, sigma: float, seed: int, limit: int | None, threads: int = 0
) -> dict[str, Any]:
    """PSNR/SSIM (edgedenoise.evaluate protocol) and seconds per image of a Predictor on a folder
    (``threads``: torch threads while it runs, 0 keeps the default)."""
    from edgedenoise.evaluate import evaluate

    timed = TimedPredictor(predictor)
    res = evaluate(timed, data_dir, [sigma], seed=seed, limit=limit, threads=threads or None).at(sigma)
    return {
        "psnr": res.psnr,
        "ssim": res.ssim,
        "seconds_per_image": float(np.mean(timed.seconds)),
        "n_images": len(res.images),
        "images": [
            {"name": s.name, "psnr": s.psnr, "ssim": s.ssim, "seconds": t}
            for s, t in zip(res.images, timed.seconds, strict=True)
        ],
    }


def tune_nlm(train_dir: Path, sigma: float, seed: int = 0, n_images: int = NLM_TUNE_IMAGES) -> dict[str, Any]:
    """Pick ``k`` of ``h = k * sigma`` maximising mean PSNR on the first ``n_images`` training images.

    Returns ``{"factor", "h", "table": {k: psnr}, "train_dir", "n_images"}``.
    """
    table = {}
    for k in NLM_FACTORS:
        table[k] = score(nlm_denoiser(nlm_h(sigma, k)), train_dir, sigma, seed, n_images)["psnr"]
    best = max(table, key=lambda k: table[k])
    return {"factor": best, "h": nlm_h(sigma, best), "table": table, "train_dir": train_dir.name, "n_images": n_images}


def timing_frame(data_dir: Path, height: int, width: int, sigma: float, seed: int) -> np.ndarray:
    """The first image of ``data_dir`` resized (Pillow bicubic) to ``height x width``, plus AWGN: float32 (H, W)."""
    from PIL import Image

    from edgedenoise.evaluate import load_clean
    from edgedenoise.runtime.imageio import list_images
    from edgedenoise.runtime.metrics import awgn

    pix = load_clean(list_images(data_dir)[0], 1)
    big = np.asarray(Image.fromarray(pix).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    return awgn(big / np.float32(255.0), sigma, seed)


def time_frame(predictor: Any, frame: np.ndarray, repeats: int) -> list[float]:
    """Seconds of ``repeats`` runs of ``predictor`` on one ``(H, W)`` frame."""
    x = frame[None, None]
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predictor(x)
        out.append(time.perf_counter() - t0)
    return out


def _digest(names: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {"entries": []}
    return data if isinstance(data, dict) and isinstance(data.get("entries"), list) else {"entries": []}


def run_baselines(
    methods: Sequence[str] = METHODS,
    *,
    data_dir: Path = DATA / "BSD68",
    train_dir: Path = DATA / "Train400",
    sigma: float = 25.0,
    seed: int = 0,
    limit: int | None = None,
    frame_hw: tuple[int, int] | None = (1080, 1920),
    cache: Path = CACHE,
    refresh: bool = False,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Measure (or take from ``cache``) each method on ``data_dir`` at ``sigma``; returns one dict per method.

    Each dict: ``method``, ``params``, ``version``, ``key`` (what the cache matched on), ``psnr``, ``ssim``,
    ``seconds_per_image``, ``n_images``, ``images`` (per image), ``frame`` (``{"height", "width", "seconds",
    "median_s"}`` or None), ``machine`` and ``measured_utc``.

    Raises:
        EdgeDenoiseError: a method's package is missing; InvalidInputError: no images in ``data_dir``.
    """
    from edgedenoise.runtime.bench import machine_info
    from edgedenoise.runtime.imageio import list_images

    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown baseline {m!r}; choose from {', '.join(METHODS)}")
        require(m)
    names = [p.name for p in list_images(data_dir)[:limit]]
    machine = machine_info()
    store = _load_cache(cache)
    out = []
    for method in methods:
        if method == "nlm":
            tkey = {
                "train_dir": train_dir.name,
                "n_images": NLM_TUNE_IMAGES,
                "sigma": sigma,
                "seed": seed,
                "grid": list(NLM_FACTORS),
                "version": _version("opencv-python-headless"),
            }
            tuning = next((t for t in store.get("nlm_tuning", []) if t.get("key") == tkey), None)
            if tuning is None or refresh:
                log(f"tuning NLM h on {NLM_TUNE_IMAGES} {train_dir.name} images at sigma {sigma:g} ...")
                tuning = {"key": tkey, **tune_nlm(train_dir, sigma, seed)}
                store["nlm_tuning"] = [t for t in store.get("nlm_tuning", []) if t.get("key") != tkey] + [tuning]
            params: dict[str, Any] = {
                "h": tuning["h"],
                "h_rule": f"h = {tuning['factor']} * sigma (k tuned on {train_dir.name})",
                "templateWindowSize": NLM_TEMPLATE,
                "searchWindowSize": NLM_SEARCH,
            }
            version = _version("opencv-python-headless")
        else:
            params = {"sigma_psd": sigma / 255.0, "profile": "np", "stages": "all"}
            version = _version("bm3d")
        key = {
            "method": method,
            "params": params,
            "version": version,
            "data": data_dir.name,
            "images": len(names),
            "images_sha": _digest(names),
            "sigma": sigma,
            "seed": seed,
            "frame": list(frame_hw) if frame_hw else None,
            "cpu": machine["cpu"],
            "cores": machine["logical_cores"],
        }
        hit = next((e for e in store["entries"] if e.get("key") == key), None)
        if hit is not None and not refresh:
            log(f"{method}: cached result from {hit['measured_utc']} ({hit['psnr']:.3f} dB)")
            out.append(hit)
            continue
        den = bm3d_denoiser(sigma) if method == "bm3d" else nlm_denoiser(params["h"])
        log(f"{method}: {len(names)} images of {data_dir.name} at sigma {sigma:g} ...")
        entry: dict[str, Any] = {"key": key, "method": method, "params": params, "version": version}
        if method == "nlm" and tuning is not None:  # set above for NLM
            entry["tuning"] = {k: tuning[k] for k in ("factor", "table", "train_dir", "n_images")}
        entry.update(score(den, data_dir, sigma, seed, limit))
        entry["frame"] = None
        if frame_hw:
            h, w = frame_hw
            log(f"{method}: timing one {w}x{h} frame ...")
            secs = time_frame(den, timing_frame(data_dir, h, w, sigma, seed), 1 if method == "bm3d" else 3)
            entry["frame"] = {"height": h, "width": w, "seconds": secs, "median_s": statistics.median(secs)}
        entry["machine"] = machine
        entry["measured_utc"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        store["entries"] = [e for e in store["entries"] if e.get("key") != key] + [entry]
        _write_json(cache, store)
        out.append(entry)
    return out


def _write_json(path: Path, data: Any) -> None:
    from edgedenoise.runtime.atomic import write_atomic

    write_atomic(path, json.dumps(data, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated: bm3d,nlm")
    ap.add_argument("--data", type=Path, default=DATA / "BSD68", help="clean test images")
    ap.add_argument("--train", type=Path, default=DATA / "Train400", help="training images (NLM h tuning)")
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, help="only the first N images")
    ap.add_argument("--frame", default="1920x1080", help="WIDTHxHEIGHT of the timed frame ('none': skip)")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--refresh", action="store_true", help="measure again even if cached")
    args = ap.parse_args(argv)
    from edgedenoise.runtime.bench import parse_sizes
    from edgedenoise.runtime.errors import EdgeDenoiseError

    for d in (args.data, args.train):
        if not d.is_dir():
            print(
                f"Error: {d} not found; put the benchmark sets in ../shared/data (see docs/results.md)", file=sys.stderr
            )
            return 1
    try:
        frame = None if args.frame == "none" else parse_sizes(args.frame)[0]
        rows = run_baselines(
            [m.strip() for m in args.methods.split(",") if m.strip()],
            data_dir=args.data,
            train_dir=args.train,
            sigma=args.sigma,
            seed=args.seed,
            limit=args.limit,
            frame_hw=frame,
            cache=args.cache,
            refresh=args.refresh,
        )
    except (EdgeDenoiseError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    for r in rows:
        fr = r["frame"]
        extra = f", {fr['width']}x{fr['height']} frame {fr['median_s']:.2f} s" if fr else ""
        print(
            f"{r['method']:5s} {r['params']}: PSNR {r['psnr']:.3f} dB, SSIM {r['ssim']:.4f}, "
            f"{r['seconds_per_image']:.3f} s/image ({r['n_images']} images){extra}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
