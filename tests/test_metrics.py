"""runtime.metrics against scikit-image (PSNR, SSIM) and against the documented AWGN formula."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_set
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from edgedenoise.runtime.metrics import awgn, psnr, quantize8, ssim


def _sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """scikit-image's SSIM with the settings of Wang et al. 2004 (Gaussian 11x11 window, σ 1.5)."""
    return float(
        structural_similarity(
            a,
            b,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=-1 if a.ndim == 3 else None,
        )
    )


def _pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Generated 8-bit pairs (clean, degraded): smooth + textured content, gray and colour, odd sizes."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:45, 0:61]
    smooth = 128 + 90 * np.sin(xx / 7.0) * np.cos(yy / 5.0)
    texture = smooth + rng.normal(0, 20, smooth.shape)
    out = []
    for name, clean in (("smooth", smooth), ("texture", texture)):
        c = np.clip(np.rint(clean), 0, 255)
        d = np.clip(np.rint(c + rng.normal(0, 12, c.shape)), 0, 255)
        out.append((name, c, d))
    rgb = np.clip(np.rint(np.stack([smooth, texture, 255 - smooth], axis=-1)), 0, 255)
    out.append(("rgb", rgb, np.clip(np.rint(rgb + rng.normal(0, 25, rgb.shape)), 0, 255)))
    return out


@pytest.mark.parametrize("case", _pairs(), ids=lambda c: c[0])
def test_psnr_ssim_match_skimage_on_generated_images(case: tuple[str, np.ndarray, np.ndarray]) -> None:
    _, clean, degraded = case
    assert psnr(degraded, clean) == pytest.approx(peak_signal_noise_ratio(clean, degraded, data_range=255), abs=1e-10)
    assert ssim(degraded, clean) == pytest.approx(_sk_ssim(clean, degraded), abs=1e-9)
    # and the values are not trivial: a degraded image scores below a perfect one
    assert ssim(degraded, clean) < 0.99
    assert ssim(clean, clean) == pytest.approx(1.0, abs=1e-12)


def test_psnr_ssim_match_skimage_on_set12() -> None:
    folder = shared_set("Set12")
    files = sorted(folder.glob("*.png"))[:3]
    assert files
    for i, f in enumerate(files):
        clean = np.asarray(Image.open(f), dtype=np.float64)
        noisy = awgn(clean / 255.0, 25, seed=i)
        est = quantize8(noisy)  # the noisy image itself, clipped and quantised as the protocol does
        assert psnr(est, clean) == pytest.approx(peak_signal_noise_ratio(clean, est, data_range=255), abs=1e-10)
        assert ssim(est, clean) == pytest.approx(_sk_ssim(clean, est), abs=1e-9)
        # σ = 25 AWGN (clipped) on a natural image: PSNR is near 20.2 dB = 20 log10(255 / 25), a bit above
        assert 20.0 < psnr(est, clean) < 21.5


def test_psnr_hand_computed() -> None:
    a = np.zeros((4, 4))
    b = np.full((4, 4), 5.0)  # MSE 25 -> 10 log10(255² / 25) = 20 log10(51)
    assert psnr(a, b) == pytest.approx(20 * np.log10(51.0), abs=1e-12)
    assert psnr(a, a) == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, np.zeros((4, 5)))


def test_ssim_rejects_small_and_mismatched() -> None:
    with pytest.raises(ValueError, match="11x11"):
        ssim(np.zeros((10, 30)), np.zeros((10, 30)))
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(np.zeros((20, 20)), np.zeros((20, 21)))


def test_quantize8_clips_and_rounds() -> None:
    x = np.array([-0.2, 0.0, 0.5 / 255, 1.4 / 255, 1.6 / 255, 0.5, 1.0, 1.3])
    assert quantize8(x).tolist() == [0.0, 0.0, 0.0, 1.0, 2.0, 128.0, 255.0, 255.0]


def test_awgn_statistics_seed_and_no_clipping() -> None:
    clean = np.zeros((512, 512), np.float32)
    clean[:, 256:] = 1.0  # half black, half white: unclipped noise leaves [0, 1] on both sides
    noisy = awgn(clean, 25, seed=3)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    n = (noisy - clean) * 255.0
    # 262,144 samples: the sample std has a relative standard error of ~0.14 %
    assert float(n.std()) == pytest.approx(25.0, rel=0.01)
    assert abs(float(n.mean())) < 0.2
    assert noisy.min() < -0.1 and noisy.max() > 1.1  # not clipped
    np.testing.assert_array_equal(noisy, awgn(clean, 25, seed=3))  # seeded: reproducible
    assert not np.array_equal(noisy, awgn(clean, 25, seed=4))
    # the documented formula, so other tools can reproduce the noise exactly
    ref = clean + np.random.default_rng(3).standard_normal(clean.shape, dtype=np.float32) * np.float32(25 / 255)
    np.testing.assert_array_equal(noisy, ref)
