"""The base install is the runtime only: no torch needed to import it or to run `edgedenoise --help`."""

from __future__ import annotations

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
