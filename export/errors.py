"""The export stage's exception types.

They derive from :class:`edgedenoise.runtime.errors.EdgeDenoiseError`, so the CLI reports them as every other
project error (one stderr line, exit code 1); they live here because only the export stage raises them, and the
runtime (the bottom of the import graph) never sees an export.
"""

from __future__ import annotations

from ..runtime.errors import EdgeDenoiseError


class ExportError(EdgeDenoiseError, RuntimeError):
    """Exporting or converting a model failed."""


class CalibrationError(ExportError):
    """INT8 calibration failed (no usable images, bad statistics), or an artifact is outside its quality budget."""


__all__ = ["CalibrationError", "ExportError"]
