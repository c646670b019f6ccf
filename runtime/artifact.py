"""Model artifacts as the runtime sees them: where a model file is, and the contract it carries.

An artifact describes itself: an ONNX file holds the :class:`~.contract.ModelCfg` JSON and its
precision in ``metadata_props`` (read through ONNX Runtime's ``session.get_modelmeta().custom_metadata_map``;
the runtime never imports the ``onnx`` package); a TensorRT engine has a JSON sidecar
(:mod:`.engine_meta`). Nothing here hard-codes a model's contract.

A MODEL argument is either a path to an artifact or the name of a shipped model, which resolves to
``edgedenoise/weights/<name>.onnx`` (the FP32 ONNX exported from the shipped weights).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.resources
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .contract import CFG_METADATA_KEY, FLAVOUR_KEY, PRECISION_KEY, ModelCfg
from .errors import ArtifactError, UnknownModelError

ONNX_SUFFIX = ".onnx"
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
PRECISIONS = ("fp32", "fp16", "int8")
# Family aliases accepted wherever a model name is (the same table as the torch-side model registry).
MODEL_ALIASES = {"rednet": "rednet30", "memnet": "memnet_m6r6"}


@dataclass(frozen=True)
class ArtifactContract:
    """What an artifact says about itself.

    Attributes:
        cfg: the model's I/O contract.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"`` (``"fp32"`` when the artifact does not say).
        flavour: INT8 flavour (``"cpu"`` U8S8 QDQ, ``"trt"`` symmetric S8S8 QDQ) or ``""``.
        metadata: every ``edgedenoise.*`` key/value the artifact holds, for reporting.
    """

    cfg: ModelCfg
    precision: str = "fp32"
    flavour: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], source: str) -> ArtifactContract:
        """Parse ONNX ``metadata_props`` (as a ``{key: value}`` map).

        Args:
            meta: the map, e.g. ``session.get_modelmeta().custom_metadata_map``.
            source: the file name, for error messages.

        Raises:
            ArtifactError: the contract key is missing or invalid, or the precision is unknown.
        """
        if CFG_METADATA_KEY not in meta:
            raise ArtifactError(
                f"{source}: no edgedenoise contract in the ONNX metadata (key {CFG_METADATA_KEY!r}); "
                "export the model with `edgedenoise export`, which records its ModelCfg there"
            )
        try:
            cfg = ModelCfg.from_json(meta[CFG_METADATA_KEY])
        except ArtifactError as exc:
            raise ArtifactError(f"{source}: {exc}") from exc
        precision = meta.get(PRECISION_KEY, "fp32") or "fp32"
        if precision not in PRECISIONS:
            raise ArtifactError(
                f"{source}: unknown precision {precision!r} in metadata key {PRECISION_KEY!r} "
                f"(expected one of {', '.join(PRECISIONS)}); re-export the model"
            )
        ours = {k: v for k, v in meta.items() if k.startswith("edgedenoise.")}
        return cls(cfg=cfg, precision=precision, flavour=meta.get(FLAVOUR_KEY, ""), metadata=ours)


def weights_dir() -> Path:
    """The folder of shipped model files, ``edgedenoise/weights`` inside the installed package."""
    return Path(str(importlib.resources.files("edgedenoise").joinpath("weights")))


def shipped_onnx_models() -> list[str]:
    """Names of the models whose FP32 ONNX ships in :func:`weights_dir`, sorted.

    Other precisions ship beside it as ``<name>.<precision>[.<flavour>].onnx`` (e.g. ``rednet30.int8.cpu.onnx``);
    they are not separate models, and such a stem also resolves as a name (``rednet30.int8.cpu``).
    """
    folder = weights_dir()
    return sorted(p.stem for p in folder.glob(f"*{ONNX_SUFFIX}") if "." not in p.stem) if folder.is_dir() else []


def shipped_table() -> list[dict[str, Any]]:
    """The shipped models as a runtime install sees them, without torch: one row per FP32 ONNX in
    :func:`weights_dir`, from its model card (``<name>.json``) where one ships.

    Row keys: ``name``, ``precisions`` (e.g. ``["fp32", "int8.cpu"]``, the files beside it), ``macs_per_pixel``
    (float or None), ``inputs`` (``"noisy gray"`` / ``"noisy RGB"``, plus ``", sigma"`` for a model told the noise
    level), ``noise`` (what it was trained on), ``bsd68_sigma25`` (the card's FP32 PSNR in dB at σ 25 on BSD68,
    or on CBSD68 for a colour model; None when the card has none) and ``test_set`` (that set's name).
    """
    folder = weights_dir()
    rows = []
    for name in shipped_onnx_models():
        stems = sorted(p.stem for p in folder.glob(f"{name}.*{ONNX_SUFFIX}"))
        card: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            card = json.loads((folder / f"{name}.json").read_text())
        cfg = card.get("cfg") or {}
        psnr = None
        test_set = "CBSD68" if cfg.get("in_channels") == 3 else "BSD68"
        for r in (card.get("evaluation", {}).get("sets", {}).get(test_set, {}).get("results") or []):
            if r.get("sigma") == 25.0 and r.get("model_sigma", "true") == "true" and not r.get("clip8"):
                psnr = r.get("psnr")
        rows.append(
            {
                "name": name,
                "precisions": ["fp32"] + [st[len(name) + 1 :] for st in stems],
                "macs_per_pixel": card.get("macs_per_pixel"),
                "inputs": ("noisy RGB" if cfg.get("in_channels") == 3 else "noisy gray")
                + (", sigma" if cfg.get("noise_level_input") else ""),
                "noise": cfg.get("noise", "?"),
                "bsd68_sigma25": psnr,
                "test_set": test_set,
            }
        )
    return rows


def is_engine_path(path: str | Path) -> bool:
    """True if ``path`` names a TensorRT engine (``.engine``, ``.plan``, ``.trt``)."""
    return Path(path).suffix.lower() in ENGINE_SUFFIXES


def resolve_model(model: str | Path) -> Path:
    """Turn a MODEL argument into an artifact path.

    Args:
        model: a path to an ``.onnx`` / ``.engine`` file, or a shipped model name or alias
            (``rednet`` -> ``rednet30``), which resolves to ``edgedenoise/weights/<name>.onnx``.

    Returns:
        The path of an existing file.

    Raises:
        ArtifactError: a path (it has a folder part or a model suffix) that does not exist or is a folder.
        UnknownModelError: a name with no shipped ONNX; the message says how to export it.
    """
    text = str(model)
    path = Path(text)
    if path.is_file():
        return path
    looks_like_path = path.suffix.lower() in (ONNX_SUFFIX, *ENGINE_SUFFIXES) or "/" in text or "\\" in text
    if looks_like_path:
        what = "is a folder, not a model file" if path.is_dir() else "does not exist"
        raise ArtifactError(f"model file {text!r} {what}; pass an .onnx or .engine file or a shipped model name")
    name = MODEL_ALIASES.get(text, text)
    candidate = weights_dir() / f"{name}{ONNX_SUFFIX}"
    if candidate.is_file():
        return candidate
    folder = weights_dir()
    stems = sorted(p.stem for p in folder.glob(f"*{ONNX_SUFFIX}")) if folder.is_dir() else []
    close = [st for st in stems if st.startswith(name + ".")]
    if close:
        raise UnknownModelError(f"no shipped file {name}{ONNX_SUFFIX}; did you mean {' or '.join(close)}?")
    base = name.split(".")[0]
    precision = name.split(".")[1] if "." in name else ""
    flag = f" --{precision}" if precision in ("int8", "fp16") else ""
    names = sorted({st.split(".")[0] for st in stems})
    typo = difflib.get_close_matches(base, names, n=1, cutoff=0.75)
    if typo:
        suffix = f".{precision}" if precision else ""
        raise UnknownModelError(f"no shipped model {text!r}; did you mean {typo[0] + suffix!r}?")
    raise UnknownModelError(
        f"no shipped ONNX for model {text!r} (shipped: {', '.join(stems) or 'none'}); for a registered "
        f"architecture with trained weights, create it with `edgedenoise export --model {base}{flag}` and pass "
        "the .onnx path"
    )
