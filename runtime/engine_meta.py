"""The JSON sidecar of a TensorRT engine: what it was built from, for which GPU and TensorRT, with which profile.

A serialized TensorRT engine only runs with the TensorRT version that built it and, in general, only on the GPU
model it was built for (TensorRT developer guide, "Serialized engines are not portable across platforms or
TensorRT versions" and "hardware compatibility"). An engine also accepts only the input shapes of its
optimization profile. The sidecar ``<engine>.json`` (e.g. ``rednet30.int8.engine.json``) records all of it, so
that the export stage rebuilds an engine only when something changed and the runtime refuses an engine that
cannot run here with one clear line instead of a TensorRT deserialisation error.

This module is pure Python (json, dataclasses): the runtime reads sidecars without TensorRT or the export stage.

Schema (``schema`` 1), one JSON object::

    {"schema": 1,
     "tensorrt_version": "10.13.0.35", "gpu_name": "NVIDIA Orin", "compute_capability": "8.7",
     "precision": "int8",                       # "fp32" | "fp16" | "int8"
     "profile": {"min": [1, 1, 64, 64], "opt": [1, 1, 512, 512], "max": [1, 1, 1088, 1920]},   # NCHW
     "source_onnx_sha256": "<64 hex>", "model_cfg": {...ModelCfg fields...},
     "input_name": "noisy", "output_name": "denoised",
     "strongly_typed": true, "edgedenoise_version": "0.1.0", "built_at": "2025-01-01T00:00:00+00:00"}
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .contract import INPUT_NAME, OUTPUT_NAME, ModelCfg
from .errors import ArtifactError

SCHEMA_VERSION = 1
PRECISIONS = ("fp32", "fp16", "int8")
SIDECAR_SUFFIX = ".json"

Shape4 = tuple[int, int, int, int]


@dataclass(frozen=True)
class Profile:
    """An optimization profile of the engine's single input: NCHW shapes ``min <= opt <= max`` (elementwise).

    Attributes:
        min, opt, max: ``(N, C, H, W)`` tuples of positive ints; C is the same in all three.
    """

    min: Shape4
    opt: Shape4
    max: Shape4

    def __post_init__(self) -> None:
        for name in ("min", "opt", "max"):
            shape = tuple(int(v) for v in getattr(self, name))
            if len(shape) != 4 or any(v < 1 for v in shape):
                raise ArtifactError(f"profile {name} shape {shape} must be 4 positive ints (N, C, H, W)")
            object.__setattr__(self, name, shape)
        if not all(a <= b <= c for a, b, c in zip(self.min, self.opt, self.max, strict=True)):
            raise ArtifactError(f"profile needs min <= opt <= max per axis, got {self.min} {self.opt} {self.max}")
        if not self.min[1] == self.opt[1] == self.max[1]:
            raise ArtifactError(f"profile channel counts differ: {self.min[1]}, {self.opt[1]}, {self.max[1]}")

    def contains(self, shape: tuple[int, ...]) -> bool:
        """True if the NCHW ``shape`` lies inside ``[min, max]`` on every axis (the engine accepts it)."""
        return len(shape) == 4 and all(lo <= v <= hi for lo, v, hi in zip(self.min, shape, self.max, strict=True))

    def to_dict(self) -> dict[str, list[int]]:
        """``{"min": [N, C, H, W], "opt": [...], "max": [...]}``."""
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, data: Any) -> Profile:
        """Inverse of :meth:`to_dict`.

        Raises:
            ArtifactError: not an object with exactly ``min``, ``opt``, ``max`` lists of 4 positive ints.
        """
        if not isinstance(data, dict) or set(data) != {"min", "opt", "max"}:
            raise ArtifactError(f"profile must be an object with min/opt/max, got {data!r}")
        try:
            shapes = {k: tuple(int(v) for v in data[k]) for k in ("min", "opt", "max")}
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"profile shapes must be lists of ints, got {data!r}") from exc
        if any(len(s) != 4 for s in shapes.values()):
            raise ArtifactError(f"profile shapes must have 4 axes (N, C, H, W), got {data!r}")
        return cls(shapes["min"], shapes["opt"], shapes["max"])  # type: ignore[arg-type]


@dataclass(frozen=True)
class EngineMeta:
    """Everything that decides whether an engine file may be used: the sidecar's content.

    Attributes:
        tensorrt_version: ``tensorrt.__version__`` of the builder, e.g. ``"10.13.0.35"``.
        gpu_name: the CUDA device name, e.g. ``"NVIDIA Orin"``.
        compute_capability: ``"major.minor"``, e.g. ``"8.7"``.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        profile: the optimization profile of the input.
        source_onnx_sha256: hex sha256 of the ONNX file the engine was built from.
        model_cfg: the model's contract (copied from the ONNX metadata).
        input_name, output_name: the engine's I/O tensor names.
        strongly_typed: built as a strongly typed network (precisions from the ONNX) rather than with builder flags.
        edgedenoise_version: version of edgedenoise that built it (informational).
        built_at: ISO-8601 UTC time of the build (informational).
    """

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    profile: Profile
    source_onnx_sha256: str
    model_cfg: ModelCfg
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    strongly_typed: bool = True
    edgedenoise_version: str = ""
    built_at: str = ""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ArtifactError(f"engine precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        sha = self.source_onnx_sha256
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ArtifactError(f"source_onnx_sha256 {sha!r} is not 64 lowercase hex digits")
        if self.profile.min[1] != self.model_cfg.in_channels:
            raise ArtifactError(
                f"profile has {self.profile.min[1]} channels but the model takes {self.model_cfg.in_channels}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The sidecar JSON object (see the module docstring)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["profile"] = self.profile.to_dict()
        data["model_cfg"] = json.loads(self.model_cfg.to_json())
        return {"schema": SCHEMA_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Any) -> EngineMeta:
        """Parse and validate a sidecar object.

        Raises:
            ArtifactError: wrong schema version, unknown or missing fields, or invalid values.
        """
        if not isinstance(data, dict):
            raise ArtifactError("engine sidecar must be a JSON object; rebuild the engine with `edgedenoise build`")
        if data.get("schema") != SCHEMA_VERSION:
            raise ArtifactError(
                f"engine sidecar schema {data.get('schema')!r} is not {SCHEMA_VERSION}; "
                "rebuild the engine with this version of `edgedenoise build`"
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        body = {k: v for k, v in data.items() if k != "schema"}
        unknown = sorted(set(body) - set(fields))
        required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
        missing = [n for n in required if n not in body]
        if unknown or missing:
            raise ArtifactError(
                f"engine sidecar has unknown fields {unknown} / lacks {missing}; rebuild it with `edgedenoise build`"
            )
        for name in ("tensorrt_version", "gpu_name", "compute_capability", "precision", "source_onnx_sha256"):
            if not isinstance(body[name], str):
                raise ArtifactError(f"engine sidecar field {name!r} must be a string, got {body[name]!r}")
        body["profile"] = Profile.from_dict(body["profile"])
        body["model_cfg"] = ModelCfg.from_json(json.dumps(body["model_cfg"]))
        return cls(**body)


def sidecar_path(engine_path: str | Path) -> Path:
    """``<engine>.json`` beside the engine (``m.int8.engine`` -> ``m.int8.engine.json``)."""
    p = Path(engine_path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def write_sidecar(engine_path: str | Path, meta: EngineMeta) -> Path:
    """Write ``meta`` as ``<engine>.json`` atomically (temporary file + ``os.replace``); returns its path."""
    return write_atomic(sidecar_path(engine_path), json.dumps(meta.to_dict(), indent=2, sort_keys=True) + "\n")


def read_sidecar(engine_path: str | Path) -> EngineMeta:
    """Read and validate the sidecar of ``engine_path``.

    Raises:
        ArtifactError: the sidecar is missing, not JSON, or invalid (the message names the file and the fix).
    """
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise ArtifactError(
            f"engine {str(engine_path)!r} has no sidecar {path.name!r}; rebuild it with `edgedenoise build`"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{str(path)!r} is not valid JSON ({exc}); rebuild the engine") from exc
    try:
        return EngineMeta.from_dict(data)
    except ArtifactError as exc:
        raise ArtifactError(f"{str(path)!r}: {exc}") from exc


def mismatches(meta: EngineMeta, expected: EngineMeta) -> list[str]:
    """The reasons an existing engine (``meta``) cannot stand in for the one ``expected`` describes.

    Compared: TensorRT version, GPU name, compute capability, precision, profile, source ONNX sha256, model
    contract, I/O names, strongly-typed mode. Not compared: ``edgedenoise_version`` and ``built_at``.

    Returns:
        One ``"field: have X, want Y"`` string per differing field; empty if the engine can be reused.
    """
    out = []
    for f in dataclasses.fields(EngineMeta):
        if f.name in ("edgedenoise_version", "built_at"):
            continue
        have, want = getattr(meta, f.name), getattr(expected, f.name)
        if have != want:
            out.append(f"{f.name}: have {_show(have)}, want {_show(want)}")
    return out


def runtime_mismatches(meta: EngineMeta, *, tensorrt_version: str, gpu_name: str, compute_capability: str) -> list[str]:
    """Why an engine cannot be deserialised here: TensorRT version or GPU (name, compute capability) differ.

    Returns:
        One ``"field: engine X, here Y"`` string per difference; empty if the engine was built for this platform.
    """
    here = {"tensorrt_version": tensorrt_version, "gpu_name": gpu_name, "compute_capability": compute_capability}
    return [f"{k}: engine {getattr(meta, k)!r}, here {v!r}" for k, v in here.items() if getattr(meta, k) != v]


def _show(value: Any) -> str:
    if isinstance(value, Profile):
        return json.dumps(value.to_dict(), separators=(",", ":"))
    if isinstance(value, ModelCfg):
        return value.to_json()
    return repr(value)


__all__ = [
    "PRECISIONS",
    "SCHEMA_VERSION",
    "EngineMeta",
    "Profile",
    "mismatches",
    "read_sidecar",
    "runtime_mismatches",
    "sidecar_path",
    "write_sidecar",
]
