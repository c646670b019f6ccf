"""Check an ONNX file's external-data references before ONNX Runtime opens it, without the ``onnx`` package.

An ONNX tensor may keep its bytes in another file (``TensorProto.data_location = EXTERNAL`` and an
``external_data`` entry ``location``, a path relative to the model's folder; ONNX IR spec, "External Tensor
Data", https://onnx.ai/onnx/repo-docs/ExternalData.html). A model from a stranger can set that location to
``../../home/user/.ssh/id_rsa`` or ``/etc/shadow``: the runtime would read a file it was never given, and its
bytes could come back in the output. ONNX Runtime >= 1.2x refuses such paths itself, but older builds (NVIDIA's
Jetson wheels among them) do not, so :func:`check_external_data` refuses them first, on every build.

Rule: every external location must be a relative path without ``..`` that, with symbolic links resolved, names
a regular file inside the model's folder. The runtime never imports ``onnx`` (the builder library), so this
module reads the protobuf wire format (https://protobuf.dev/programming-guides/encoding/) directly and walks
only the messages that can hold tensors: the graph's initializers and sparse initializers, node attributes
(tensors and subgraphs, recursively), functions and training-info graphs. Field numbers are those of
``onnx/onnx.proto`` (IR version 10).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import ArtifactError

# message name -> {field number: child message name} for the fields that can lead to a TensorProto.
_SCHEMA: dict[str, dict[int, str]] = {
    "Model": {7: "Graph", 20: "TrainingInfo", 25: "Function"},
    "TrainingInfo": {1: "Graph", 2: "Graph"},
    "Function": {7: "Node"},
    "Graph": {1: "Node", 5: "Tensor", 15: "SparseTensor"},
    "Node": {5: "Attribute"},
    "Attribute": {5: "Tensor", 6: "Graph", 10: "Tensor", 11: "Graph", 22: "SparseTensor", 23: "SparseTensor"},
    "SparseTensor": {1: "Tensor", 2: "Tensor"},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_MAX_DEPTH = 100  # protobuf's own default recursion limit


@dataclass(frozen=True)
class ExternalRef:
    """One tensor whose data lives in another file.

    Attributes:
        tensor: the tensor's name.
        location: the ``location`` entry as written in the model (``""`` if the entry is missing).
    """

    tensor: str
    location: str


class _Malformed(Exception):
    pass


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """``(field number, wire type, value)`` of one message; length-delimited values are views, not copies."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 1 or wire == 5:
            pos += 8 if wire == 1 else 4
            if pos > len(buf):
                raise _Malformed("truncated fixed-width field")
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise _Malformed("length-delimited field runs past the end")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire == 3:  # a group (proto2; ONNX never writes one, but protobuf parsers skip it as unknown)
            pos = _skip_group(buf, pos, number)
        else:  # 4 without a start, 6, 7
            raise _Malformed(f"invalid wire type {wire}")


def _skip_group(buf: memoryview, pos: int, number: int) -> int:
    """Position after the END_GROUP of the group ``number`` whose START_GROUP ended at ``pos``."""
    depth = [number]
    while depth:
        key, pos = _varint(buf, pos)
        n, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            size, pos = _varint(buf, pos)
            pos += size
        elif wire == 3:
            depth.append(n)
            if len(depth) > _MAX_DEPTH:
                raise _Malformed(f"groups nested deeper than {_MAX_DEPTH}")
        elif wire == 4 and n == depth[-1]:
            depth.pop()
        else:
            raise _Malformed(f"invalid wire type {wire} in a group")
        if pos > len(buf):
            raise _Malformed("group runs past the end")
    return pos


def _tensor_ref(buf: memoryview) -> ExternalRef | None:
    name, location, external, has_location = "", "", False, False
    for number, wire, value in _fields(buf):
        if wire == 2 and number == _TENSOR_NAME:
            name = bytes(value).decode("utf-8", "replace")  # type: ignore[arg-type]
        elif wire == 0 and number == _TENSOR_DATA_LOCATION:
            external = value == _EXTERNAL
        elif wire == 2 and number == _TENSOR_EXTERNAL_DATA:
            key = val = ""
            for n, w, v in _fields(value):  # type: ignore[arg-type]
                if w == 2 and n in (1, 2):
                    text = bytes(v).decode("utf-8", "replace")  # type: ignore[arg-type]
                    key, val = (text, val) if n == 1 else (key, text)
            if key == "location":
                location, has_location = val, True
    return ExternalRef(name, location) if external or has_location else None


def _walk(buf: memoryview, kind: str, depth: int, out: list[ExternalRef]) -> None:
    if depth > _MAX_DEPTH:
        raise _Malformed(f"messages nested deeper than {_MAX_DEPTH}")
    if kind == "Tensor":
        ref = _tensor_ref(buf)
        if ref is not None:
            out.append(ref)
        return
    children = _SCHEMA[kind]
    for number, wire, value in _fields(buf):
        if wire == 2 and number in children:
            _walk(value, children[number], depth + 1, out)  # type: ignore[arg-type]


def external_refs(path: str | Path) -> list[ExternalRef]:
    """Every tensor of the ONNX file ``path`` whose data is stored outside it, in file order.

    Raises:
        ArtifactError: the file cannot be read or is not a well-formed protobuf message.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read the model ({exc.strerror or exc})") from exc
    out: list[ExternalRef] = []
    try:
        _walk(memoryview(data), "Model", 0, out)
    except _Malformed as exc:
        raise ArtifactError(f"{path}: not a loadable ONNX model (malformed protobuf: {exc})") from exc
    return out


def check_external_data(path: str | Path) -> list[Path]:
    """Refuse an ONNX file whose external data would be read from outside its own folder.

    Args:
        path: the ``.onnx`` file.

    Returns:
        The external data files it uses (resolved paths, each inside the model's folder); empty for the usual
        self-contained model.

    Raises:
        ArtifactError: a location that is empty, absolute, contains ``..``, resolves (through symbolic links)
            outside the model's folder, or is not an existing regular file; or a malformed file. The message
            names the model, the tensor and the location.
    """
    path = Path(path)
    refs = external_refs(path)
    if not refs:
        return []
    folder = path.parent.resolve()
    fix = "external data must be a file inside the model's folder; re-export the model or move the file there"
    targets: list[tuple[ExternalRef, Path]] = []
    for ref in refs:  # first every location: one that escapes is refused even if an earlier one is missing
        loc = ref.location
        where = f"{path}: tensor {ref.tensor!r} keeps its data in {loc!r}"
        parts = set(PurePosixPath(loc).parts) | set(PureWindowsPath(loc).parts)
        if not loc or "\x00" in loc:
            raise ArtifactError(f"{where}, which is not a file name; {fix}")
        if os.path.isabs(loc) or PureWindowsPath(loc).is_absolute() or PureWindowsPath(loc).drive or ".." in parts:
            raise ArtifactError(f"{where}, outside the model's folder {folder}; refused: {fix}")
        target = (folder / loc).resolve()
        if not target.is_relative_to(folder):
            raise ArtifactError(f"{where}, which resolves to {target}, outside the model's folder {folder}; {fix}")
        targets.append((ref, target))
    for ref, target in targets:
        if not target.is_file():
            raise ArtifactError(
                f"{path}: tensor {ref.tensor!r} keeps its data in {ref.location!r}, which does not exist in "
                f"{folder}; copy the data file beside the model"
            )
    return sorted({target for _, target in targets})


__all__ = ["ExternalRef", "check_external_data", "external_refs"]
