"""Noise levels for noise-level-conditioned models: estimating σ from an image, and building σ maps.

A conditioned model (``ModelCfg.noise_level_input``) takes, beside the noisy image, a map of the noise standard
deviation per pixel. Users state σ on the 0-255 scale (the field's convention, whatever the file's bit depth);
the model takes it in value units (σ / 255 for the value range (0, 1)).

``estimate_sigma`` is the wavelet median-absolute-deviation estimator of Donoho and Johnstone ("Ideal spatial
adaptation by wavelet shrinkage", Biometrika 1994, Sec. 4.2): the finest diagonal (HH) subband of an orthonormal
wavelet transform is mostly noise, and for Gaussian noise ``median(|HH|) / 0.6745`` is its standard deviation.
The wavelet is Daubechies-2, as in scikit-image's ``restoration.estimate_sigma`` (which the tests use as the
oracle); its two vanishing moments keep smooth gradients out of HH, which Haar's one does not. Texture still
leaks into HH and makes the plain estimator read high at low σ on detailed photographs, so only the half of the
coefficients in the flattest neighbourhoods (least LH + HL energy; the subbands' noise is independent) enters
the median: a weak-texture selection in the spirit of Liu, Tanaka and Okutomi ("Single-image noise level
estimation for blind denoising", IEEE TIP 2013). numpy alone: a few strided multiply-adds over the image, one
quantile and one median.

Clipped 8-bit files: pixels at the ends of the range carry less noise than the rest (the excursions are cut),
so 2x2 blocks with a pixel exactly at 0 or at the top value are left out of the median when enough others remain
(values beyond the range, as unclipped float noise has, are kept).
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidInputError

#: median(|N(0, 1)|): the MAD of a standard normal variable (Donoho and Johnstone 1994).
MAD_TO_SIGMA = 0.6744897501960817
#: Daubechies-2 analysis filters (Daubechies, "Ten Lectures on Wavelets", 1992, Table 6.1; unit norm).
DB2_HIGH = np.array([-0.48296291314469025, 0.836516303737469, -0.22414386804185735, -0.12940952255092145], np.float32)
DB2_LOW = np.array([-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025], np.float32)
#: Share of the 2x2 blocks, the flattest by their horizontal and vertical detail, whose HH coefficients are used.
FLAT_SHARE = 0.5
#: Frames larger than this many values are estimated from evenly spread 64-row bands of about this size.
MAX_PIXELS = 1 << 19


def _as_hwc(image: np.ndarray, min_side: int, what: str) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` -> ``(H, W, C)`` float32, at least ``min_side`` on both sides.

    Raises:
        InvalidInputError: another shape, or too small (the message names ``what`` needed it).
    """
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[0] < min_side or x.shape[1] < min_side:
        raise InvalidInputError(
            f"{what} needs an (H, W) or (H, W, C) image of at least {min_side}x{min_side}, got {np.shape(image)}"
        )
    return x


def _dd(x: np.ndarray, rows_taps: np.ndarray, cols_taps: np.ndarray | None = None) -> np.ndarray:
    """Separable filtering of ``(H, W, C)`` by ``rows_taps`` along H and ``cols_taps`` (default the same) along W
    at stride 2, valid positions only: one subband of one level of the 2-D wavelet transform (no boundary
    extension)."""
    cols_taps = rows_taps if cols_taps is None else cols_taps
    k = len(rows_taps)
    h2, w2 = (x.shape[0] - k) // 2 + 1, (x.shape[1] - k) // 2 + 1
    rows = sum(rows_taps[i] * x[i : i + 2 * h2 - 1 : 2] for i in range(k))
    return sum(cols_taps[j] * rows[:, j : j + 2 * w2 - 1 : 2] for j in range(k))


def _flat_hh(x: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """The HH coefficients of ``(H, W, C)`` that saw no clipped pixel, and their neighbourhood's LH + HL energy."""
    eps = 1e-6 * (hi - lo)
    hh = _dd(x, DB2_HIGH)
    # a coefficient whose 4x4 support holds a pixel exactly at an end of the range saw clipped noise
    ends = ((np.abs(x - lo) <= eps) | (np.abs(x - hi) <= eps)).astype(np.float32)
    keep = _dd(ends, np.ones(4, np.float32)) == 0
    # texture leaks into HH too: the flattest blocks are ranked by the local energy of the LH and HL subbands.
    # For white Gaussian noise the subbands of an orthonormal wavelet are independent, so choosing blocks by
    # LH/HL does not bias the noise left in their HH coefficients.
    detail = np.abs(_dd(x, DB2_HIGH, DB2_LOW)) + np.abs(_dd(x, DB2_LOW, DB2_HIGH))
    energy = detail.copy()
    energy[1:] += detail[:-1]
    energy[:-1] += detail[1:]
    energy[:, 1:] += detail[:, :-1]
    energy[:, :-1] += detail[:, 1:]
    if np.count_nonzero(keep) >= max(16, hh.size // 10):
        return hh[keep], energy[keep]
    return hh.ravel(), energy.ravel()


def estimate_sigma(image: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> float:
    """Estimate the standard deviation of additive white noise in one image (wavelet MAD, see module doc).

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` float32 in ``value_range`` (noise may exceed it); for several channels
            the median runs over the HH coefficients of all channels together. At least 4x4 pixels.
        value_range: the image's ``(low, high)``; blocks with a pixel exactly at either end are left out.

    Returns:
        σ on the 0-255 scale (σ in value units x 255 / (high - low)), >= 0.

    Raises:
        InvalidInputError: an image smaller than 4x4 or of another shape.
    """
    x = _as_hwc(image, 4, "noise estimation")
    lo, hi = value_range
    # large frames: 64-row bands spread evenly over the image, about MAX_PIXELS in all (the estimate is a median)
    h = x.shape[0]
    n_bands = max(1, min(h // 64, -(-MAX_PIXELS // (64 * x.shape[1] * x.shape[2]))))
    if x.size <= MAX_PIXELS or n_bands * 64 >= h:
        bands = [x]
    else:
        starts = np.linspace(0, h - 64, n_bands).astype(int)
        bands = [x[r : r + 64] for r in starts]
    parts = [_flat_hh(b, lo, hi) for b in bands]
    coeffs = np.concatenate([p[0] for p in parts])
    energy = np.concatenate([p[1] for p in parts])
    if coeffs.size >= 64:
        coeffs = coeffs[energy <= np.quantile(energy, FLAT_SHARE)]
    sigma = float(np.median(np.abs(coeffs))) / MAD_TO_SIGMA
    return sigma * 255.0 / (hi - lo)


def sigma_map_from(
    sigma: float | np.ndarray,
    shape: tuple[int, int],
    value_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """A model's ``sigma`` input for one image: ``(H, W)`` float32 in value units.

    Args:
        sigma: σ on the 0-255 scale, one number (uniform map, AWGN) or an ``(H, W)`` array (per pixel, e.g.
            signal-dependent camera noise).
        shape: the image's ``(H, W)``.
        value_range: the model's value range; σ is scaled by ``(high - low) / 255``.

    Raises:
        InvalidInputError: a negative or non-finite σ, or an array of another shape.
    """
    lo, hi = value_range
    scale = np.float32((hi - lo) / 255.0)
    arr = np.asarray(sigma, dtype=np.float32)
    if arr.ndim == 0:
        value = float(arr)
        if not np.isfinite(value) or value < 0:
            raise InvalidInputError(f"sigma must be a finite number >= 0 (0-255 scale), got {sigma}")
        return np.full(shape, value * scale, np.float32)
    if arr.shape != tuple(shape):
        raise InvalidInputError(f"sigma map has shape {arr.shape}; it must be (H, W) = {tuple(shape)}, as the image")
    if not np.isfinite(arr).all() or float(arr.min()) < 0:
        raise InvalidInputError("sigma map must be finite and >= 0 everywhere (0-255 scale)")
    return arr * scale




def box_blur(plane: np.ndarray, radius: int = 2) -> np.ndarray:
    """Mean over a ``(2r+1) x (2r+1)`` window of an ``(H, W)`` float array (edges replicated), with summed-area
    tables: O(H·W) whatever the radius."""
    k = 2 * radius + 1
    padded = np.pad(np.asarray(plane, np.float64), radius, mode="edge")
    sat = np.zeros((padded.shape[0] + 1, padded.shape[1] + 1))
    sat[1:, 1:] = padded.cumsum(0).cumsum(1)
    h, w = plane.shape
    total = sat[k : k + h, k : k + w] - sat[:h, k : k + w] - sat[k : k + h, :w] + sat[:h, :w]
    return (total / (k * k)).astype(np.float32)


def profile_sigma_map(
    plane: np.ndarray, profile: tuple[float, float], value_range: tuple[float, float] = (0.0, 1.0), radius: int = 2
) -> np.ndarray:
    """The σ map of signal-dependent (Poisson-Gaussian) noise for one noisy plane, in value units.

    Camera noise after the sensor is well modelled as ``variance = a·x + b`` of the clean signal ``x`` in [0, 1]
    (Foi et al., "Practical Poissonian-Gaussian noise modeling and fitting for single-image raw-data", IEEE TIP
    2008, Eq. 1-3: ``a`` the shot-noise gain, ``b`` the read-noise variance). The clean signal is not known, so it
    is estimated by a ``(2r+1)²`` box mean of the noisy plane (clipped to [0, 1]), which averages the noise down by
    ``2r+1`` while the profile varies slowly with ``x``.

    Args:
        plane: ``(H, W)`` float32 noisy plane in ``value_range``.
        profile: ``(a, b)`` on the [0, 1] scale, both >= 0 (darktable's noise profiles give them per camera and
            ISO; docs/noise-level.md says how to fit yours).
        value_range: the model's value range.
        radius: box radius in pixels.

    Returns:
        ``(H, W)`` float32 σ in value units.

    Raises:
        InvalidInputError: ``a`` or ``b`` negative or not finite, both zero, or ``a + b > 1`` (σ above the whole
            range at white: a profile on the 0-255 scale).
    """
    a, b = (float(v) for v in profile)
    if not (np.isfinite(a) and np.isfinite(b)) or a < 0 or b < 0 or a + b == 0:
        raise InvalidInputError(f"noise profile (a, b) = ({a:g}, {b:g}) needs a >= 0 and b >= 0, not both 0")
    if a + b > 1:  # σ above the whole range at white: values on the 0-255 scale, not [0, 1]
        raise InvalidInputError(
            f"noise profile (a, b) = ({a:g}, {b:g}) gives σ = {np.sqrt(a + b):.2f} of the full range at white; (a, b) "
            "are on the [0, 1] scale: divide a 0-255-scale a by 255 and b by 255²"
        )
    lo, hi = value_range
    signal = np.clip((box_blur(plane, radius) - lo) / (hi - lo), 0.0, 1.0)
    return (np.sqrt(a * signal + b) * (hi - lo)).astype(np.float32)


#: Signal bins of :func:`estimate_noise_profile` over [0, 1], and the fewest flat coefficients a bin needs.
PROFILE_BINS = 16
PROFILE_MIN_COUNT = 64
#: Share of each bin's coefficients, the flattest, whose HH coefficients give its variance.
PROFILE_FLAT_SHARE = 0.25


def estimate_noise_profile(image: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """Fit the Poisson-Gaussian profile ``variance = a·x + b`` (x the clean signal in [0, 1]) to one noisy image.

    Method: a simplified single-image fit after Foi et al. ("Practical Poissonian-Gaussian noise modeling and
    fitting for single-image raw-data", IEEE TIP 2008, Sec. III): the Daubechies-2 HH coefficients (noise) and LL
    coefficients (local signal, LL / 2 is the local mean) of each channel are grouped into
    :data:`PROFILE_BINS` signal bins; in each bin the flattest half (least LH + HL energy, as
    :func:`estimate_sigma`) gives a MAD variance, and a least-squares line through the bins' (mean, variance)
    points, weighted by their counts, gives ``(a, b)``; a negative coefficient is set to 0 and the other refitted.
    Coefficients that saw a clipped pixel are left out, as in :func:`estimate_sigma`. Texture that survives the
    flatness selection reads as noise, so on detailed images the profile errs high, as the σ estimator does.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` float32 in ``value_range`` (noise may exceed it); the channels share one
            profile (a sensor's colour channels differ little after white balance). At least 16x16 pixels.
        value_range: the image's ``(low, high)``.

    Returns:
        ``(a, b)`` on the [0, 1] scale, both >= 0, for :func:`profile_sigma_map` and ``Denoiser(noise_profile=)``.
        ``(0, b)`` (plain AWGN) when fewer than two bins have enough flat coefficients.

    Raises:
        InvalidInputError: an image smaller than 16x16 or of another shape.
    """
    x = _as_hwc(image, 16, "noise-profile estimation")
    lo, hi = value_range
    x = (x - lo) / (hi - lo)
    ends = ((np.abs(x) <= 1e-6) | (np.abs(x - 1.0) <= 1e-6)).astype(np.float32)
    keep = (_dd(ends, np.ones(4, np.float32)) == 0).ravel()
    hh = _dd(x, DB2_HIGH).ravel()[keep]
    mean = (_dd(x, DB2_LOW) / 2.0).ravel()[keep]
    energy = (np.abs(_dd(x, DB2_HIGH, DB2_LOW)) + np.abs(_dd(x, DB2_LOW, DB2_HIGH))).ravel()[keep]
    which = np.clip((mean * PROFILE_BINS).astype(np.int64), 0, PROFILE_BINS - 1)
    points: list[tuple[float, float, int]] = []
    for k in range(PROFILE_BINS):
        sel = which == k
        n = int(np.count_nonzero(sel))
        if n < 2 * PROFILE_MIN_COUNT:
            continue
        e, h, m = energy[sel], hh[sel], mean[sel]
        flat = e <= np.quantile(e, PROFILE_FLAT_SHARE)
        var = (float(np.median(np.abs(h[flat]))) / MAD_TO_SIGMA) ** 2
        points.append((float(np.mean(m[flat])), var, int(np.count_nonzero(flat))))
    if not points:
        return 0.0, (estimate_sigma(image, value_range) / 255.0) ** 2
    m_arr, v_arr, w_arr = (np.array(c, np.float64) for c in zip(*points, strict=True))
    if len(points) >= 2:
        a, b = np.polyfit(m_arr, v_arr, 1, w=np.sqrt(w_arr))
    else:
        a, b = 0.0, float(v_arr[0])
    if a < 0:
        a, b = 0.0, float(np.average(v_arr, weights=w_arr))
    elif b < 0:
        a, b = float(np.sum(w_arr * m_arr * v_arr) / max(np.sum(w_arr * m_arr * m_arr), 1e-12)), 0.0
    return float(a), float(b)


__all__ = [
    "MAD_TO_SIGMA",
    "box_blur",
    "estimate_noise_profile",
    "estimate_sigma",
    "profile_sigma_map",
    "sigma_map_from",
]
