"""The command line's shared options: one ``--threads`` rule, WxH sizes, and what each command hands its library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from edgedenoise.cli import cli
from edgedenoise.commands import options
from edgedenoise.runtime.errors import EdgeDenoiseError

THREADED = ("bench", "compare", "eval", "export", "infer")


class _Called(EdgeDenoiseError):
    """Raised by the stand-in library calls once they have recorded their arguments."""


def _params(name: str) -> dict[str, click.Parameter]:
    return {p.name: p for p in cli.commands[name].params if p.name}


def test_threads_is_one_option_everywhere() -> None:
    have = sorted(name for name in cli.commands if "threads" in _params(name))
    assert have == sorted(THREADED)
    for name in THREADED:
        p = _params(name)["threads"]
        assert isinstance(p, click.Option) and p.help == options.THREADS_HELP, name
        assert p.default == options.ALL_CORES == 0 and isinstance(p.type, click.IntRange) and p.type.min == 0
    res = CliRunner().invoke(cli, ["infer", "m.onnx", "x.png", "--threads", "-1"])
    assert res.exit_code == 2 and "--threads" in res.output
    assert options.threads_or_none(0) is None and options.threads_or_none(3) == 3


def _capture(monkeypatch: pytest.MonkeyPatch, module: str, name: str, seen: dict[str, Any]) -> None:
    def fake(*args: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise _Called("called")

    monkeypatch.setattr(f"{module}.{name}", fake)


@pytest.mark.parametrize(
    "threads,ort,torch_default", [([], None, True), (["--threads", "0"], None, True), (["--threads", "2"], 2, False)]
)
def test_each_command_hands_its_library_what_it_takes(
    threads: list[str], ort: int | None, torch_default: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runner = CliRunner()
    seen: dict[str, Any] = {}
    _capture(monkeypatch, "edgedenoise.runtime.infer", "InferRun", seen)
    runner.invoke(cli, ["infer", "m.onnx", "x.png", *threads])
    assert seen["threads"] == ort  # the runtime: None is its default (all cores)
    _capture(monkeypatch, "edgedenoise.evaluate", "evaluate", seen)
    runner.invoke(cli, ["eval", "m.onnx", "--data", str(tmp_path), *threads])
    assert seen["threads"] == ort  # evaluate: None leaves ONNX Runtime's and torch's defaults
    _capture(monkeypatch, "edgedenoise.export.quality", "compare_artifacts", seen)
    a = tmp_path / "a.onnx"
    a.write_bytes(b"")
    runner.invoke(cli, ["compare", str(a), str(a), "--data", str(tmp_path), *threads])
    assert seen["threads"] == (ort or 0)  # the export checks: 0 is ONNX Runtime's default
    import torch

    before = torch.get_num_threads()

    def fake_export(*args: Any, **kwargs: Any) -> None:
        seen.update(kwargs, torch_threads=torch.get_num_threads())
        raise _Called("called")

    monkeypatch.setattr("edgedenoise.export.pipeline.export_model", fake_export)
    runner.invoke(cli, ["export", "--model", "rednet10", *threads])
    assert seen["threads"] == (ort or 0)
    assert seen["torch_threads"] == (before if torch_default else ort) and torch.get_num_threads() == before


def test_sizes_are_wxh_everywhere() -> None:
    runner = CliRunner()
    sizes = {"bench": ["size"], "build": ["min_hw", "opt_hw", "max_hw"]}
    for name, params in sizes.items():
        for p in params:
            opt = _params(name)[p]
            assert isinstance(opt, click.Option) and options.SIZE_FORMAT in (opt.help or ""), (name, p)
            assert opt.metavar and opt.metavar.startswith("WxH")
    for name in cli.commands:
        text = runner.invoke(cli, [name, "--help"]).output
        assert "HxW" not in text and "WIDTHxHEIGHT" not in text, name


def test_models_and_train_live_in_the_commands_package() -> None:
    for name in ("models", "train"):
        callback = cli.commands[name].callback
        assert callback is not None and callback.__module__ == f"edgedenoise.commands.{name}"
