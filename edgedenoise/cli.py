"""The ``edgedenoise`` command line: the click group and its entry point; the commands live in
:mod:`edgedenoise.commands`, each a thin adapter over one library call, and shared options in
:mod:`edgedenoise.commands.options`.

Errors: library code raises :class:`EdgeDenoiseError` subclasses; :func:`main` is the single place that turns
them into one stderr line and exit code 1 (``--debug`` shows the traceback). Heavy modules (torch, onnx) are
imported inside the commands, so ``edgedenoise --help`` and the runtime commands work without torch.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from . import __version__
from .commands import register as register_commands
from .runtime.errors import EdgeDenoiseError

_DEBUG = False


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="edgedenoise")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
def cli(debug: bool) -> None:
    """Image-denoising CNNs (RED-Net, MemNet) from training to ONNX / TensorRT on the edge.

    \b
    Example:
      edgedenoise models
    """
    global _DEBUG
    _DEBUG = debug


register_commands(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn project errors into one line on stderr and exit code 1."""
    try:
        rv: Any = cli.main(args=argv, prog_name="edgedenoise", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except click.exceptions.Abort:  # click turns Ctrl-C (KeyboardInterrupt) into Abort; we have no prompts
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EdgeDenoiseError as exc:
        if _DEBUG:
            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)  # click's own usage errors start the same way
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
