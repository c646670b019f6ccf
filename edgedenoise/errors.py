"""Re-export of the project's exception types (defined in :mod:`edgedenoise.runtime.errors`)."""

from .runtime.errors import *  # noqa: F403
from .runtime.errors import __all__  # noqa: F401
