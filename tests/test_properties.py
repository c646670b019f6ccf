"""Property-based tests (hypothesis) of the runtime: the Denoiser on random sizes, dtypes, layouts and tiles;
the file readers on damaged files.

Properties:

* **Shape and dtype**: for any ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(N, H, W, C)`` image with
  H, W in 1..70, any of uint8 / uint16 / float32, on a gray, a stride-2 and an RGB model and any valid tile,
  the output has the input's shape and dtype, is finite and in range, and the input is not modified.
* **Tiling**: tiled and untiled outputs differ by at most ``TILE_ATOL = 1e-5`` (float32, value range [0, 1])
  and by at most one grey level for uint8/uint16: with overlap >= the receptive field the tiles compute the
  same sums in another order, so only float rounding differs (measured over 180 random images of 1..70
  pixels a side on the three models: at most 4.2e-7, and no uint8 level changed).
* **Damaged files**: any truncation or byte edits of a valid PNG/JPEG/TIFF/BMP/GIF/ONNX file either decode, or
  fail with the project's error type (never another exception: Pillow raised ``TypeError`` on a damaged
  TIFF header before ``read_image`` caught everything).

Bounded for CI: 25 examples per property, a fixed seed (``derandomize``) and no example database. For a
longer random search: ``HYPOTHESIS_PROFILE=explore pytest tests/test_properties.py`` (500 examples, random).
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from runtime_helpers import tiny_onnx

from edgedenoise.runtime import Denoiser
from edgedenoise.runtime.errors import ArtifactError, InvalidInputError
from edgedenoise.runtime.imageio import read_image
from edgedenoise.runtime.onnx_scan import external_refs

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("explore", parent=settings.get_profile("ci"), max_examples=500, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TILE_ATOL = 1e-5
MODELS = {"gray": ("rednet10", 1), "gray_s2": ("rednet10_s2", 1), "rgb": ("rednet10", 3)}
# Tile sides per model: None is the default (512: untiled at these sizes), 0 never tiles, the others tile
# (the smallest valid tile is 37 for rednet10 and 56 for rednet10_s2, whose receptive field is 39).
TILES = {"gray": (40, 47, 64), "gray_s2": (56, 60, 64), "rgb": (40, 52, 64)}
DTYPES = (np.uint8, np.uint16, np.float32)


@functools.cache
def denoiser(model: str, tile: int | None) -> Denoiser:
    name, channels = MODELS[model]
    return Denoiser(tiny_onnx(name, channels), tile=tile, threads=1)


def _image(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if dtype is np.float32:
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


@st.composite
def layouts(draw: st.DrawFn) -> tuple[int, ...]:
    h, w = draw(st.integers(1, 70)), draw(st.integers(1, 70))
    kind = draw(st.sampled_from(["hw", "hw1", "hw3", "nhwc"]))
    if kind == "hw":
        return (h, w)
    if kind == "nhwc":
        return (draw(st.integers(1, 3)), h, w, draw(st.sampled_from([1, 3])))
    return (h, w, 1 if kind == "hw1" else 3)


@given(
    model_tile=st.sampled_from(sorted(MODELS)).flatmap(
        lambda m: st.tuples(st.just(m), st.sampled_from((None, 0, *TILES[m])))
    ),
    shape=layouts(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**32 - 1),
)
def test_output_shape_and_dtype_equal_the_input(
    model_tile: tuple[str, int | None], shape: tuple[int, ...], dtype: type, seed: int
) -> None:
    model, tile = model_tile
    x = _image(np.random.default_rng(seed), shape, dtype)
    before = x.copy()
    y = denoiser(model, tile)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_array_equal(x, before)
    assert not np.shares_memory(x, y)
    if dtype is np.float32:
        assert np.isfinite(y).all() and y.min() >= 0.0 and y.max() <= 1.0


@given(
    model_tile=st.sampled_from(sorted(MODELS)).flatmap(lambda m: st.tuples(st.just(m), st.sampled_from(TILES[m]))),
    shape=layouts(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**32 - 1),
)
def test_tiling_changes_results_by_less_than_the_stated_tolerance(
    model_tile: tuple[str, int], shape: tuple[int, ...], dtype: type, seed: int
) -> None:
    model, tile = model_tile
    x = _image(np.random.default_rng(seed), shape, dtype)
    whole, tiled = denoiser(model, 0)(x), denoiser(model, tile)(x)
    diff = np.abs(whole.astype(np.float64) - tiled.astype(np.float64)).max()
    assert diff <= (TILE_ATOL if dtype is np.float32 else 1), (diff, shape, tile)


def test_tiles_really_split_the_larger_images() -> None:
    """The tiling property is not vacuous: a 70x70 image under these tiles runs as several tiles."""
    from edgedenoise.runtime.tiling import plan_tiles

    for model, tiles in TILES.items():
        for tile in tiles:
            d = denoiser(model, tile)
            plan = plan_tiles(70, 70, *d.tile, d.cfg.receptive_field, d.cfg.size_multiple, d.blend)  # type: ignore[misc]
            assert plan.count >= 4, (model, tile, plan)


# ---------------------------------------------------------------------------------------------- damaged files
def _seed_files() -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (20, 18, 3), dtype=np.uint8)
    out = {}
    for suffix, arr, kw in [
        (".png", rgb, {}),
        (".jpg", rgb, {"quality": 90}),
        (".tif", rgb, {"compression": "tiff_lzw"}),
        (".tiff", (rgb[..., 0].astype(np.uint16) * 257), {}),
        (".tif", rgb[..., 0].astype(np.float32) / 255, {}),
        (".bmp", rgb, {}),
        (".gif", rgb[..., 0], {}),
    ]:
        buf = io.BytesIO()
        fmt = {".png": "PNG", ".jpg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".gif": "GIF"}[suffix]
        Image.fromarray(arr).save(buf, format=fmt, **kw)
        out[f"{len(out)}{suffix}"] = buf.getvalue()
    return out


SEEDS = _seed_files()


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(0, 8))):
        buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        buf = buf[: draw(st.integers(0, len(buf)))]
    return bytes(buf)


@settings(max_examples=60)
@given(name=st.sampled_from(sorted(SEEDS)), data=st.data())
def test_damaged_image_files_decode_or_fail_with_the_project_error(
    name: str, data: st.DataObject, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(data.draw(damaged(SEEDS[name])))
    try:
        pixels, info = read_image(path)
    except InvalidInputError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        return
    assert pixels.ndim in (2, 3) and pixels.dtype in (np.uint8, np.uint16, np.float32) and pixels.size > 0


@pytest.fixture(scope="module")
def onnx_bytes() -> bytes:
    return tiny_onnx("rednet10").read_bytes()


@given(data=st.data())
def test_damaged_onnx_files_scan_or_fail_with_the_project_error(
    data: st.DataObject, onnx_bytes: bytes, tmp_path: Path
) -> None:
    blob = data.draw(st.one_of(damaged(onnx_bytes), st.binary(max_size=2048)))
    path = tmp_path / "m.onnx"
    path.write_bytes(blob)
    try:
        refs = external_refs(path)
    except ArtifactError as exc:
        assert "m.onnx" in str(exc) and "\n" not in str(exc)
        return
    assert isinstance(refs, list)
