"""edgedenoise.data: noise models (statistics vs their formulas), the 8 augmentations, folders, patch sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

from edgedenoise.data import AWGN, BlindAWGN, PatchSampler, PoissonGaussian, augment, load_folder, make_noise
from edgedenoise.data.noise import noise_label
from edgedenoise.errors import InvalidInputError


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- noise models


def test_awgn_std_seed_and_no_clipping() -> None:
    clean = torch.zeros(4, 1, 128, 128)
    clean[..., 64:] = 1.0
    noisy = AWGN(30.0)(clean, _gen(1))
    n = (noisy - clean) * 255
    # 65,536 samples: relative standard error of the sample std ~0.3 %
    assert float(n.std()) == pytest.approx(30.0, rel=0.02)
    assert abs(float(n.mean())) < 0.5
    assert float(noisy.min()) < -0.1 and float(noisy.max()) > 1.1  # unclipped by default
    assert torch.equal(noisy, AWGN(30.0)(clean, _gen(1)))  # same seed, same noise
    assert not torch.equal(noisy, AWGN(30.0)(clean, _gen(2)))
    clipped = AWGN(30.0, clip=True)(clean, _gen(1))
    assert float(clipped.min()) == 0.0 and float(clipped.max()) == 1.0
    assert torch.equal(clipped, noisy.clamp(0, 1))


def test_blind_awgn_sigma_is_uniform_over_the_range() -> None:
    lo, hi = 10.0, 40.0
    clean = torch.full((300, 1, 48, 48), 0.5)
    noisy = BlindAWGN(lo, hi)(clean, _gen(0))
    est = ((noisy - clean) * 255).flatten(1).std(dim=1).numpy()  # per-image σ, ~1.5 % standard error
    assert est.min() > lo * 0.93 and est.max() < hi * 1.07
    # draws cover the range (not one fixed σ) and follow U(lo, hi): Kolmogorov-Smirnov against the uniform law
    assert est.min() < lo + 3 and est.max() > hi - 3
    assert stats.kstest(est, stats.uniform(loc=lo, scale=hi - lo).cdf).pvalue > 1e-3
    # a fixed σ is rejected by the same test (the test can fail)
    fixed = ((AWGN(25.0)(clean, _gen(0)) - clean) * 255).flatten(1).std(dim=1).numpy()
    assert stats.kstest(fixed, stats.uniform(loc=lo, scale=hi - lo).cdf).pvalue < 1e-6


def test_blind_default_range_is_0_to_55() -> None:
    m = make_noise("awgn_blind")
    assert isinstance(m, BlindAWGN) and (m.sigma_min, m.sigma_max) == (0.0, 55.0) and not m.clip
    assert noise_label(m) == "awgn:0-55"
    clean = torch.full((400, 1, 32, 32), 0.5)
    est = ((m(clean, _gen(3)) - clean) * 255).flatten(1).std(dim=1).numpy()
    assert est.min() < 5 and est.max() > 50 and est.max() < 55 * 1.08


@pytest.mark.parametrize("level", [0.0, 0.1, 0.5, 0.9])
def test_poisson_gaussian_variance_matches_formula(level: float) -> None:
    a, b = 0.02, 0.001
    clean = torch.full((2, 1, 256, 256), level)
    noisy = PoissonGaussian(a, b)(clean, _gen(5))
    var = float((noisy - clean).var())
    # Foi et al. 2008, Eq. 3: var = a·x + b. 131,072 samples: relative standard error of the variance ~0.4 %
    assert var == pytest.approx(a * level + b, rel=0.03)


def test_make_noise_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown noise kind 'gauss'"):
        make_noise("gauss")
    with pytest.raises(ValueError, match="needs one sigma"):
        make_noise("awgn", [0, 55])
    with pytest.raises(ValueError, match="0 <= min <= max"):
        make_noise("awgn_blind", [40, 10])
    assert noise_label(make_noise("awgn", 25)) == "awgn:25"


# ---------------------------------------------------------------- augmentation


def test_the_8_augmentations_are_the_dihedral_group() -> None:
    x = np.arange(2 * 5 * 5, dtype=np.float32).reshape(2, 5, 5)  # all values distinct: no accidental symmetry
    outs = [augment(x, m) for m in range(8)]
    assert all(o.shape == x.shape for o in outs)
    # 8 distinct transforms
    keys = {o.tobytes() for o in outs}
    assert len(keys) == 8
    # each is a pure permutation of pixels within each channel (channels never mix)
    for o in outs:
        for c in range(2):
            assert sorted(o[c].ravel()) == sorted(x[c].ravel())
    # closed under composition and every element has an inverse: a group of order 8 acting on the square,
    # i.e. all of its symmetries, the dihedral group D4
    for m1 in range(8):
        for m2 in range(8):
            assert augment(augment(x, m1), m2).tobytes() in keys
        inverses = [m2 for m2 in range(8) if np.array_equal(augment(augment(x, m1), m2), x)]
        assert len(inverses) == 1
    # mode 0 is the identity; mode 1 is a quarter turn (hand-checked corner); mode 4 a left-right flip
    assert np.array_equal(outs[0], x)
    assert outs[1][0, 0, 0] == x[0, 0, 4]
    assert np.array_equal(outs[4], x[:, :, ::-1])


def test_augmentations_of_a_rectangle_swap_sides_on_odd_turns() -> None:
    x = np.zeros((1, 3, 7), np.float32)
    for m in range(8):
        assert augment(x, m).shape == ((1, 7, 3) if m & 1 else (1, 3, 7))


# ---------------------------------------------------------------- folders and patches


def _write_gray(folder: Path, n: int, size: tuple[int, int] = (40, 36), seed: int = 0) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        im = rng.integers(0, 256, size, dtype=np.uint8)
        Image.fromarray(im).save(folder / f"img{i:02d}.png")
        images.append(im)
    return images


def test_load_folder_values_and_channels(tmp_path: Path) -> None:
    gray = _write_gray(tmp_path, 2)
    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "zz_rgb.png")
    ims = load_folder(tmp_path, in_channels=1)
    assert [im.shape for im in ims] == [(1, 40, 36), (1, 40, 36), (1, 20, 30)]
    assert all(im.dtype == np.float32 for im in ims)
    np.testing.assert_allclose(ims[0][0], gray[0] / 255.0, atol=1e-7)
    luma = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0  # BT.601, hand-written
    np.testing.assert_allclose(ims[2][0], luma, atol=1e-6)
    ims3 = load_folder(tmp_path, in_channels=3)
    assert ims3[0].shape == (3, 40, 36) and np.array_equal(ims3[0][1], ims3[0][0])
    np.testing.assert_allclose(ims3[2], rgb.transpose(2, 0, 1) / 255.0, atol=1e-7)


def test_bad_files_in_a_folder_are_all_named(tmp_path: Path) -> None:
    _write_gray(tmp_path, 2)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    with pytest.raises(InvalidInputError) as err:
        load_folder(tmp_path)
    msg = str(err.value)
    assert "2 unreadable image(s)" in msg
    assert "broken.png" in msg and "empty.jpg" in msg
    assert "img00.png" not in msg and "notes.txt" not in msg


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no image files"):
        load_folder(tmp_path)


def test_patch_sampler_crops_are_real_crops_and_resume(tmp_path: Path) -> None:
    raw = _write_gray(tmp_path, 3, size=(30, 25))
    images = load_folder(tmp_path)
    s = PatchSampler(images, patch=12, seed=4)
    batch = s.batch(6)
    assert batch.shape == (6, 1, 12, 12) and batch.dtype == torch.float32
    # every patch is a transformed crop of one of the images (found by brute force over positions and modes)
    for p in batch.numpy():
        found = False
        for im in raw:
            x = im.astype(np.float32)[None] / 255.0
            for y0 in range(x.shape[1] - 11):
                for x0 in range(x.shape[2] - 11):
                    crop = x[:, y0 : y0 + 12, x0 : x0 + 12]
                    if any(np.array_equal(augment(crop, m), p) for m in range(8)):
                        found = True
                        break
                if found:
                    break
            if found:
                break
        assert found
    # state / set_state resumes the same stream; the same seed gives the same batches
    state = s.state()
    nxt = s.batch(4)
    s2 = PatchSampler(images, patch=12, seed=999)
    s2.set_state(state)
    assert torch.equal(s2.batch(4), nxt)
    assert torch.equal(PatchSampler(images, 12, seed=4).batch(6), batch)
    assert not torch.equal(PatchSampler(images, 12, seed=5).batch(6), batch)


def test_patch_sampler_rejects_small_images(tmp_path: Path) -> None:
    _write_gray(tmp_path, 1, size=(20, 20))
    with pytest.raises(InvalidInputError, match="smaller than the 24px patch"):
        PatchSampler(load_folder(tmp_path), patch=24)
