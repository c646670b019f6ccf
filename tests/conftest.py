"""Shared fixtures: paths to ../shared/data (skipping when absent) and shipped samples."""

from __future__ import annotations

from pathlib import Path

import pytest

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
