"""Tiling with overlap and blended seams, so images of any size run within a tile or engine-profile limit.

Method: "overlap-tile" (Ronneberger et al., U-Net, MICCAI 2015, Sec. 3 and Fig. 2) plus linear blending.
A fully convolutional net's output at a pixel depends only on the inputs within ``r = (receptive_field - 1) / 2``
pixels of it. A tile's outputs closer than ``r`` to an *interior* tile edge saw the tile's zero padding
instead of the neighbouring pixels, so they get weight 0 (the *halo*); past the halo the weight ramps up
linearly over ``blend`` pixels. Adjacent tiles overlap by ``2 * halo + blend >= receptive_field`` pixels,
their ramps cross inside the overlap, and the result is the weighted mean
``sum_i w_i * y_i / sum_i w_i``. With a correct ``receptive_field`` every output pixel with non-zero weight
is exact, so tiled and untiled outputs agree to float rounding; the ramp hides any residual seam when the
declared receptive field understates the real one (or an engine computes with a different rounding per
tile). Edges that are image borders keep weight 1: there the tile sees what the untiled model sees.

Tile starts are multiples of ``size_multiple`` so strided layers keep the same sampling phase in every tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidInputError

DEFAULT_BLEND = 16  # pixels of linear cross-fade between tiles, beyond the halos
# Largest tile side when the backend sets no limit. It bounds memory: RED30 (64 features) on ONNX Runtime CPU
# peaked at 0.45 GB resident with this limit and 3.3 GB untiled, at 1024x1024 (docs/runtime.md, "Tiling").
DEFAULT_TILE = 512
#: Activation memory (MiB) one model run may take before the Denoiser tiles (Intel Open Image Denoise's
#: ``maxMemoryMB`` plays the same role); with RED30's 7.4 kB per pixel that is tiles of about 370x370, while
#: the light models run a 1280x720 frame whole (the real-time model a 1920x1080 one).
DEFAULT_MEMORY_MB = 1024


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one ``(height, width)`` image go.

    Attributes:
        rows: ``(start, stop)`` of each tile along H (all of one size, at most ``tile_h``).
        cols: the same along W.
        halo: pixels of zero weight at an interior tile edge (``ceil((receptive_field - 1) / 2)``).
        blend: pixels of linear ramp after the halo.
    """

    rows: tuple[tuple[int, int], ...]
    cols: tuple[tuple[int, int], ...]
    halo: int
    blend: int

    @property
    def count(self) -> int:
        """Number of tiles."""
        return len(self.rows) * len(self.cols)


def halo_for(receptive_field: int) -> int:
    """Pixels of context a tile needs beyond an output pixel: ``ceil((receptive_field - 1) / 2)``."""
    return max(0, receptive_field // 2)  # == ceil((rf - 1) / 2) for integer rf


def min_tile(receptive_field: int, size_multiple: int, blend: int = DEFAULT_BLEND) -> int:
    """The smallest tile side for which tiling works: overlap plus one step of ``size_multiple``, aligned."""
    overlap = 2 * halo_for(receptive_field) + blend
    return _ceil_to(overlap + size_multiple, size_multiple)


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


def plan_axis(
    length: int, tile: int, overlap: int, multiple: int, min_tile: int = 1
) -> tuple[tuple[int, int], ...]:
    """Tile spans ``(start, stop)`` covering ``[0, length)``, balanced so that no tile is mostly overlap.

    The number of tiles is the fewest that ``tile`` allows; the tiles are then shrunk to the smallest equal
    size that still covers the axis with that many tiles (at least ``min_tile``), so a 1080-pixel axis under
    a 1024-pixel limit runs as two 578-pixel tiles, not as two 1024-pixel tiles that overlap by 968 pixels.

    Args:
        length: image extent (a multiple of ``multiple``).
        tile: largest tile extent (a multiple of ``multiple``); if ``tile >= length`` one tile spans the image.
        overlap: minimum overlap between neighbours.
        multiple: every start and every tile extent is a multiple of this.
        min_tile: smallest tile extent allowed (e.g. an engine profile's minimum).

    Raises:
        InvalidInputError: ``tile - overlap`` leaves no step of at least ``multiple``.
    """
    if tile >= length:
        return ((0, length),)
    step = (tile - overlap) // multiple * multiple
    if step < multiple:
        raise InvalidInputError(
            f"tile {tile} is too small for an overlap of {overlap} pixels (receptive field + blend); "
            f"use a tile of at least {_ceil_to(overlap + multiple, multiple)}"
        )
    count = -(-(length - tile) // step) + 1  # fewest tiles of at most `tile` pixels
    aligned_overlap = _ceil_to(overlap, multiple)  # == tile - step
    step = _ceil_to(-(-(length - aligned_overlap) // count), multiple)  # <= the largest step; count tiles cover
    size = min(tile, max(_ceil_to(min_tile, multiple), step + aligned_overlap))
    starts = list(range(0, length - size, step)) + [length - size]
    return tuple((s, s + size) for s in starts)


def plan_tiles(
    height: int,
    width: int,
    tile_h: int,
    tile_w: int,
    receptive_field: int,
    size_multiple: int = 1,
    blend: int = DEFAULT_BLEND,
    min_hw: tuple[int, int] = (1, 1),
) -> TilePlan:
    """Plan the tiles of an image already padded to ``size_multiple``.

    Args:
        height, width: the padded image size in pixels (multiples of ``size_multiple``).
        tile_h, tile_w: largest tile extents (rounded down here to multiples of ``size_multiple``).
        receptive_field: the model's receptive field in pixels (``ModelCfg.receptive_field``).
        size_multiple: ``ModelCfg.size_multiple``.
        blend: linear ramp width in pixels beyond the halo.
        min_hw: smallest tile extents the backend accepts (an engine profile's minimum).

    Raises:
        InvalidInputError: a tile smaller than :func:`min_tile`.
    """
    if height % size_multiple or width % size_multiple:
        raise ValueError(f"image {width}x{height} is not padded to a multiple of {size_multiple}")
    halo = halo_for(receptive_field)
    overlap = 2 * halo + blend
    th = tile_h // size_multiple * size_multiple
    tw = tile_w // size_multiple * size_multiple
    return TilePlan(
        rows=plan_axis(height, th, overlap, size_multiple, min_hw[0]),
        cols=plan_axis(width, tw, overlap, size_multiple, min_hw[1]),
        halo=halo,
        blend=blend,
    )


def axis_weights(start: int, stop: int, length: int, halo: int, blend: int) -> np.ndarray:
    """1-D blending weights of one tile span, ``(stop - start,)`` float32 in [0, 1].

    0 within ``halo`` of an interior edge, then a linear ramp ``1/(blend+1) ... 1`` over ``blend`` pixels;
    1 everywhere along an edge that is the image border.
    """
    n = stop - start
    x = np.arange(n, dtype=np.float32)
    w = np.ones(n, dtype=np.float32)
    if start > 0:
        w = np.minimum(w, np.clip((x - halo + 1) / (blend + 1), 0.0, 1.0))
    if stop < length:
        w = np.minimum(w, np.clip((n - x - halo) / (blend + 1), 0.0, 1.0))
    return w


def blend_weights(plan: TilePlan, row: tuple[int, int], col: tuple[int, int], height: int, width: int) -> np.ndarray:
    """2-D weights of the tile at ``row`` x ``col``: ``(h, w)`` float32, the outer product of the axis weights."""
    wy = axis_weights(row[0], row[1], height, plan.halo, plan.blend)
    wx = axis_weights(col[0], col[1], width, plan.halo, plan.blend)
    return np.outer(wy, wx)
