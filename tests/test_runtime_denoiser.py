"""The Denoiser facade on tiny exported models, against independent oracles (PyTorch, a raw ONNX Runtime session).

Every model here is a real registry model with 8 features exported by the project's exporter.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from runtime_helpers import graph_onnx, psnr_np, static_onnx, tiny_onnx, torch_forward

from edgedenoise.runtime import ColorMode, Denoiser
from edgedenoise.runtime.errors import ArtifactError, InferenceError, InvalidInputError, UnknownModelError

SAMPLE = Path(__file__).resolve().parent.parent / "edgedenoise" / "samples" / "cbsd432_103006_gray.png"
ATOL = 2e-5  # ONNX Runtime vs PyTorch float32


def _rand(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.fixture(scope="module")
def gray() -> Denoiser:
    with Denoiser(tiny_onnx("rednet10"), threads=1) as d:
        yield d


@pytest.fixture(scope="module")
def gray_s2() -> Denoiser:
    with Denoiser(tiny_onnx("rednet10_s2"), threads=1) as d:
        yield d


def test_contract_and_backend_come_from_the_artifact(gray: Denoiser) -> None:
    assert gray.cfg.arch == "rednet10" and gray.cfg.receptive_field == 21 and gray.cfg.in_channels == 1
    info = gray.info
    assert info.backend == "ort-cpu" and info.providers[0] == "CPUExecutionProvider"
    # the profiled warm-up saw every node run on the CPU provider
    assert set(info.node_providers) == {"CPUExecutionProvider"} and info.node_providers["CPUExecutionProvider"] > 5
    assert info.precision == "fp32" and "ort-cpu" in info.summary()


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (37, 53), (257, 89)])
def test_odd_sizes_match_torch(gray: Denoiser, shape: tuple[int, int]) -> None:
    x = _rand(shape, seed=shape[0])
    y = gray(x)
    assert y.shape == shape and y.dtype == np.float32
    ref = np.clip(torch_forward("rednet10", x[None, None])[0, 0], 0, 1)
    np.testing.assert_allclose(y, ref, atol=ATOL)


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (37, 53), (257, 89)])
def test_size_multiple_pads_reflect_and_crops(gray_s2: Denoiser, shape: tuple[int, int]) -> None:
    # rednet10_s2 needs even sizes: the oracle pads bottom/right by reflection, runs torch, crops back
    x = _rand(shape, seed=7)
    y = gray_s2(x)
    assert y.shape == shape
    h2, w2 = -(-shape[0] // 2) * 2, -(-shape[1] // 2) * 2
    padded = np.pad(x, ((0, h2 - shape[0]), (0, w2 - shape[1])), mode="reflect")
    ref = np.clip(torch_forward("rednet10_s2", padded[None, None])[0, 0, : shape[0], : shape[1]], 0, 1)
    np.testing.assert_allclose(y, ref, atol=ATOL)


def test_dtypes_round_trip_and_agree(gray: Denoiser) -> None:
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (33, 41), dtype=np.uint8)
    u16 = rng.integers(0, 65536, (33, 41), dtype=np.uint16)
    y8, y16 = gray(u8), gray(u16)
    assert (y8.dtype, y8.shape, y16.dtype, y16.shape) == (np.uint8, u8.shape, np.uint16, u16.shape)
    f8 = gray(u8.astype(np.float32) / 255)
    np.testing.assert_array_equal(y8, np.rint(f8 * 255).astype(np.uint8))
    f16 = gray(u16.astype(np.float32) / 65535)
    assert np.abs(y16.astype(np.int64) - np.rint(f16 * 65535).astype(np.int64)).max() <= 1
    with pytest.raises(InvalidInputError, match="float64"):
        gray(u8.astype(np.float64))


def test_layouts_hw1_and_batches(gray: Denoiser) -> None:
    batch = _rand((3, 20, 24, 1), seed=2)
    out = gray(batch)
    assert out.shape == batch.shape
    for i in range(3):
        np.testing.assert_allclose(out[i, ..., 0], gray(batch[i, ..., 0]), atol=1e-6)
    assert gray(batch[0]).shape == (20, 24, 1)
    with pytest.raises(InvalidInputError, match="shape"):
        gray(_rand((20, 24, 4)))
    with pytest.raises(InvalidInputError, match="empty"):
        gray(np.zeros((0, 5), np.float32))


def test_gray_model_on_rgb_per_channel_and_luma(gray: Denoiser) -> None:
    rgb = _rand((21, 18, 3), seed=3)
    per = gray(rgb)
    for c in range(3):
        np.testing.assert_allclose(per[..., c], gray(rgb[..., c]), atol=1e-6)
    with Denoiser(tiny_onnx("rednet10"), color=ColorMode.LUMA, threads=1) as luma_dn:
        luma = luma_dn(rgb)
    y = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    y_den = torch_forward("rednet10", y[None, None].astype(np.float32))[0, 0]
    np.testing.assert_allclose(luma, np.clip(rgb + (y_den - y)[..., None], 0, 1), atol=ATOL)


def test_rgb_model_on_rgb_and_gray() -> None:
    with Denoiser(tiny_onnx("rednet10", in_channels=3), threads=1) as d:
        rgb = _rand((19, 23, 3), seed=4)
        ref = torch_forward("rednet10", rgb.transpose(2, 0, 1)[None], in_channels=3)[0].transpose(1, 2, 0)
        np.testing.assert_allclose(d(rgb), np.clip(ref, 0, 1), atol=ATOL)
        g = _rand((19, 23), seed=5)
        ref_g = torch_forward("rednet10", np.repeat(g[None, None], 3, axis=1), in_channels=3)[0].mean(axis=0)
        np.testing.assert_allclose(d(g), np.clip(ref_g, 0, 1), atol=ATOL)


def test_nan_inf_policy(gray: Denoiser) -> None:
    x = _rand((16, 16), seed=6)
    x[3, 4], x[5, 6], x[7, 8] = np.nan, np.inf, -np.inf
    with pytest.raises(InvalidInputError, match="3 NaN/Inf"):
        gray(x)
    with Denoiser(tiny_onnx("rednet10"), nonfinite="replace", threads=1) as d:
        expect = d(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0))
        np.testing.assert_array_equal(d(x), expect)
    with pytest.raises(InvalidInputError, match="NaN/Inf policy"):
        Denoiser(tiny_onnx("rednet10"), nonfinite="ignore")


def test_model_returning_inf_raises() -> None:
    path = graph_onnx("div_zero", '{"arch": "div_zero"}')
    with Denoiser(path) as d, pytest.raises(InferenceError, match="NaN/Inf"):
        d(np.full((4, 4), 0.5, np.float32))


def test_noise_level_input() -> None:
    path = graph_onnx("sub_noise", '{"arch": "sub_noise"}')
    with Denoiser(path) as d:
        assert d.takes_noise_level
        x = np.full((2, 6, 5, 1), 0.5, np.float32)
        np.testing.assert_allclose(d(x, sigma=25.5), np.full_like(x, 0.4), atol=1e-6)
        # a flat image has no noise: "auto" (the default) estimates 0 and the graph subtracts nothing
        assert d.sigma == "auto" and d.resolve_sigma(x[0]) == pytest.approx(0.0, abs=1e-9)
        np.testing.assert_allclose(d(x), x, atol=1e-7)
        # a per-pixel map reaches the model pixel for pixel, through padding and tiling
        ramp = np.linspace(0, 51, 6 * 5, dtype=np.float32).reshape(6, 5)
        np.testing.assert_allclose(d(x[0, :, :, 0], sigma=ramp), 0.5 - ramp / 255, atol=1e-6)
        with pytest.raises(InvalidInputError, match="shape"):
            d(x[0, :, :, 0], sigma=ramp[:5])
        with pytest.raises(InvalidInputError, match=">= 0"):
            d(x, sigma=-1.0)
        with pytest.raises(InvalidInputError, match="'loud'"):
            d(x, sigma="loud")
        d.warmup(8, 8)
    with Denoiser(path, sigma=51.0, tile=4, blend=0) as d:  # tiles of 4x4 over a 9x11 map: every tile its part
        big = np.linspace(0, 25.5, 9 * 11, dtype=np.float32).reshape(9, 11)
        np.testing.assert_allclose(d(np.full((9, 11), 0.5, np.float32), sigma=big), 0.5 - big / 255, atol=1e-6)
        np.testing.assert_allclose(d(np.full((9, 11), 0.5, np.float32)), np.full((9, 11), 0.3), atol=1e-6)
    with Denoiser(tiny_onnx("rednet10")) as d, pytest.raises(InvalidInputError, match="no noise-level input"):
        d(np.zeros((4, 4), np.float32), sigma=25)
    with pytest.raises(InvalidInputError, match="blind model"):
        Denoiser(tiny_onnx("rednet10"), sigma="auto")


def test_tiled_equals_untiled_on_a_real_image() -> None:
    from PIL import Image

    clean = np.asarray(Image.open(SAMPLE), dtype=np.float32) / 255.0
    noisy = clean + np.random.default_rng(0).standard_normal(clean.shape, dtype=np.float32) * np.float32(25 / 255)
    with Denoiser(tiny_onnx("rednet10"), tile=0, threads=1) as whole, Denoiser(tiny_onnx("rednet10"), tile=64) as tiled:
        assert tiled.tile == (64, 64)
        a, b = whole(noisy), tiled(noisy)
    diff_db = abs(psnr_np(a, clean, 1.0) - psnr_np(b, clean, 1.0))
    assert diff_db < 0.05, diff_db
    # overlap >= receptive field makes it exact to float rounding, not merely close
    assert np.abs(a - b).max() < 1e-5


def test_static_shape_model_is_tiled_and_padded_within_its_limits() -> None:
    # A model that only takes 64x64 inputs (what an engine profile with min = max imposes).
    fixed = static_onnx(tiny_onnx("rednet10"), 64, 64)
    x = _rand((150, 97), seed=8)
    small = _rand((10, 7), seed=9)
    with Denoiser(fixed, threads=1) as d, Denoiser(tiny_onnx("rednet10"), tile=0, threads=1) as free:
        assert d.tile == (64, 64)
        np.testing.assert_allclose(d(x), free(x), atol=1e-5)
        padded = np.pad(small, ((0, 54), (0, 57)), mode="reflect")
        np.testing.assert_allclose(d(small), free(padded)[:10, :7], atol=1e-6)
        with pytest.raises(InvalidInputError, match="exceeds"):
            Denoiser(fixed, tile=128)
        with pytest.raises(InvalidInputError, match="impossible"):
            Denoiser(fixed, tile=0)


def test_tile_smaller_than_receptive_field_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="at least 37"):
        Denoiser(tiny_onnx("rednet10"), tile=32)


def test_reuse_across_sizes_and_threads(gray: Denoiser) -> None:
    shapes = [(31, 17), (64, 64), (5, 90), (120, 33)]
    inputs = [_rand(s, seed=i) for i, s in enumerate(shapes)]
    inputs.append(inputs[0].copy())  # the first size again, after the others
    serial = [gray(x) for x in inputs]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        for _ in range(3):
            results[i] = gray(inputs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, ref in enumerate(serial):
        np.testing.assert_array_equal(results[i], ref)
    np.testing.assert_array_equal(serial[0], serial[-1])


def test_matches_a_raw_onnxruntime_session(gray: Denoiser) -> None:
    x = _rand((40, 44), seed=11)
    sess = ort.InferenceSession(str(tiny_onnx("rednet10")), providers=["CPUExecutionProvider"])
    (ref,) = sess.run(["denoised"], {"noisy": x[None, None]})
    np.testing.assert_allclose(gray(x), np.clip(ref[0, 0], 0, 1), atol=1e-6)


def test_warmup_and_close(gray: Denoiser) -> None:
    d = Denoiser(tiny_onnx("rednet10"), threads=1)
    d.warmup(32, 48)
    x = _rand((12, 12))
    np.testing.assert_array_equal(d(x), gray(x))
    d.close()
    d.close()
    with pytest.raises(InvalidInputError, match="closed"):
        d(x)


def test_onnx_without_contract_says_how_to_fix() -> None:
    with pytest.raises(ArtifactError, match="edgedenoise export"):
        Denoiser(graph_onnx("identity", None))


def test_corrupt_and_missing_artifacts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ArtifactError, match="bad.onnx"):
        Denoiser(bad)
    with pytest.raises(ArtifactError, match="does not exist"):
        Denoiser(tmp_path / "missing.onnx")
    with pytest.raises(UnknownModelError, match="edgedenoise export --model nosuchmodel"):
        Denoiser("nosuchmodel")
