"""Shared fixtures: paths to ../shared/data (skipping when absent) and shipped samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_set(name: str) -> Path:
    """Path of a standard set in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(
            f"../shared/data/{name} is not beside this checkout (full benchmark sets are not shipped)"
        )
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Five random 24x24 gray PNGs (4 train + 1 validation hold-out), for tiny training runs."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder
