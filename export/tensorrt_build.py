"""ONNX -> TensorRT engine, built on the target device, with a JSON sidecar and a persistent timing cache.

Written against the TensorRT 10 Python API (type-checked by mypy with ``tensorrt-stubs``); TensorRT itself is
imported only inside :func:`build_engine`, after :func:`edgedenoise.runtime.optional.require_tensorrt` has
checked that the real library (not just the stubs' namespace package) is present.

* **Precision comes from the ONNX file** (its ``metadata_props``): an INT8 engine is built from the
  ``.int8.trt.onnx`` QDQ model and an FP16 engine from the ``.fp16.onnx`` model, as **strongly typed** networks
  (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``: tensor types follow the ONNX graph; TensorRT developer
  guide, "Strongly Typed Networks" and "Explicit Quantization"). TensorRT deprecated implicit INT8 calibration
  in 10.1, so an INT8 engine from an FP32 ONNX is refused. An FP16 engine from the FP32 ONNX uses the
  builder-flag route (weakly typed network + ``BuilderFlag.FP16``), which older TensorRT needs.
* **Optimization profile**: one profile for the ``noisy`` input, ``min/opt/max`` N x C x H x W with H and W
  rounded to the model's ``size_multiple`` (min up, max down, opt to the nearest).
* **Timing cache**: kept per TensorRT version and GPU (``timing-<trt>-sm<cc>-<gpu>.cache`` in the cache folder),
  loaded before and saved after each build; rebuilding the same model then skips most kernel timing.
* **Sidecar** ``<engine>.json`` (:mod:`edgedenoise.runtime.engine_meta`): an existing engine is reused only if
  its sidecar matches what would be built now (TensorRT version, GPU, precision, profile, source ONNX sha256,
  model contract); otherwise it is rebuilt, and the reasons are reported.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..runtime.atomic import write_atomic
from ..runtime.contract import (
    CFG_METADATA_KEY,
    FLAVOUR_KEY,
    INPUT_NAME,
    OUTPUT_NAME,
    PRECISION_KEY,
    SIGMA_NAME,
    ModelCfg,
)
from ..runtime.engine_meta import EngineMeta, Profile, Shape4, mismatches, read_sidecar, sidecar_path, write_sidecar
from ..runtime.errors import ArtifactError, BackendUnavailableError, InvalidInputError
from ..runtime.optional import require_cuda_runtime, require_tensorrt, tensorrt_module
from .errors import ExportError

DEFAULT_MIN_HW = (64, 64)
DEFAULT_OPT_HW = (512, 512)
DEFAULT_MAX_HW = (1080, 1920)
DEFAULT_WORKSPACE_MIB = 1024
ENGINE_NOTICE = (
    "TensorRT is not installed here: build the engine on the target device with "
    "`edgedenoise build MODEL.int8.trt.onnx` (or MODEL.fp16.onnx)"
)


def engine_notice(onnx_files: Sequence[str | Path]) -> str:
    """The one-line notice ``export`` ends with when TensorRT is absent, naming the files to build from.

    Args:
        onnx_files: the written artifacts an engine would be built from (``.int8.trt.onnx`` / ``.fp16.onnx``,
            or the FP32 ``.onnx`` when only that was written), named by the path export wrote them to (with the
            ``-o`` folder, so the command runs as printed); empty gives the generic :data:`ENGINE_NOTICE`.
    """
    if not onnx_files:
        return ENGINE_NOTICE
    cmds = " and ".join(f"`edgedenoise build {Path(p)}`" for p in onnx_files)  # as written: runnable from here
    return f"TensorRT is not installed here: build the engine on the target device with {cmds}"


def parse_hw(text: str) -> tuple[int, int]:
    """``"WIDTHxHEIGHT"`` (e.g. ``"1920x1080"``, as image tools and ``edgedenoise bench`` write sizes) ->
    ``(H, W)``.

    Raises:
        InvalidInputError: not two positive integers separated by ``x``.
    """
    from ..runtime.bench import parse_sizes

    sizes = parse_sizes(text.strip()) if "," not in text else []
    if len(sizes) != 1:
        raise InvalidInputError(f"size {text!r} is not WIDTHxHEIGHT with positive integers (e.g. 1920x1080)")
    return sizes[0]


def profile_inputs(cfg: ModelCfg, profile: Profile) -> list[tuple[str, Shape4, Shape4, Shape4]]:
    """``(input name, min, opt, max)`` NCHW shapes for every network input under one optimization profile.

    ``noisy`` takes ``profile``; a noise-level-conditioned model's ``sigma`` map takes the same N, H and W with
    one channel (the runtime feeds both at the same size, tile by tile), so TensorRT never sees a ``sigma``
    shape outside the profile when ``noisy`` is inside it.
    """
    rows = [(INPUT_NAME, profile.min, profile.opt, profile.max)]
    if cfg.noise_level_input:
        lo, opt, hi = ((s[0], 1, s[2], s[3]) for s in (profile.min, profile.opt, profile.max))
        rows.append((SIGMA_NAME, lo, opt, hi))
    return rows


def make_profile(
    cfg: ModelCfg,
    min_hw: tuple[int, int] = DEFAULT_MIN_HW,
    opt_hw: tuple[int, int] = DEFAULT_OPT_HW,
    max_hw: tuple[int, int] = DEFAULT_MAX_HW,
    batch: int = 1,
) -> Profile:
    """The optimization profile for a model: N in ``[1, batch]`` (opt ``batch``), H/W rounded to ``size_multiple``.

    Rounding: ``min`` up, ``max`` down, ``opt`` to the nearest multiple (halves up), so that every shape the
    profile admits is one the model accepts.

    Raises:
        InvalidInputError: ``batch < 1``, or after rounding ``min <= opt <= max`` does not hold (the message gives
            the rounded sizes).
    """
    if batch < 1:
        raise InvalidInputError(f"--batch must be >= 1, got {batch}")
    m = cfg.size_multiple

    def up(v: int) -> int:
        return -(-v // m) * m

    def down(v: int) -> int:
        return v // m * m

    def nearest(v: int) -> int:
        return max(m, (v + m // 2) // m * m)  # halves round up

    lo = (up(min_hw[0]), up(min_hw[1]))
    opt = (nearest(opt_hw[0]), nearest(opt_hw[1]))
    hi = (down(max_hw[0]), down(max_hw[1]))
    if not (lo[0] <= opt[0] <= hi[0] and lo[1] <= opt[1] <= hi[1]) or hi[0] < m or hi[1] < m:
        raise InvalidInputError(
            f"profile sizes rounded to multiples of {m} give min {lo[1]}x{lo[0]}, opt {opt[1]}x{opt[0]}, max "
            f"{hi[1]}x{hi[0]} (WxH); choose --min <= --opt <= --max"
        )
    c = cfg.in_channels
    return Profile((1, c, *lo), (batch, c, *opt), (batch, c, *hi))


@dataclass(frozen=True)
class GpuInfo:
    """The CUDA device an engine is built for: ``name`` and compute capability ``"major.minor"``."""

    name: str
    compute_capability: str


def gpu_info(device: int = 0) -> GpuInfo:
    """Name and compute capability of CUDA device ``device`` (through cuda-python's runtime binding).

    Raises:
        BackendUnavailableError: cuda-python is missing or no CUDA device ``device`` exists.
    """
    cudart = require_cuda_runtime("building a TensorRT engine")
    result = cudart.cudaGetDeviceProperties(device)
    err, props = result[0], result[1]
    if int(err) != 0:
        raise BackendUnavailableError(f"no usable CUDA device {device} (cudaGetDeviceProperties: {err})")
    raw = props.name
    name = (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)).rstrip("\x00").strip()
    return GpuInfo(name, f"{props.major}.{props.minor}")


def engines_available() -> bool:
    """True if real TensorRT is installed (engines can be built here; a GPU is checked when building)."""
    return tensorrt_module() is not None


def timing_cache_path(cache_dir: str | Path, tensorrt_version: str, gpu: GpuInfo) -> Path:
    """``<cache_dir>/timing-<trt version>-sm<cc>-<gpu slug>.cache``: one timing cache per TensorRT and GPU.

    Timings measured on one GPU or TensorRT version are wrong for another, so the key holds all three.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", gpu.name.lower()).strip("-") or "gpu"
    cc = gpu.compute_capability.replace(".", "")
    return Path(cache_dir) / f"timing-{tensorrt_version}-sm{cc}-{slug}.cache"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/edgedenoise/tensorrt`` (``~/.cache/edgedenoise/tensorrt`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgedenoise" / "tensorrt"


_SUFFIXES = (".int8.trt", ".int8.cpu", ".fp16", ".fp32")


def default_engine_path(onnx_path: str | Path, precision: str) -> Path:
    """``rednet30.int8.trt.onnx`` -> ``rednet30.int8.engine``; ``rednet30.onnx`` + fp16 -> ``rednet30.fp16.engine``."""
    p = Path(onnx_path)
    stem = p.name[: -len(".onnx")] if p.name.endswith(".onnx") else p.stem
    for suffix in _SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return p.with_name(f"{stem}.{precision}.engine")


@dataclass(frozen=True)
class BuildPlan:
    """How to build: the engine's precision and whether the network is strongly typed (types from the ONNX)."""

    precision: str
    strongly_typed: bool


def plan_build(onnx_meta: dict[str, str], requested: str | None) -> BuildPlan:
    """Choose precision and typing mode from the ONNX file's metadata and the user's request.

    Args:
        onnx_meta: ``metadata_props`` of the ONNX file (``PRECISION_KEY``, ``FLAVOUR_KEY``).
        requested: ``"fp16"``, ``"int8"``, ``"fp32"`` or None (= what the ONNX file holds).

    Returns:
        Strongly typed for a file that already has the requested precision; for ``fp16`` from an FP32 file the
        builder-flag route (weakly typed).

    Raises:
        ArtifactError: the file has no precision metadata (not exported by edgedenoise).
        InvalidInputError: INT8 requested from a non-QDQ file, a CPU-flavour INT8 file (asymmetric uint8, which
            TensorRT rejects), or a request that contradicts the file (e.g. fp32 from an INT8 file).
    """
    have = onnx_meta.get(PRECISION_KEY)
    if have not in ("fp32", "fp16", "int8"):
        raise ArtifactError(
            f"the ONNX file has no {PRECISION_KEY} metadata ({have!r}); export it with `edgedenoise export`"
        )
    if have == "int8" and onnx_meta.get(FLAVOUR_KEY) != "trt":
        raise InvalidInputError(
            f"this INT8 ONNX is the {onnx_meta.get(FLAVOUR_KEY) or 'unknown'!r} flavour (uint8 activations, which "
            "TensorRT rejects); build the .int8.trt.onnx file instead"
        )
    want = requested or have
    if want == have:
        return BuildPlan(have, strongly_typed=True)
    if want == "fp16" and have == "fp32":
        return BuildPlan("fp16", strongly_typed=False)
    if want == "int8":
        raise InvalidInputError(
            "INT8 engines are built from a QDQ ONNX (TensorRT's implicit calibration is deprecated since 10.1): "
            "run `edgedenoise export --int8` and build the .int8.trt.onnx file"
        )
    raise InvalidInputError(f"cannot build a {want} engine from a {have} ONNX file; build the matching artifact")


def reuse_reasons(engine_path: str | Path, expected: EngineMeta) -> list[str]:
    """Why the engine at ``engine_path`` cannot be reused for ``expected``; empty if it can.

    An engine is reusable only if the file and its sidecar exist and the sidecar matches ``expected`` on every
    field that affects the engine (:func:`edgedenoise.runtime.engine_meta.mismatches`).
    """
    engine_path = Path(engine_path)
    if not engine_path.is_file():
        return ["no engine file"]
    try:
        have = read_sidecar(engine_path)
    except ArtifactError as exc:
        return [f"sidecar unusable: {exc}"]
    return mismatches(have, expected)


@dataclass(frozen=True)
class BuildResult:
    """Outcome of :func:`build_engine`: the engine, its sidecar content, and whether an existing one was reused.

    Attributes:
        rebuilt_because: the mismatches that forced a rebuild (empty when reused or built fresh).
    """

    engine_path: Path
    meta: EngineMeta
    reused: bool
    rebuilt_because: list[str] = field(default_factory=list)


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path | None = None,
    *,
    precision: str | None = None,
    min_hw: tuple[int, int] = DEFAULT_MIN_HW,
    opt_hw: tuple[int, int] = DEFAULT_OPT_HW,
    max_hw: tuple[int, int] = DEFAULT_MAX_HW,
    batch: int = 1,
    cache_dir: str | Path | None = None,
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
    device: int = 0,
    force: bool = False,
) -> BuildResult:
    """Build (or reuse) a TensorRT engine for an edgedenoise ONNX artifact on this machine's GPU.

    Args:
        onnx_path: ``.onnx`` written by ``edgedenoise export`` (FP32, FP16 or INT8-trt QDQ).
        engine_path: destination; default :func:`default_engine_path`. Written atomically with its sidecar.
        precision: ``"fp32"``, ``"fp16"``, ``"int8"`` or None (the file's own); see :func:`plan_build`.
        min_hw, opt_hw, max_hw, batch: the optimization profile (:func:`make_profile`).
        cache_dir: timing-cache folder (default :func:`default_cache_dir`).
        workspace_mib: builder workspace limit in MiB.
        device: CUDA device index.
        force: rebuild even if a matching engine exists.

    Returns:
        :class:`BuildResult`.

    Raises:
        BackendUnavailableError: TensorRT, cuda-python or a CUDA device is missing (the message says what).
        ArtifactError / InvalidInputError: see :func:`plan_build` and :func:`make_profile`.
        ExportError: TensorRT could not parse the ONNX file or build the engine (its errors are quoted).
    """
    from .. import __version__
    from .onnx_export import read_metadata, sha256_file

    try:
        require_tensorrt("building a TensorRT engine")
    except BackendUnavailableError as exc:
        raise BackendUnavailableError(
            f"{exc}; engines are built on the target device: copy the .onnx there and run `edgedenoise build`"
        ) from exc
    import tensorrt as trt  # typed by tensorrt-stubs; the real module was checked just above

    onnx_path = Path(onnx_path)
    meta_props = read_metadata(onnx_path)
    plan = plan_build(meta_props, precision)
    if CFG_METADATA_KEY not in meta_props:
        raise ArtifactError(f"{str(onnx_path)!r} has no model contract; export it with `edgedenoise export`")
    cfg = ModelCfg.from_json(meta_props[CFG_METADATA_KEY])
    profile = make_profile(cfg, min_hw, opt_hw, max_hw, batch)
    gpu = gpu_info(device)
    engine_path = Path(engine_path) if engine_path else default_engine_path(onnx_path, plan.precision)
    expected = EngineMeta(
        tensorrt_version=str(trt.__version__),
        gpu_name=gpu.name,
        compute_capability=gpu.compute_capability,
        precision=plan.precision,
        profile=profile,
        source_onnx_sha256=sha256_file(onnx_path),
        model_cfg=cfg,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        strongly_typed=plan.strongly_typed,
        edgedenoise_version=__version__,
        built_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    reasons = reuse_reasons(engine_path, expected)
    if not reasons and not force:
        return BuildResult(engine_path, read_sidecar(engine_path), reused=True)
    rebuilt_because = [] if reasons == ["no engine file"] else (reasons or ["--force"])

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if plan.strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    from ..runtime.onnx_scan import check_external_data

    check_external_data(onnx_path)  # TensorRT's parser follows external-data paths anywhere: refuse first
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {str(onnx_path)!r}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if not plan.strongly_typed and plan.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    trt_profile = builder.create_optimization_profile()
    for name, lo, opt, hi in profile_inputs(cfg, profile):
        trt_profile.set_shape(name, trt.Dims4(*lo), trt.Dims4(*opt), trt.Dims4(*hi))
    config.add_optimization_profile(trt_profile)

    cache_file = timing_cache_path(cache_dir or default_cache_dir(), expected.tensorrt_version, gpu)
    cache_bytes = cache_file.read_bytes() if cache_file.is_file() else b""
    timing_cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(timing_cache, ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(
            f"TensorRT failed to build an engine from {str(onnx_path)!r} (see its log above); "
            "check the profile sizes and the workspace limit"
        )
    write_atomic(engine_path, memoryview(serialized))
    write_sidecar(engine_path, expected)
    write_atomic(cache_file, memoryview(config.get_timing_cache().serialize()))
    return BuildResult(engine_path, expected, reused=False, rebuilt_because=rebuilt_because)


__all__ = [
    "ENGINE_NOTICE",
    "BuildPlan",
    "BuildResult",
    "GpuInfo",
    "build_engine",
    "default_cache_dir",
    "default_engine_path",
    "engines_available",
    "gpu_info",
    "make_profile",
    "parse_hw",
    "plan_build",
    "profile_inputs",
    "reuse_reasons",
    "sidecar_path",
    "timing_cache_path",
]
