"""The I/O contract of a denoising model: :class:`ModelCfg`.

The training side declares it next to each architecture; the export stage writes it, as JSON, into the
ONNX ``metadata_props`` (key ``edgedenoise.cfg``) and into an engine's JSON sidecar; the runtime reads it
back from the artifact and never hard-codes a model's contract.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from .errors import ArtifactError

# Keys of ONNX metadata_props written by the export stage and read by the runtime.
CFG_METADATA_KEY = "edgedenoise.cfg"  # ModelCfg JSON
PRECISION_KEY = "edgedenoise.precision"  # "fp32" | "fp16" | "int8"
FLAVOUR_KEY = (
    "edgedenoise.flavour"  # INT8 flavour: "cpu" (U8S8 QDQ) | "trt" (symmetric S8S8 QDQ); "" otherwise
)
WEIGHTS_SHA_KEY = "edgedenoise.weights_sha256"  # sha256 of the source weights file
QUALITY_KEY = "edgedenoise.quality"  # JSON: PSNR/SSIM vs FP32 on the validation images, what was kept in FP32
VERSION_KEY = "edgedenoise.version"  # edgedenoise version that wrote the artifact
MACS_PER_PIXEL_KEY = "edgedenoise.macs_per_pixel"  # float as str: Conv MACs per input pixel of the exported graph
# float as str: bytes of float32 Conv outputs per input pixel summed over one forward pass (an upper bound of
# the activation memory; read by the Denoiser to tile only what would not fit its memory budget)
ACTIVATION_BYTES_KEY = "edgedenoise.activation_bytes_per_pixel"
INPUT_NAME = "noisy"  # (N, C, H, W) float32 (fp16 models: float32 I/O unless exported otherwise)
OUTPUT_NAME = "denoised"  # (N, C, H, W), same dtype as the input
# Second input of noise-level-conditioned models (ModelCfg.noise_level_input): (N, 1, H, W) float32, the noise
# standard deviation per pixel in value-range units (σ on the 0-255 scale / 255 for 8-bit data and value_range
# (0, 1)). A uniform map is AWGN at one σ; sqrt(a·x + b) is Poisson-Gaussian camera noise.
SIGMA_NAME = "sigma"


@dataclass(frozen=True)
class ModelCfg:
    """What a model takes and returns.

    Attributes:
        arch: registered architecture name, e.g. ``"rednet30"``.
        in_channels: 1 (gray) or 3 (RGB); the output has the same number of channels.
        value_range: ``(low, high)`` of input and output pixel values; ``(0.0, 1.0)`` for every model here.
            The noisy input may fall outside it (AWGN is not clipped); outputs are clipped to it by users.
        size_multiple: H and W must be multiples of this (1 for stride-1 nets, 2 for a stride-2 encoder).
            The runtime pads (reflect) and crops back.
        residual: True if the network predicts the noise internally and subtracts it from its input
            (the image-level skip); the model's output is always the clean image estimate.
        receptive_field: side of the receptive field in input pixels; tiles overlap by at least this.
        noise: what the weights were trained for, e.g. ``"awgn:0-55"`` (blind AWGN, σ on the 0-255 scale),
            ``"awgn:25"`` or ``"untrained"``.
        noise_level_input: True if the model takes a second input, the per-pixel noise standard deviation
            ``sigma`` ``(N, 1, H, W)`` float32 in value-range units (non-blind, as FFDNet: Zhang et al., IEEE TIP
            2018, Sec. III-B); False for blind models, which take ``noisy`` alone.
    """

    arch: str
    in_channels: int = 1
    value_range: tuple[float, float] = (0.0, 1.0)
    size_multiple: int = 1
    residual: bool = True
    receptive_field: int = 1
    noise: str = "untrained"
    noise_level_input: bool = False

    def __post_init__(self) -> None:
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {self.in_channels}")
        if self.size_multiple < 1:
            raise ValueError(f"size_multiple must be >= 1, got {self.size_multiple}")
        object.__setattr__(self, "value_range", tuple(float(v) for v in self.value_range))

    def replace(self, **changes: Any) -> ModelCfg:
        """Return a copy with ``changes`` applied (the dataclass is frozen)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        """Serialise to a compact JSON object (the form stored in artifacts)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCfg:
        """Parse :meth:`to_json` output.

        Raises:
            ArtifactError: the text is not a JSON object with exactly the known fields.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"model contract is not valid JSON ({exc}); re-export the model") from exc
        if not isinstance(data, dict):
            raise ArtifactError("model contract must be a JSON object; re-export the model")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown or "arch" not in data:
            raise ArtifactError(
                f"model contract has unknown fields {sorted(unknown)} or lacks 'arch'; "
                "re-export the model with this version of edgedenoise"
            )
        try:
            if "value_range" in data:
                data["value_range"] = tuple(data["value_range"])
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"model contract is invalid: {exc}; re-export the model") from exc
