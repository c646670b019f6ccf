"""Image-quality metrics in numpy: PSNR and SSIM, following the denoising benchmark protocol.

Protocol (DnCNN / RED-Net papers and their released evaluation code): the estimate is clipped to [0, 1] and
quantised to 8 bits (``round(x * 255)``) before it is compared with the 8-bit clean image; PSNR and SSIM use
a peak of 255. Use :func:`quantize8` for that step; the metric functions compare whatever they are given.
"""

from __future__ import annotations

import numpy as np


def quantize8(x: np.ndarray) -> np.ndarray:
    """float in [0, 1] (any shape) -> float64 on the 0-255 scale, clipped and rounded to integers."""
    return np.rint(np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0) * 255.0)


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range² / MSE)`` over all elements.

    Args:
        a, b: arrays of the same shape (e.g. ``(H, W)`` or ``(H, W, 3)``), on the scale of ``data_range``.

    Returns:
        PSNR in dB; ``inf`` for identical arrays.

    Raises:
        ValueError: shapes differ.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(data_range**2 / mse))


def _gaussian_filter_valid(x: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D array with the 1-D window ``win`` along both axes."""
    k = len(win)
    # rows then columns, via sliding windows (no scipy in the runtime)
    v = np.lib.stride_tricks.sliding_window_view(x, k, axis=0) @ win
    return np.lib.stride_tricks.sliding_window_view(v, k, axis=1) @ win


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Structural similarity (Wang et al., IEEE TIP 2004, Eq. 13) with an 11x11 Gaussian window, σ = 1.5.

    K1 = 0.01, K2 = 0.03, population covariances, mean over the 'valid' region (no padding); a colour image
    ``(H, W, 3)`` gives the mean of the per-channel SSIMs. Matches scikit-image's
    ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` up to its border
    handling (scikit-image crops the same border after filtering).

    Raises:
        ValueError: shapes differ or the image is smaller than 11x11.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ {a.shape} vs {b.shape}")
    if a.ndim == 3:
        return float(np.mean([ssim(a[..., c], b[..., c], data_range) for c in range(a.shape[2])]))
    if min(a.shape) < 11:
        raise ValueError(f"ssim needs at least 11x11 pixels, got {a.shape}")
    t = np.arange(11) - 5.0
    win = np.exp(-(t**2) / (2 * 1.5**2))
    win /= win.sum()
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_a = _gaussian_filter_valid(a, win)
    mu_b = _gaussian_filter_valid(b, win)
    saa = _gaussian_filter_valid(a * a, win) - mu_a**2
    sbb = _gaussian_filter_valid(b * b, win) - mu_b**2
    sab = _gaussian_filter_valid(a * b, win) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2)
    return float(np.mean(num / den))


def awgn(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Add white Gaussian noise of σ (0-255 scale) to a float image in [0, 1]; not clipped.

    The noise is ``numpy.random.default_rng(seed).standard_normal(shape, float32) * sigma / 255`` so any
    tool can reproduce it exactly from the seed.
    """
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(clean.shape, dtype=np.float32)
    return (np.asarray(clean, dtype=np.float32) + noise * np.float32(sigma / 255.0)).astype(np.float32)
