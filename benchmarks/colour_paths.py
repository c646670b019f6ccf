#!/usr/bin/env python
"""Colour denoising paths on a colour test set, printed as a table (PSNR in dB, peak 255, over R, G, B).

Each image becomes an 8-bit noisy file (clipped, rounded) with AWGN of ``--sigma`` or Poisson-Gaussian camera noise
``--profile A,B`` (variance ``a·x + b``, x in [0, 1]; numpy's generator, seed = image index). Every model runs
through the runtime's ``Denoiser`` (FP32 files): a gray model per channel and on opponent planes, a colour model as
it is; a model told the noise level gets the true σ (AWGN) or the profile, given and fitted (``"auto"``); blind
models run per channel. Used for the colour figures in docs/noise-level.md, e.g.::

    python benchmarks/colour_paths.py --data ../shared/data/CBSD68 --profile 0.01,0.0004 \\
        --models rednet30,unet3_f32_u4_nl,unet3_f32_u4_nl_rgb,rednet18_slim64_u2_nl_rgb
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from edgedenoise.runtime import Denoiser


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder of clean colour PNGs (sorted order)")
    ap.add_argument("--models", required=True, help="comma-separated shipped model names")
    noise = ap.add_mutually_exclusive_group(required=True)
    noise.add_argument("--sigma", type=float, help="AWGN σ on the 0-255 scale")
    noise.add_argument("--profile", help="Poisson-Gaussian A,B on the [0, 1] scale")
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    files = sorted(args.data.glob("*.png"))[: args.limit or None]
    profile = tuple(float(v) for v in args.profile.split(",")) if args.profile else None

    setups: dict[str, Denoiser] = {}
    for name in args.models.split(","):
        probe = Denoiser(name, precision="fp32", threads=args.threads)
        gray, told = probe.cfg.in_channels == 1, probe.takes_noise_level
        probe.close()
        colours = ["per-channel", "opponent"] if gray and told else ["auto"]
        profiles: list[object] = [profile, "auto"] if profile and told else [None]
        for colour in colours:
            for prof in profiles:
                label = f"{name} {colour}" + (f" profile {'fitted' if prof == 'auto' else 'given'}" if prof else "")
                setups[label] = Denoiser(
                    name,
                    precision="fp32",
                    threads=args.threads,
                    color=colour,
                    noise_profile=prof,  # type: ignore[arg-type]
                )
    scores: dict[str, list[float]] = {k: [] for k in ["noisy", *setups]}
    for i, path in enumerate(files):
        clean = np.asarray(Image.open(path).convert("RGB"), np.float64)
        x = clean / 255
        std = np.sqrt(profile[0] * x + profile[1]) if profile else np.full_like(x, args.sigma / 255)
        noisy = np.clip(np.rint((x + np.random.default_rng(i).normal(0, 1, x.shape) * std) * 255), 0, 255)
        noisy = noisy.astype(np.uint8)
        scores["noisy"].append(_psnr(noisy, clean))
        for label, dn in setups.items():
            sigma = args.sigma if (dn.takes_noise_level and dn.noise_profile is None) else None
            scores[label].append(_psnr(dn(noisy, sigma=sigma), clean))
    what = f"AWGN σ {args.sigma:g}" if args.sigma is not None else f"Poisson-Gaussian a {profile[0]:g} b {profile[1]:g}"
    print(f"{args.data.name}, {len(files)} images, {what}, 8-bit noisy files")
    for label, v in scores.items():
        print(f"{label:60s} {np.mean(v):6.2f} dB")


if __name__ == "__main__":
    main()
