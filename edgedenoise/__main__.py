"""``python -m edgedenoise`` runs the CLI."""

from .cli import main

main()
