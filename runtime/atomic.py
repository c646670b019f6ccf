"""Atomic file writes: the one way every edgedenoise output reaches the disk.

A writer fills a hidden temporary file in the destination's folder (:func:`temp_beside`), then
:func:`publish` gives it its final permissions, makes it durable and renames it over the destination with
``os.replace``: a reader sees the old file or the whole new one, never a half-written one, and a killed run
leaves only a recognisable temporary file (removed by :func:`~.imageio.remove_stale_temps`).

Permissions: ``tempfile.mkstemp`` creates files ``0o600``. A published file gets the mode of the file it
replaces (an ``--in-place`` run keeps ``0o664``), or ``0o666`` less the process umask for a new file (``0o644``
under the usual ``022``), as ``open(path, "w")`` would, so other users and services of a camera box can read
the results.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

TEMP_TAG = ".edgedenoise-"
TEMP_SUFFIX = ".tmp"


def temp_beside(path: str | Path) -> tuple[int, str]:
    """A temporary file for an atomic write of ``path``: ``(fd, name)`` from :func:`tempfile.mkstemp`.

    The name is hidden and recognisable, ``.<name>.edgedenoise-<pid>-<random>.tmp``, in ``path``'s folder (so
    that ``os.replace`` stays on one file system). Raises OSError.
    """
    path = Path(path)
    return tempfile.mkstemp(prefix=f".{path.name}{TEMP_TAG}{os.getpid()}-", suffix=TEMP_SUFFIX, dir=path.parent)


def _final_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def publish(tmp: str | Path, path: str | Path, *, durable: bool = True) -> None:
    """Give the finished temporary file ``tmp`` its final mode (see the module docstring) and rename it to
    ``path`` atomically.

    ``durable``: ``fsync`` the file before the rename and the folder after it. Without it a power cut can leave
    ``path`` renamed but empty (ext4 delayed allocation), which ``--skip-existing`` or an ``--in-place`` run
    would take for a finished file. Raises OSError.
    """
    path = Path(path)
    os.chmod(tmp, _final_mode(path))
    if durable:
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable and os.name == "posix":
        with contextlib.suppress(OSError):
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def write_atomic(path: str | Path, content: str | bytes | memoryview | Callable[[str], None]) -> Path:
    """Write ``path`` atomically (temporary file, :func:`publish`); its folder is created if missing.

    Args:
        path: the destination.
        content: text (written as UTF-8), bytes, or a function that writes the file whose name it is given
            (e.g. ``lambda name: image.save(name, format="PNG")``).

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        OSError: the folder is not writable, the disk is full...; the destination is then untouched and no
            temporary file is left. Whatever ``content`` raises, likewise.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    try:
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            f: IO[bytes]
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["TEMP_SUFFIX", "TEMP_TAG", "publish", "temp_beside", "write_atomic"]
