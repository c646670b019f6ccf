"""Runtime figures for docs/runtime.md: tile size vs time and peak memory, and the Denoiser's own overhead.

Each configuration runs in a fresh subprocess so its peak resident memory (``ru_maxrss``) is its own. Prints a
table; asserts nothing (figures, not tests). Needs no PyTorch. Example::

    python examples/bench_runtime.py rednet30.onnx --size 1024x1024 --tiles=-1,0,512,256 --repeat 2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = r"""
import json, resource, sys, time
import numpy as np
import onnxruntime as ort
from edgedenoise.runtime import Denoiser

model = sys.argv[1]
h, w, tile, repeat, threads = (int(v) for v in sys.argv[2:7])
x = np.random.default_rng(0).integers(0, 256, (h, w), dtype=np.uint8)
out = {}
if tile < 0:  # the raw session, for the facade's overhead
    so = ort.SessionOptions(); so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    f = (x.astype(np.float32) / 255)[None, None]
    sess.run(None, {"noisy": f})
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, {"noisy": (x.astype(np.float32) / 255)[None, None]})
        t.append(time.perf_counter() - t0)
else:
    with Denoiser(model, tile=tile, threads=threads) as d:
        d(x)
        t = []
        for _ in range(repeat):
            t0 = time.perf_counter(); d(x); t.append(time.perf_counter() - t0)
out["median_s"] = float(np.median(t))
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--size", default="1024x1024", help="WxH (width x height) of the test image")
    p.add_argument("--tiles", default="0,512,256", help="tile sides to compare (0: no tiling; -1: raw ORT session)")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    print(f"{args.model} at {w}x{h}, {args.threads} threads, median of {args.repeat}")
    print(f"{'config':>12}  {'time (s)':>9}  {'Mpx/s':>7}  {'peak RSS (MB)':>13}")
    for tile in (int(t) for t in args.tiles.split(",")):
        cmd = [sys.executable, "-c", _CHILD, args.model, str(h), str(w), str(tile), str(args.repeat), str(args.threads)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        name = "raw session" if tile < 0 else ("untiled" if tile == 0 else f"tile {tile}")
        mpx = h * w / r["median_s"] / 1e6
        print(f"{name:>12}  {r['median_s']:9.3f}  {mpx:7.3f}  {r['peak_rss_mb']:13.0f}")


if __name__ == "__main__":
    main()
