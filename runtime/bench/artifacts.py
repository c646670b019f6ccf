"""What a benchmark runs on the runtime's backends: frame sizes, precisions, the artifact files of a MODEL
argument (:func:`resolve_targets`), their contracts and the size rules they impose, and their MAC counts.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..artifact import MODEL_ALIASES, ArtifactContract, is_engine_path, resolve_model, shipped_onnx_models
from ..backend import BackendKind
from ..contract import MACS_PER_PIXEL_KEY
from ..errors import ArtifactError, InvalidInputError

BENCH_PRECISIONS = ("fp32", "fp16", "int8")
# File name of each precision next to an FP32 ``<base>.onnx`` (as ``edgedenoise export`` writes them).
_SUFFIX = {"fp32": ".onnx", "fp16": ".fp16.onnx", "int8-cpu": ".int8.cpu.onnx", "int8-trt": ".int8.trt.onnx"}


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"512x512,1920x1080"`` (each ``WxH``, as frame sizes are written) -> ``[(512, 512), (1080, 1920)]`` as (H, W).

    Raises:
        InvalidInputError: an entry that is not ``WxH`` with positive integers.
    """
    out = []
    for part in (p.strip() for p in text.split(",")):
        m = re.fullmatch(r"(\d+)\s*[xX]\s*(\d+)", part)
        if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
            raise InvalidInputError(f"size {part!r} is not WIDTHxHEIGHT with positive integers (e.g. 1920x1080)")
        out.append((int(m.group(2)), int(m.group(1))))
    if not out:
        raise InvalidInputError(f"no size in {text!r}; give e.g. 512x512,1920x1080")
    return out


def parse_precisions(text: str | None) -> list[str] | None:
    """``"fp32,int8"`` -> ``["fp32", "int8"]``; None stays None (each model's default).

    Raises:
        InvalidInputError: an unknown precision.
    """
    if text is None:
        return None
    out = [p.strip().lower() for p in text.split(",") if p.strip()]
    bad = [p for p in out if p not in BENCH_PRECISIONS]
    if bad or not out:
        raise InvalidInputError(f"precision {text!r}: choose from {', '.join(BENCH_PRECISIONS)} (comma-separated)")
    return list(dict.fromkeys(out))


shipped_models = shipped_onnx_models  # the names ``edgedenoise bench`` takes for shipped artifacts


def _int8_key(backend: BackendKind) -> str:
    # TensorRT wants symmetric S8S8 QDQ; ONNX Runtime's CPU (and CUDA) kernels take the U8S8 "cpu" flavour.
    return "int8-trt" if backend is BackendKind.ORT_TENSORRT else "int8-cpu"


def _precision_of_name(filename: str) -> str:
    low = filename.lower()
    for key, suffix in _SUFFIX.items():
        if key != "fp32" and low.endswith(suffix):
            return key.split("-")[0]
    return "fp32"


def _export_hint(base: str, key: str) -> str:
    flag = {"fp32": "", "fp16": " --fp16", "int8-cpu": " --int8 --flavour cpu", "int8-trt": " --int8 --flavour trt"}
    return f"`edgedenoise export --model {base}{flag[key]} -o DIR` and pass DIR/{base}{_SUFFIX[key]}"


@dataclass(frozen=True)
class Target:
    """One artifact to benchmark: the model's display name, the requested precision (None: as the file says)."""

    model: str
    path: Path
    precision: str | None


def resolve_targets(model: str | Path, precisions: Sequence[str] | None, backend: str | BackendKind) -> list[Target]:
    """The artifact files to benchmark for one MODEL argument.

    Args:
        model: a shipped model name or alias (``rednet30`` -> ``edgedenoise/weights/rednet30.onnx``), a shipped
            name with its precision (``rednet30.int8.cpu``: that file only), or a path to an ``.onnx`` /
            ``.engine`` file.
        precisions: ``fp32`` / ``fp16`` / ``int8``; each maps to the file beside the FP32 ``<base>.onnx`` that
            ``edgedenoise export`` writes: ``<base>.onnx``, ``<base>.fp16.onnx``, ``<base>.int8.cpu.onnx``
            (``<base>.int8.trt.onnx`` for the ``ort-tensorrt`` backend). None: for a name, FP32 plus the INT8
            file when it ships; for a path, the file itself.
        backend: the backend the files will run on.

    Raises:
        ArtifactError: a path that does not exist, or a requested precision whose file is missing (the message
            names the file and the ``edgedenoise export`` command that makes it).
        UnknownModelError: a name that is not shipped.
        InvalidInputError: a precision for an engine file (engines have one, fixed at build time).
    """
    kind = BackendKind.parse(backend)
    text = str(model)
    given = resolve_model(text)  # existing file, or the shipped FP32 ONNX of a name; raises otherwise
    # a bare shipped name stands for its FP32 file and the precisions beside it; a path, or a name qualified with a
    # precision (``unet3_f32_u4_nl.int8.cpu``, as ``infer`` takes it), for that one file
    is_name = not Path(text).is_file() and _precision_of_name(given.name) == "fp32"
    name = MODEL_ALIASES.get(text, text) if is_name else given.name.split(".")[0]
    if is_engine_path(given):
        if precisions:
            raise InvalidInputError(
                f"{given.name} is a TensorRT engine: its precision was fixed when it was built; drop --precision"
            )
        return [Target(name, given, None)]
    if precisions is None:
        if not is_name:
            return [Target(name, given, None)]
        extra = given.parent / f"{name}{_SUFFIX[_int8_key(kind)]}"
        return [Target(name, given, "fp32")] + ([Target(name, extra, "int8")] if extra.is_file() else [])
    out = []
    for p in precisions:
        key = _int8_key(kind) if p == "int8" else p
        if not is_name and _precision_of_name(given.name) == p:
            out.append(Target(name, given, p))
            continue
        path = given.parent / f"{name}{_SUFFIX[key]}"
        if not path.is_file():
            raise ArtifactError(
                f"no {p} artifact for {name}: {path} does not exist; make it with {_export_hint(name, key)}"
            )
        out.append(Target(name, path, p))
    return out


def read_onnx_contract(path: str | Path) -> ArtifactContract:
    """The contract in an ONNX file's metadata, read with an unoptimised ONNX Runtime CPU session (no run).

    Raises:
        ArtifactError: the file cannot be loaded or lacks the contract.
    """
    from ..ort_session import cpu_session

    sess = cpu_session(path, optimize=False)
    return ArtifactContract.from_metadata(sess.get_modelmeta().custom_metadata_map, Path(path).name)


def padded_size(height: int, width: int, size_multiple: int) -> tuple[int, int]:
    """``(H, W)`` rounded up to multiples of ``size_multiple``: what the Denoiser runs for a frame of that size
    (it pads by reflection and crops back), so what a benchmark at that frame size times."""
    m = size_multiple
    return -(-height // m) * m, -(-width // m) * m


def check_sizes(
    sizes: Sequence[tuple[int, int]],
    size_multiple: int,
    what: str,
    min_hw: tuple[int, int] = (1, 1),
    max_hw: tuple[int, int] | None = None,
) -> None:
    """Refuse sizes the model cannot take once padded to ``size_multiple`` (see :func:`padded_size`).

    Raises:
        InvalidInputError: the padded H or W outside ``[min_hw, max_hw]``.
    """
    for h0, w0 in sizes:
        h, w = padded_size(h0, w0, size_multiple)
        if h < min_hw[0] or w < min_hw[1] or (max_hw is not None and (h > max_hw[0] or w > max_hw[1])):
            top = f"{max_hw[1]}x{max_hw[0]}" if max_hw else "unbounded"
            raise InvalidInputError(
                f"size {w0}x{h0} is outside what {what} takes ({min_hw[1]}x{min_hw[0]} to {top}); pick a size inside it"
            )


def check_precision(target: Target, contract: ArtifactContract) -> None:
    """Refuse a file whose metadata precision is not the one it was picked for.

    Raises:
        ArtifactError: e.g. an FP32 model saved under the INT8 file name.
    """
    if target.precision is not None and contract.precision != target.precision:
        raise ArtifactError(
            f"{target.path.name} was taken as the {target.precision} artifact of {target.model}, but its metadata "
            f"says {contract.precision}; pass the right file"
        )


def macs_from_contract(contract: ArtifactContract, path: Path) -> tuple[float | None, str | None]:
    """MACs per pixel from the ONNX metadata, else from a model card ``<base>.json`` of the same architecture."""
    raw = contract.metadata.get(MACS_PER_PIXEL_KEY)
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            return value, "onnx-metadata"
    card = path.parent / f"{path.name.split('.')[0]}.json"
    with contextlib.suppress(OSError, ValueError, TypeError):
        data = json.loads(card.read_text())
        if isinstance(data, dict) and data.get("arch") == contract.cfg.arch:
            value = float(data.get("macs_per_pixel", math.nan))
            if math.isfinite(value) and value > 0:
                return value, "model-card"
    return None, None
