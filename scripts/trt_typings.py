"""Make the installed ``tensorrt-stubs`` usable by mypy: write a fixed copy to ``.typings/`` (not committed).

Why: ``tensorrt-stubs`` 10.x installs ``tensorrt/__init__.pyi`` and ``tensorrt_bindings/*.pyi`` without a
``py.typed`` marker, so mypy skips them ("module is installed, but missing library stubs or py.typed marker")
and with ``ignore_missing_imports`` every TensorRT call silently becomes ``Any``: mypy then checks nothing.
Following them anyway (``follow_untyped_imports``) fails on a few lines that are not valid Python (parameters
named ``in``; a non-default parameter after default ones). This script copies the stub files into
``.typings/`` with exactly those lines repaired and checks that every file parses; ``mypy_path = ".typings"``
in pyproject.toml then gives mypy real TensorRT types.

Usage (from the repository root, after ``pip install --no-deps tensorrt-stubs``)::

    .venv/bin/python scripts/trt_typings.py
"""

from __future__ import annotations

import ast
import re
import sys
import sysconfig
from pathlib import Path

PACKAGES = ("tensorrt", "tensorrt_bindings")
FIXES = [
    # `in` is a keyword: the generator kept the C++ parameter name.
    (re.compile(r"(\(self(?:: [A-Za-z0-9_]+)?, )in: "), r"\1in_: "),
    # add_scale_nd: `channel_axis: int` follows parameters with defaults.
    (re.compile(r"(power: Weights = None, channel_axis: int)\)"), r"\1 = 0)"),
]


def main() -> int:
    site = Path(sysconfig.get_paths()["purelib"])
    out = Path(__file__).resolve().parent.parent / ".typings"
    written = 0
    for pkg in PACKAGES:
        src = site / pkg
        stubs = sorted(src.glob("*.pyi"))
        if not stubs:
            print(f"no {pkg}/*.pyi in {site}: install tensorrt-stubs first (pip install --no-deps tensorrt-stubs)")
            return 1
        (out / pkg).mkdir(parents=True, exist_ok=True)
        for path in stubs:
            text = path.read_text()
            for pattern, repl in FIXES:
                text = pattern.sub(repl, text)
            ast.parse(text, filename=str(path))  # every repaired file must be valid Python
            (out / pkg / path.name).write_text(text)
            written += 1
    print(f"wrote {written} stub files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
