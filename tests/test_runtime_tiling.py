"""Tile planning and blend weights (pure numpy), checked against hand-worked layouts and a numpy local operator."""

from __future__ import annotations

import numpy as np
import pytest

from edgedenoise.runtime.errors import InvalidInputError
from edgedenoise.runtime.tiling import axis_weights, blend_weights, halo_for, min_tile, plan_axis, plan_tiles


def test_halo_is_half_the_receptive_field_rounded_up() -> None:
    # r = (rf - 1) / 2 for odd rf; even rf rounds up
    assert [halo_for(rf) for rf in (1, 3, 21, 22, 61)] == [0, 1, 10, 11, 30]


def test_plan_axis_hand_worked() -> None:
    # length 100, tile 40, overlap 10, multiple 1: step 30 -> starts 0, 30, then the last tile flush with the end
    assert plan_axis(100, 40, 10, 1) == ((0, 40), (30, 70), (60, 100))
    # a tile as large as the image: one tile
    assert plan_axis(37, 64, 10, 1) == ((0, 37),)
    # multiple 4: step (40 - 10) // 4 * 4 = 28
    assert plan_axis(96, 40, 10, 4) == ((0, 40), (28, 68), (56, 96))


@pytest.mark.parametrize("length,tile,overlap,m", [(1000, 128, 37, 1), (514, 136, 71, 2), (4000, 1024, 76, 1)])
def test_plan_axis_covers_with_enough_overlap(length: int, tile: int, overlap: int, m: int) -> None:
    spans = plan_axis(length, tile, overlap, m)
    assert spans[0][0] == 0 and spans[-1][1] == length
    sizes = {b - a for a, b in spans}
    assert len(sizes) == 1 and sizes.pop() <= tile  # equal tiles, within the limit
    for (a0, a1), (b0, _) in zip(spans, spans[1:], strict=False):
        assert a1 - b0 >= overlap  # neighbours overlap by at least `overlap`
        assert b0 % m == 0 and (a1 - a0) % m == 0


def test_plan_axis_balances_tiles() -> None:
    # 1080 rows under a 1024 limit: two 578-row tiles (overlap 76), not two 1024-row tiles overlapping by 968
    assert plan_axis(1080, 1024, 76, 1) == ((0, 578), (502, 1080))
    # a minimum tile (an engine profile's) is respected
    assert plan_axis(150, 64, 36, 1, min_tile=64)[0] == (0, 64)


def test_tile_too_small_is_a_one_line_error() -> None:
    with pytest.raises(InvalidInputError, match="at least 38"):
        plan_axis(100, 20, 37, 1)
    assert min_tile(21, 1, blend=16) == 2 * 10 + 16 + 1


def test_axis_weights_zero_in_halo_ramp_then_one() -> None:
    # interior tile [10, 30) of a 50-pixel axis, halo 3, blend 4: 0,0,0, 1/5..4/5, 1..., mirrored at the end
    w = axis_weights(10, 30, 50, halo=3, blend=4)
    expect_left = np.array([0, 0, 0, 0.2, 0.4, 0.6, 0.8, 1.0], np.float32)
    np.testing.assert_allclose(w[:8], expect_left, atol=1e-6)
    np.testing.assert_allclose(w[::-1][:8], expect_left, atol=1e-6)
    # image borders keep weight 1
    assert np.all(axis_weights(0, 20, 50, 3, 4)[:10] == 1.0)
    assert np.all(axis_weights(30, 50, 50, 3, 4)[-10:] == 1.0)


def test_weights_sum_positive_everywhere_and_exact_away_from_halos() -> None:
    h, w = 301, 257
    plan = plan_tiles(h, w, 96, 80, receptive_field=21, size_multiple=1, blend=8)
    total = np.zeros((h, w), np.float64)
    for row in plan.rows:
        for col in plan.cols:
            total[row[0] : row[1], col[0] : col[1]] += blend_weights(plan, row, col, h, w)
    assert plan.count > 4 and total.min() > 0.0


def _box_filter(x: np.ndarray, k: int) -> np.ndarray:
    """A k x k mean filter with zero padding: a 'network' whose receptive field is exactly k."""
    r = k // 2
    p = np.pad(x, r)
    out = np.zeros_like(x)
    for dy in range(k):
        for dx in range(k):
            out += p[dy : dy + x.shape[0], dx : dx + x.shape[1]]
    return out / (k * k)


def test_tiling_a_local_operator_is_exact() -> None:
    # Stitching tiles of a zero-padded k x k filter with the plan's weights reproduces the untiled filter
    # exactly: every pixel with non-zero weight saw its whole receptive field inside the tile.
    rng = np.random.default_rng(0)
    x = rng.random((150, 170))
    k = 9
    plan = plan_tiles(150, 170, 48, 56, receptive_field=k, size_multiple=1, blend=4)
    acc = np.zeros_like(x)
    norm = np.zeros_like(x)
    for r0, r1 in plan.rows:
        for c0, c1 in plan.cols:
            wgt = blend_weights(plan, (r0, r1), (c0, c1), 150, 170)
            acc[r0:r1, c0:c1] += wgt * _box_filter(x[r0:r1, c0:c1], k)
            norm[r0:r1, c0:c1] += wgt
    np.testing.assert_allclose(acc / norm, _box_filter(x, k), atol=1e-12)
    # and with a halo one pixel too small it is not exact (the test can fail)
    bad = plan_tiles(150, 170, 48, 56, receptive_field=k - 4, size_multiple=1, blend=0)
    acc[:] = 0
    norm[:] = 0
    for r0, r1 in bad.rows:
        for c0, c1 in bad.cols:
            wgt = blend_weights(bad, (r0, r1), (c0, c1), 150, 170)
            acc[r0:r1, c0:c1] += wgt * _box_filter(x[r0:r1, c0:c1], k)
            norm[r0:r1, c0:c1] += wgt
    assert np.abs(acc / norm - _box_filter(x, k)).max() > 1e-3
