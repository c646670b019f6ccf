#!/usr/bin/env python
"""Write the warm start of configs/cpu/rednet6_slim32_u4_qat.yaml: the GPU-trained rednet8_slim32_u4 (the weights
shipped before its quantization-aware fine-tuning, by sha256) without its innermost two body layers.

Usage (repo root): ``python scripts/make_rednet6_init.py SRC.safetensors`` (default: the git blob of commit 7426ae3).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SRC_SHA256 = "b4ad7155575410e82aa32c140a0728eb77bdc5759a970b30756281f152c4e3b0"  # rednet8_slim32_u4, GPU run
OUT = ROOT / "runs" / "cpu" / "init" / "rednet6_slim32_u4_from_rednet8.safetensors"


def main(argv: list[str]) -> int:
    from edgedenoise.models import load_weights, save_weights
    from edgedenoise.models.slim import drop_middle_layers

    with tempfile.TemporaryDirectory() as tmp:
        if argv:
            src = Path(argv[0])
        else:
            src = Path(tmp) / "rednet8.safetensors"
            blob = subprocess.run(
                ["git", "show", "7426ae3:edgedenoise/weights/rednet8_slim32_u4.safetensors"],
                cwd=ROOT,
                capture_output=True,
                check=True,
            ).stdout
            src.write_bytes(blob)
        got = hashlib.sha256(src.read_bytes()).hexdigest()
        if got != SRC_SHA256:
            print(
                f"Error: {src} has sha256 {got}, not the GPU-trained rednet8_slim32_u4 ({SRC_SHA256})", file=sys.stderr
            )
            return 1
        model = drop_middle_layers(load_weights(src), 6, "rednet6_slim32_u4")
        OUT.parent.mkdir(parents=True, exist_ok=True)
        save_weights(
            model, OUT, {"source": f"rednet8_slim32_u4 sha256 {SRC_SHA256}, innermost two body layers dropped"}
        )
    print(OUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
