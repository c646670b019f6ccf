"""torch -> ONNX: re-parameterised, dynamic N/H/W, the model's contract in ``metadata_props``.

The export uses PyTorch's ``torch.export``-based ONNX exporter (``torch.onnx.export(..., dynamo=True)``, the
default and recommended route since PyTorch 2.9; the TorchScript exporter is deprecated). Its onnxscript
optimisation pass folds constants, removes identities and folds a zero ``Pad`` into the following ``Conv``'s
``pads`` (which turns the stride-2 sub-pixel replacement of :mod:`.reparam` into one Conv with asymmetric pads).
The exporter implements opset 18 and newer; lower opsets need a down-conversion that ONNX cannot do for ``Pad``,
so 18 is the minimum (TensorRT 10 and ONNX Runtime >= 1.14 read it).

BatchNorm: the models here have no Conv -> BatchNorm pair to fold; MemNet's pre-activation
``BN -> ReLU -> Conv`` cannot be folded into a neighbouring Conv (the ReLU sits between, and the BN input is a
residual sum or a concatenation), so it is exported as an eval-mode ``BatchNormalization`` (a per-channel
scale and shift with the running statistics), which ONNX Runtime and TensorRT execute as such.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..runtime.atomic import write_atomic
from ..runtime.contract import (
    ACTIVATION_BYTES_KEY,
    CFG_METADATA_KEY,
    INPUT_NAME,
    MACS_PER_PIXEL_KEY,
    OUTPUT_NAME,
    PRECISION_KEY,
    SIGMA_NAME,
    VERSION_KEY,
    WEIGHTS_SHA_KEY,
)
from ..runtime.errors import ArtifactError, InvalidInputError
from .errors import ExportError

if TYPE_CHECKING:
    import onnx
    from torch import nn

DEFAULT_OPSET = 18
MIN_OPSET = 18


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_onnx_atomic(model: onnx.ModelProto, path: str | Path) -> Path:
    """Check ``model`` with ``onnx.checker`` and write it to ``path`` via a temporary file + ``os.replace``.

    Weights stay inside the file (no external data; our models are far below ONNX's 2 GB limit).

    Raises:
        ExportError: the model fails the ONNX checker (nothing is written).
    """
    import onnx

    path = Path(path)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the ONNX model for {str(path)!r} is invalid: {exc}") from exc
    return write_atomic(path, lambda tmp: onnx.save_model(model, tmp, save_as_external_data=False))


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Set (add or overwrite) string entries of ``model.metadata_props`` in place."""
    existing = {p.key: p for p in model.metadata_props}
    for key, value in props.items():
        if not isinstance(value, str):
            raise TypeError(f"metadata value for {key!r} must be a str, got {type(value).__name__}")
        if key in existing:
            existing[key].value = value
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict (weights are not loaded).

    Raises:
        ArtifactError: the file is missing or not an ONNX model.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"ONNX file {str(path)!r} does not exist")
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError / ValueError / OSError depending on the damage
        raise ArtifactError(f"{str(path)!r} is not a readable ONNX model ({exc})") from exc
    return {p.key: p.value for p in model.metadata_props}


#: ``metadata_props`` key: JSON list of the node names INT8 export keeps in float because the model declares their
#: modules in ``float_modules`` (fixed colour transforms), found through the exporter's per-node module scopes.
FLOAT_NODES_KEY = "edgedenoise.float_nodes"
_SCOPES_KEY = "pkg.torch.onnx.name_scopes"  # per-node metadata of torch's exporter: the module path, outermost first


def declared_float_nodes(proto: onnx.ModelProto, modules: Sequence[str]) -> list[str]:
    """Names of the nodes of ``proto`` that torch's exporter recorded inside one of the top-level submodules
    ``modules`` (per-node ``pkg.torch.onnx.name_scopes`` metadata: ``['', '<submodule>', ...]``).

    Raises:
        ExportError: a module in ``modules`` owns no node (the exporter did not record scopes, or the name is
            wrong): its nodes would be quantized silently.
    """
    import ast

    wanted = set(modules)
    found: dict[str, list[str]] = {m: [] for m in wanted}
    for n in proto.graph.node:
        scopes = next((p.value for p in n.metadata_props if p.key == _SCOPES_KEY), None)
        if scopes is None:
            continue
        path = ast.literal_eval(scopes)
        top = path[1].split(".")[0] if len(path) > 1 else ""  # "deconvs.0" inside a ModuleList "deconvs"
        if top in wanted:
            found[top].append(n.name)
    missing = sorted(m for m, names in found.items() if not names)
    if missing:
        raise ExportError(f"no ONNX node found for the float module(s) {missing}: cannot keep them out of INT8")
    return [name for m in sorted(found) for name in found[m]]


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    reparam: bool = True,
    extra_metadata: dict[str, str] | None = None,
    weights_sha256: str | None = None,
) -> Path:
    """Export a registered model to an FP32 ONNX file with dynamic batch, height and width.

    Args:
        model: a model from ``edgedenoise.models.create_model`` / ``load_weights`` (it carries a ``ModelCfg``);
            not modified (a deep copy is re-parameterised and put in eval mode).
        path: destination ``.onnx``; written atomically (temporary file, then ``os.replace``).
        opset: ONNX opset of the default domain, >= 18.
        reparam: replace every ConvTranspose2d by its exact Conv2d form (:func:`.reparam.reparameterize`), so
            that the graph has no ConvTranspose and every layer can be quantized.
        extra_metadata: more ``metadata_props`` entries (string -> string); they may not override the keys this
            function writes.
        weights_sha256: sha256 of the source weights file, stored under ``WEIGHTS_SHA_KEY`` when given.

    The graph maps input ``"noisy"`` ``(N, C, H, W)`` float32 to output ``"denoised"`` of the same shape and
    dtype; H and W must be multiples of ``cfg.size_multiple`` at run time. ``metadata_props`` hold the
    ModelCfg JSON (``CFG_METADATA_KEY``), ``PRECISION_KEY = "fp32"``, the edgedenoise version, the Conv
    multiply-accumulates per input pixel of the exported (re-parameterised) graph (``MACS_PER_PIXEL_KEY``, a
    float as a string, counted by ``edgedenoise.models.count_macs_per_pixel``; read by ``edgedenoise bench``
    for GFLOP/s), the Conv output bytes per input pixel (``ACTIVATION_BYTES_KEY``, for the Denoiser's memory
    budget), if known, the weights' sha256, and for a model that declares ``float_modules`` the nodes INT8
    export keeps in float (``FLOAT_NODES_KEY``).

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        InvalidInputError: ``opset`` below 18, or ``extra_metadata`` overriding a reserved key.
        ExportError: the model cannot be exported or re-parameterised (the message says why).
    """
    import torch
    from torch.export import Dim

    from .. import __version__
    from ..models import count_macs_per_pixel, model_cfg
    from ..models.registry import activation_bytes_per_pixel
    from .reparam import reparameterize

    if opset < MIN_OPSET:
        raise InvalidInputError(
            f"opset {opset} is not supported; the torch exporter writes opset >= {MIN_OPSET} (use opset={MIN_OPSET})"
        )
    cfg = model_cfg(model)
    props = {CFG_METADATA_KEY: cfg.to_json(), PRECISION_KEY: "fp32", VERSION_KEY: __version__}
    if weights_sha256:
        props[WEIGHTS_SHA_KEY] = weights_sha256
    clash = sorted(set(extra_metadata or {}) & (set(props) | {MACS_PER_PIXEL_KEY, ACTIVATION_BYTES_KEY}))
    if clash:
        raise InvalidInputError(f"extra_metadata may not set {clash}; these keys are written by export_onnx")
    props.update(extra_metadata or {})

    if reparam:
        net, _ = reparameterize(model)
    else:
        import copy

        net = copy.deepcopy(model).eval()
    net = net.cpu().float()
    m = cfg.size_multiple
    props[MACS_PER_PIXEL_KEY] = repr(float(count_macs_per_pixel(net, size=-(-64 // m) * m)))
    props[ACTIVATION_BYTES_KEY] = repr(float(activation_bytes_per_pixel(net, size=-(-64 // m) * m)))
    # Batch 2 and H != W so that the exporter cannot specialise any of the three dynamic axes to a constant.
    example = torch.rand(2, cfg.in_channels, 12 * m, 16 * m)
    nchw = {0: Dim("N"), 2: Dim("H"), 3: Dim("W")}
    args: tuple[Any, ...] = (example,)
    names: list[str] = [INPUT_NAME]
    shapes: tuple[dict[int, Any], ...] = (nchw,)
    if cfg.noise_level_input:  # second input: the per-pixel σ map, same N, H, W as the image
        args, names, shapes = (example, torch.rand(2, 1, 12 * m, 16 * m) * 0.2), [INPUT_NAME, SIGMA_NAME], (nchw, nchw)
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    # The exporter logs a WARNING per missing optional package (torchvision ops) on every export.
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                net,
                args,
                None,
                input_names=names,
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes=shapes,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; report it as one project error
        raise ExportError(f"torch.onnx.export failed for {cfg.arch!r}: {exc}") from exc
    finally:
        onnx_logger.setLevel(level)
    assert program is not None
    proto = program.model_proto
    got_opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if got_opset != opset:
        raise ExportError(f"the exporter wrote opset {got_opset}, not the requested {opset}; use opset={got_opset}")
    proto.producer_name = "edgedenoise"
    proto.producer_version = __version__
    proto.graph.name = cfg.arch
    _check_io(proto, cfg.in_channels, cfg.noise_level_input)
    float_modules = getattr(net, "float_modules", ())
    if float_modules:
        props[FLOAT_NODES_KEY] = json.dumps(declared_float_nodes(proto, float_modules))
    strip_stack_traces(proto)
    set_metadata(proto, props)
    return save_onnx_atomic(proto, path)


#: Node ``metadata_props`` key under which the torch exporter records the Python stack of each node: absolute
#: source paths of the exporting machine. It is removed, so that the file does not depend on where the checkout
#: and the virtual environment lie (the module scopes under ``pkg.torch.onnx.name_scopes`` stay).
STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def strip_stack_traces(model: onnx.ModelProto) -> int:
    """Remove every node's ``STACK_TRACE_KEY`` entry in place (main graph, sub-graphs and functions).

    Args:
        model: an ONNX model as the torch exporter wrote it; only node ``metadata_props`` change.

    Returns:
        The number of entries removed.
    """
    import onnx

    def nodes(g: onnx.GraphProto) -> list[onnx.NodeProto]:
        out = list(g.node)
        for n in g.node:
            for a in n.attribute:
                for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                    out += nodes(sub)
        return out

    removed = 0
    for n in nodes(model.graph) + [n for f in model.functions for n in f.node]:
        for entry in [p for p in n.metadata_props if p.key == STACK_TRACE_KEY]:
            n.metadata_props.remove(entry)
            removed += 1
    return removed


def _check_io(proto: onnx.ModelProto, channels: int, noise_level_input: bool = False) -> None:
    """The exported graph has input ``noisy`` (and ``sigma`` ``(N, 1, H, W)`` for a noise-level-conditioned
    model) and one output ``denoised``, all with dynamic N, H, W."""
    ins = [i.name for i in proto.graph.input]
    outs = [o.name for o in proto.graph.output]
    want = [INPUT_NAME, SIGMA_NAME] if noise_level_input else [INPUT_NAME]
    if ins != want or outs != [OUTPUT_NAME]:
        raise ExportError(f"exported graph has inputs {ins} and outputs {outs}, expected {want} [{OUTPUT_NAME}]")
    expect = [(proto.graph.input[0], channels), (proto.graph.output[0], channels)]
    if noise_level_input:
        expect.append((proto.graph.input[1], 1))
    for vi, c in expect:
        dims = vi.type.tensor_type.shape.dim
        kinds = [d.dim_param or d.dim_value for d in dims]
        if len(dims) != 4 or kinds[1] != c or not all(isinstance(k, str) for k in (kinds[0], *kinds[2:])):
            raise ExportError(f"exported {vi.name!r} has shape {kinds}; expected (N, {c}, H, W) with N, H, W dynamic")


@dataclass(frozen=True)
class VerifyReport:
    """How closely an ONNX model reproduces the torch model on the same inputs.

    Attributes:
        max_abs_err: max |onnx - torch| over all output elements (float32 outputs on the [0, 1] scale).
        psnr_db: PSNR in dB between the two outputs, both clipped to [0, 1], peak 1.0 (``inf`` if identical).
        n_images: number of images compared.
    """

    max_abs_err: float
    psnr_db: float
    n_images: int


def run_onnx(path: str | Path, x: np.ndarray, *, threads: int = 1, sigma: np.ndarray | None = None) -> np.ndarray:
    """Run an ONNX model with ONNX Runtime's CPU provider.

    Args:
        path: ONNX file with input ``"noisy"`` (and ``"sigma"`` for a noise-level-conditioned model).
        x: ``(N, C, H, W)`` float32.
        threads: intra-op threads (1 keeps tests from competing with other work; 0 = one per core).
        sigma: ``(N, 1, H, W)`` float32 noise map in value units, for a model with a ``sigma`` input.

    Returns:
        ``(N, C, H, W)`` float32 (an fp16-output model's output is cast to float32).
    """
    from ..runtime.ort_session import cpu_session

    sess = cpu_session(path, threads=max(threads, 0))  # 0: ONNX Runtime picks (one per physical core)
    in_type = sess.get_inputs()[0].type
    feed = x.astype(np.float16 if "float16" in in_type else np.float32)
    inputs = {INPUT_NAME: feed}
    if len(sess.get_inputs()) > 1:
        if sigma is None:
            raise InvalidInputError(f"{path} takes a noise-level map {SIGMA_NAME!r}; pass sigma=")
        inputs[SIGMA_NAME] = np.ascontiguousarray(sigma, dtype=feed.dtype)
    (y,) = sess.run(None, inputs)
    return np.asarray(y, dtype=np.float32)


def verify_onnx(
    path: str | Path, model: nn.Module, inputs: np.ndarray | list[np.ndarray], sigma: float = 25.0
) -> VerifyReport:
    """Compare an ONNX export with the torch model it came from, on the same inputs, with ONNX Runtime (CPU).

    Args:
        path: the exported ONNX file.
        model: the torch model (run in eval mode, float32, on the CPU; not modified).
        inputs: one ``(N, C, H, W)`` float32 array or a list of them (sizes may differ, e.g. real images).
        sigma: σ (0-255 scale) of the uniform noise map given to a noise-level-conditioned model.

    Returns:
        :class:`VerifyReport` (max abs error and PSNR of ONNX vs torch, over all inputs).

    Raises:
        InvalidInputError: an input is not 4-D.
    """
    import torch

    from ..models import model_cfg

    takes_sigma = model_cfg(model).noise_level_input
    batches = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    was_training = model.training
    model.eval()
    max_err, sq, count, n = 0.0, 0.0, 0, 0
    try:
        for x in batches:
            if x.ndim != 4:
                raise InvalidInputError(f"verify_onnx inputs must be (N, C, H, W), got shape {x.shape}")
            x = np.ascontiguousarray(x, dtype=np.float32)
            smap = np.full((x.shape[0], 1, *x.shape[2:]), sigma / 255.0, np.float32) if takes_sigma else None
            y_onnx = run_onnx(path, x, sigma=smap)
            with torch.no_grad():
                args = (torch.from_numpy(x),) if smap is None else (torch.from_numpy(x), torch.from_numpy(smap))
                y_ref = model(*args).float().numpy()
            max_err = max(max_err, float(np.max(np.abs(y_onnx - y_ref))))
            d = np.clip(y_onnx, 0, 1).astype(np.float64) - np.clip(y_ref, 0, 1).astype(np.float64)
            sq += float(np.sum(d * d))
            count += d.size
            n += x.shape[0]
    finally:
        model.train(was_training)
    mse = sq / max(count, 1)
    return VerifyReport(max_err, float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse)), n)


def describe_graph(path: str | Path) -> dict[str, Any]:
    """Op-type histogram, opset and input names of an ONNX file:
    ``{"ops": {op_type: count}, "opset": int, "inputs": [name, ...]}``."""
    import onnx

    model = onnx.load_model(str(path), load_external_data=False)
    ops: dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return {"ops": ops, "opset": opset, "inputs": [i.name for i in model.graph.input]}


__all__ = [
    "DEFAULT_OPSET",
    "VerifyReport",
    "describe_graph",
    "export_onnx",
    "read_metadata",
    "run_onnx",
    "save_onnx_atomic",
    "set_metadata",
    "sha256_file",
    "verify_onnx",
]
