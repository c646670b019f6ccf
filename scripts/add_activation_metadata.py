#!/usr/bin/env python
"""Add the ``edgedenoise.activation_bytes_per_pixel`` metadata to shipped ONNX files exported before it existed.

The Denoiser reads it to tile only the images that would not fit its memory budget; without it a file falls back
to fixed 512-pixel tiles. The value comes from the model's torch twin (the shipped ``.safetensors``, counted by
``edgedenoise.models.registry.activation_bytes_per_pixel``); the graphs are not touched (only ``metadata_props``).

Usage, from the repository root: ``.venv/bin/python scripts/add_activation_metadata.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import onnx  # noqa: E402

from edgedenoise.export.onnx_export import save_onnx_atomic, set_metadata  # noqa: E402
from edgedenoise.models import load_weights  # noqa: E402
from edgedenoise.models.registry import activation_bytes_per_pixel  # noqa: E402
from edgedenoise.runtime.contract import ACTIVATION_BYTES_KEY  # noqa: E402

weights = ROOT / "edgedenoise" / "weights"
for st in sorted(weights.glob("*.safetensors")):
    model = load_weights(st)
    m = model.cfg.size_multiple
    value = repr(float(activation_bytes_per_pixel(model, size=-(-64 // m) * m)))
    for path in sorted(weights.glob(f"{st.stem}.onnx")) + sorted(weights.glob(f"{st.stem}.*.onnx")):
        proto = onnx.load_model(str(path))
        if {p.key: p.value for p in proto.metadata_props}.get(ACTIVATION_BYTES_KEY) == value:
            continue
        set_metadata(proto, {ACTIVATION_BYTES_KEY: value})
        save_onnx_atomic(proto, path)
        print(f"{path.name}: {ACTIVATION_BYTES_KEY} = {value}")
