"""The base install is the runtime only: no torch needed to import it or to run `edgedenoise --help`."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import edgedenoise
from edgedenoise.cli import cli

BLOCK_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"


def _runtime_modules() -> list[str]:
    import edgedenoise.runtime as rt

    return ["edgedenoise.runtime"] + [
        f"edgedenoise.runtime.{m.name}" for m in pkgutil.iter_modules(rt.__path__)
    ]


def test_runtime_imports_without_torch() -> None:
    mods = _runtime_modules()
    assert len(mods) > 3
    code = BLOCK_TORCH + "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in mods)
    code += "assert sys.modules['torch'] is None\nprint('ok')\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_cli_help_without_torch() -> None:
    code = BLOCK_TORCH + "from edgedenoise.cli import main\nsys.argv=['edgedenoise','--help']\nmain()\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Usage: edgedenoise" in out.stdout


def test_runtime_source_never_imports_torch() -> None:
    root = Path(edgedenoise.__file__).resolve().parent.parent / "runtime"
    for py in root.rglob("*.py"):
        text = py.read_text()
        for bad in ("import torch", "from torch", "edgedenoise.models", "edgedenoise.train", "from ..models"):
            assert bad not in text, f"{py} contains {bad!r}"


def test_every_command_has_help_with_example() -> None:
    runner = CliRunner()
    for name, cmd in cli.commands.items():
        res = runner.invoke(cli, [name, "--help"])
        assert res.exit_code == 0, name
        assert "Example" in (cmd.help or ""), f"command {name!r} has no example in its help"


def test_version() -> None:
    res = CliRunner().invoke(cli, ["--version"])
    assert res.exit_code == 0 and edgedenoise.__version__ in res.output


def test_models_table_lists_counts() -> None:
    res = CliRunner().invoke(cli, ["models"])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("rednet30 "))
    assert "1,035,201" in line and "1.033 M" in line
    # the σ 25 column is the card's BSD68 figure, read here from the card itself
    card = json.loads((Path(edgedenoise.__file__).parent / "weights" / "rednet30.json").read_text())
    (r25,) = [r for r in card["evaluation"]["sets"]["BSD68"]["results"] if r["sigma"] == 25]
    assert line.rstrip().endswith(f"{r25['psnr']:.2f} (BSD68)")
    for name in ("rednet10", "rednet20", "rednet30_s2", "memnet_m6r6", "memnet_m4r4"):
        assert any(ln.startswith(name + " ") for ln in res.output.splitlines())


def test_project_error_is_one_line_exit_1() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edgedenoise.cli", "train", "/nonexistent.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert "/nonexistent.yaml" in out.stderr and "Traceback" not in out.stderr


def test_models_lists_the_shipped_artifacts_without_torch() -> None:
    """A runtime install (no torch) lists what ships, with the figures of each card."""
    from runtime_helpers import run_cli_without_torch

    from edgedenoise.runtime.artifact import shipped_table

    res = run_cli_without_torch(["models"])
    assert res.returncode == 0, res.stderr
    rows = {line.split()[0]: line for line in res.stdout.splitlines()[2:-1]}
    table = shipped_table()
    assert set(rows) == {r["name"] for r in table} and "rednet30" in rows
    rednet30 = next(r for r in table if r["name"] == "rednet30")
    card = json.loads((Path(edgedenoise.__file__).parent / "weights" / "rednet30.json").read_text())
    bsd68 = {r["sigma"]: r["psnr"] for r in card["evaluation"]["sets"]["BSD68"]["results"]}
    assert rednet30["bsd68_sigma25"] == bsd68[25.0] and f"{bsd68[25.0]:.2f}" in rows["rednet30"]
    assert "int8.cpu" in rows["rednet30"] and "1.033 M" in rows["rednet30"]


def test_compare_and_eval_of_onnx_need_no_torch_nor_onnx(tmp_path: Path) -> None:
    from runtime_helpers import ROOT, run_cli_without_torch

    w = ROOT / "edgedenoise" / "weights"
    res = run_cli_without_torch(
        ["compare", str(w / "rednet12_slim64_u2.onnx"), str(w / "rednet12_slim64_u2.int8.cpu.onnx"),
         "--data", str(ROOT / "calib_data" / "val_gray")]
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "PSNR vs clean: A" in res.stdout and "B vs A" in res.stdout
    res = run_cli_without_torch(
        ["eval", str(w / "rednet12_slim64_u2.onnx"), "--data", str(ROOT / "calib_data" / "val_gray"),
         "--sigma", "25", "--limit", "2"]
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "onnxruntime" in res.stdout
