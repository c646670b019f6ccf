"""No harm, for every shipped model: a clean image comes back at >= 40 dB PSNR, and σ 5 input is improved by
>= 1 dB (mean over the 16 gate images of calib_data/val_gray, or val_rgb for a colour model; the eval
protocol: seeded unclipped AWGN, output clipped and rounded to 8 bits, peak 255). The shipped FP32 ONNX files
run through ONNX Runtime; a model with a noise-level input is told the true σ (0 and 5).

MemNet is the seed's model and stays shipped although it fails (undertrained: a clean image comes back at about
37 dB); its cards say so under ``known_failures``, and the test is an expected failure that turns into an error
the day it passes, so that the mark cannot outlive the defect.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgedenoise.evaluate import OrtPredictor, denoise_array
from edgedenoise.runtime.artifact import shipped_onnx_models, weights_dir
from edgedenoise.runtime.metrics import awgn, psnr, quantize8

CALIB = Path(__file__).resolve().parent.parent / "calib_data"
KNOWN = {"memnet_m6r6", "memnet_m4r4"}


def _cases() -> list[object]:
    return [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="MemNet ships undertrained: known failure"))
        if n in KNOWN
        else n
        for n in shipped_onnx_models()
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", _cases())
def test_shipped_model_does_no_harm(name: str) -> None:
    predictor = OrtPredictor(weights_dir() / f"{name}.onnx", threads=1)
    rgb = predictor.cfg.in_channels == 3
    files = sorted((CALIB / ("val_rgb" if rgb else "val_gray")).glob("*.png"))
    # (C, H, W) as the eval protocol feeds the model
    clean = [np.atleast_3d(np.asarray(Image.open(p), np.float32) / 255).transpose(2, 0, 1) for p in files]
    assert len(clean) == 16 and all(c.shape[0] == predictor.cfg.in_channels for c in clean)
    out_clean, in_5, out_5 = [], [], []
    for i, c in enumerate(clean):
        ref = quantize8(c)
        out_clean.append(psnr(quantize8(denoise_array(predictor, c, sigma=0.0)), ref))
        noisy = awgn(c, 5.0, seed=i)
        in_5.append(psnr(quantize8(noisy), ref))
        out_5.append(psnr(quantize8(denoise_array(predictor, noisy, sigma=5.0)), ref))
    assert np.mean(out_clean) >= 40.0, f"clean input comes back at {np.mean(out_clean):.2f} dB"
    gain = np.mean(out_5) - np.mean(in_5)
    assert gain >= 1.0, f"σ 5: {np.mean(in_5):.2f} -> {np.mean(out_5):.2f} dB"


def test_known_failures_are_written_in_the_cards() -> None:
    for name in KNOWN:
        card = json.loads((weights_dir() / f"{name}.json").read_text())
        assert any("no-harm" in f for f in card.get("known_failures", [])), name
