"""Training patches: random crops with the 8 flips/rotations from a folder of clean images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..runtime.errors import InvalidInputError
from ..runtime.imageio import list_images, read_image, to_float


def load_folder(
    folder: str | Path, in_channels: int = 1, files: list[Path] | None = None
) -> list[np.ndarray]:
    """Decode every image of ``folder`` (or the given ``files``) to float32 ``(C, H, W)`` in [0, 1].

    Colour files become gray with ITU-R BT.601 luma (0.299, 0.587, 0.114) when ``in_channels == 1``;
    gray files are repeated to 3 channels when ``in_channels == 3``.

    Raises:
        InvalidInputError: the folder has no images, or some files cannot be decoded; the message names
            every bad file (up to 10) so they can be removed in one go.
    """
    paths = files if files is not None else list_images(folder)
    images, bad = [], []
    for p in paths:
        try:
            pix, _ = read_image(p)
        except InvalidInputError as exc:
            bad.append(str(exc))
            continue
        x = to_float(pix)
        if x.ndim == 2:
            x = x[None] if in_channels == 1 else np.repeat(x[None], 3, axis=0)
        else:
            x = x.transpose(2, 0, 1)
            if in_channels == 1:
                x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
        images.append(np.ascontiguousarray(x, dtype=np.float32))
    if bad:
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        raise InvalidInputError(f"{len(bad)} unreadable image(s) in {folder}: " + "; ".join(bad[:10]) + more)
    return images


def augment(x: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 dihedral transforms of a ``(C, H, W)`` array: ``mode`` in 0..7 (0 = identity).

    ``mode & 3`` counts 90° rotations, ``mode & 4`` adds a horizontal flip.
    """
    y = np.rot90(x, k=mode & 3, axes=(1, 2))
    if mode & 4:
        y = y[:, :, ::-1]
    return y


class PatchSampler:
    """Draws batches of random ``patch x patch`` crops (with random dihedral augmentation) from images.

    Deterministic given ``seed``; the state is one numpy Generator, saved/restored for resume.

    Args:
        images: list of ``(C, H, W)`` float32 arrays in [0, 1], each at least ``patch`` on both sides.
        patch: crop side in pixels (50 as in RED-Net).
        seed: seed of the sampling generator.

    Raises:
        InvalidInputError: an image smaller than the patch.
    """

    def __init__(self, images: list[np.ndarray], patch: int = 50, seed: int = 0) -> None:
        small = [i for i, im in enumerate(images) if min(im.shape[1:]) < patch]
        if small:
            raise InvalidInputError(f"{len(small)} training image(s) are smaller than the {patch}px patch")
        self.images = images
        self.patch = patch
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        """``(n, C, patch, patch)`` float32 clean patches."""
        out = []
        p = self.patch
        for _ in range(n):
            im = self.images[int(self.rng.integers(len(self.images)))]
            y = int(self.rng.integers(im.shape[1] - p + 1))
            x = int(self.rng.integers(im.shape[2] - p + 1))
            out.append(augment(im[:, y : y + p, x : x + p], int(self.rng.integers(8))).copy())
        return torch.from_numpy(np.stack(out))

    def state(self) -> dict:
        """Generator state (JSON-able), for checkpoints."""
        return dict(self.rng.bit_generator.state)

    def set_state(self, state: dict) -> None:
        """Restore :meth:`state`."""
        self.rng.bit_generator.state = state
