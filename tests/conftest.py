"""Shared fixtures and builders: paths to ../shared/data (skipping when absent), tiny training configs, trainer
checkpoints and engine sidecars. Test modules import the helpers by name (``from conftest import ...``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edgedenoise.runtime.contract import ModelCfg
from edgedenoise.runtime.engine_meta import EngineMeta, Profile

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_set(name: str) -> Path:
    """Path of a standard set in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"../shared/data/{name} is not beside this checkout (full benchmark sets are not shipped)")
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


def tiny_train_config(images: Path, out: Path, **top: Any) -> dict[str, Any]:
    """Config dict of a tiny training run (for :func:`edgedenoise.train.config_from_dict`).

    RED10 with 4 features on 16 px patches of ``images`` (batch 2, one image held out for validation, one thread),
    8 steps of Adam at 1e-3 with 2 warm-up steps and a cosine schedule; validation every 2 steps, a checkpoint every
    3, a log line every step, written to ``out``. ``top`` replaces whole top-level keys (``optim={...}`` replaces
    the optimiser section, it does not merge into it).
    """
    cfg: dict[str, Any] = {
        "model": "rednet10",
        "model_overrides": {"features": 4},
        "data": {"train_dir": str(images), "patch_size": 16, "batch_size": 2, "val_holdout": 1},
        "optim": {"lr": 1e-3, "warmup_steps": 2, "schedule": "cosine"},
        "steps": 8,
        "val_every": 2,
        "ckpt_every": 3,
        "log_every": 1,
        "threads": 1,
        "out_dir": str(out),
    }
    cfg.update(top)
    return cfg


def checkpoint_dict(model: Any, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keys a trainer checkpoint (``.pt``, saved with ``torch.save``) needs to rebuild ``model``.

    ``arch`` and ``cfg`` (JSON) come from the model's ``ModelCfg``; ``overrides`` are the constructor arguments
    (default ``{"features": 8}``, the width of the tests' tiny models); ``state_dict`` is the model's, as tensors.
    """
    return {
        "arch": model.cfg.arch,
        "cfg": model.cfg.to_json(),
        "overrides": {"features": 8} if overrides is None else overrides,
        "state_dict": model.state_dict(),
    }


def engine_meta(model_cfg: ModelCfg, profile: Profile, /, **changes: Any) -> EngineMeta:
    """An engine sidecar: INT8, built by TensorRT 10.3.0 on an NVIDIA Orin (compute capability 8.7) from an ONNX
    file whose SHA-256 is ``"ab" * 32``, for ``model_cfg`` with the optimisation ``profile``. ``changes`` replace
    any field, ``profile`` and ``model_cfg`` included (a name that is not a field raises TypeError)."""
    base = EngineMeta(
        tensorrt_version="10.3.0",
        gpu_name="NVIDIA Orin",
        compute_capability="8.7",
        precision="int8",
        profile=profile,
        source_onnx_sha256="ab" * 32,
        model_cfg=model_cfg,
    )
    return dataclasses.replace(base, **changes)
