"""Training configuration: one YAML file per experiment, loaded into frozen dataclasses.

Unknown keys are rejected (with the valid ones listed); the resolved config is written into the run folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..runtime.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    """Where clean images come from and how patches are cut.

    ``val_holdout`` images (the last ones of the sorted training folder) are kept out of training and used
    for validation PSNR at ``val_sigma`` (fixed noise seed), unless ``val_dir`` names another folder. Test
    sets (Set12, BSD68, ...) must not be used to select checkpoints. ``extra_train_dirs`` adds every image of
    further folders to the training images (none is held out; colour files become gray for a gray model, see
    :func:`edgedenoise.data.patches.load_folder`); patches are drawn image by image, uniformly over all of them.
    """

    train_dir: str = "../shared/data/Train400"
    extra_train_dirs: list[str] = field(default_factory=list)
    in_channels: int = 1
    patch_size: int = 50
    batch_size: int = 16
    val_dir: str | None = None
    val_holdout: int = 8
    val_sigma: float = 25.0


@dataclass(frozen=True)
class NoiseConfig:
    """Noise added on the fly: ``awgn`` (sigma: σ), ``awgn_blind`` (sigma: [min, max]), ``poisson_gaussian``.

    With ``awgn_blind``, ``zero_share`` of the images stay clean (σ = 0) and ``clip8_share`` are clipped and
    rounded to 8 bits as a noisy file is (:class:`edgedenoise.data.noise.BlindAWGN`). A model with a
    noise-level input is given the σ map of the noise drawn (the nominal σ for the 8-bit images).
    ``pg_share`` of them get Poisson-Gaussian camera noise instead, ``a`` and ``b`` drawn up to the given values.
    """

    kind: str = "awgn_blind"
    sigma: Any = field(default_factory=lambda: [0.0, 55.0])
    a: float = 0.01
    b: float = 0.0004
    clip: bool = False
    zero_share: float = 0.0
    clip8_share: float = 0.0
    pg_share: float = 0.0


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule.

    ``name``: ``adam`` (RED-Net) or ``sgd`` (MemNet, with momentum and gradient clipping). The learning rate
    warms up linearly for ``warmup_steps``, then follows ``schedule`` (``cosine`` to ``min_lr``, ``step``:
    x0.1 at 50 % and 75 %, or ``constant``) over the run's progress (see :class:`TrainConfig`).
    """

    name: str = "adam"
    lr: float = 1e-3
    min_lr: float = 1e-6
    momentum: float = 0.9
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    schedule: str = "cosine"
    warmup_steps: int = 100


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation from a frozen teacher (Hinton et al., "Distilling the Knowledge in a Neural
    Network", 2015, applied to regression as the teacher's output used as a soft target).

    ``teacher``: a model name with shipped weights or a ``.safetensors`` / trainer ``.pt`` file; ``None``
    trains on the clean image only. ``weight`` α in [0, 1]: the loss is
    ``(1 - α) * MSE(student, clean) + α * MSE(student, teacher)``, computed as one MSE against the blended
    target ``(1 - α) * clean + α * teacher`` (same gradient; the two differ by a constant).
    """

    teacher: str | None = None
    weight: float = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """One experiment.

    ``steps`` is the schedule length; ``time_budget_min`` (if > 0) ends the run early on wall time, and the
    schedule then follows ``progress = max(step / steps, elapsed / budget)`` so the learning rate still
    anneals fully before the budget runs out (useful on slow machines). ``multi_supervision`` (MemNet) is
    the weight α of the final output's loss; the per-block outputs share 1 - α (Tai et al. 2017, Eq. 9).
    ``init_weights`` warm-starts the model from a ``.safetensors`` file written by ``save_weights`` (e.g. a
    pruned model, or a student's earlier phase) with a fresh optimiser and schedule; ``distill`` adds a teacher.
    ``qat`` fine-tunes under simulated INT8 (:mod:`edgedenoise.compress.qat`; the Convs named in
    ``qat_keep_float`` stay float, by default the first, as the export keeps it); validation PSNR is then the
    simulated INT8 one. ``ema_decay`` d in (0, 1) keeps an exponential moving average of the weights (and
    buffers), ``avg = d * avg + (1 - d) * weights`` after every optimiser step, starting from the first step's
    weights (``torch.optim.swa_utils.AveragedModel``; KAIR trains its denoisers with d = 0.999): validation,
    ``best.safetensors`` and ``best.pt``'s ``state_dict`` are then the averaged weights, while ``last.pt`` keeps
    the raw ones (to resume) and the average under ``"ema"``. 0 turns it off; not combined with ``qat``.
    ``amp`` runs a CUDA run's forward pass in float16 with loss scaling. ``cpu_bf16`` runs a CPU run's forward
    pass under bfloat16 autocast (weights, optimiser state, loss and validation stay float32); on CPUs with
    AVX-512 BF16 / AMX (Intel Sapphire Rapids and later) oneDNN's bfloat16 convolutions make a training step
    about 3.6x faster (``rednet18_slim64_u2_nl``, batch 8 of 128 x 128, two cores; 8.1 against 2.5 steps per
    second over a whole run). Refused on a CPU without native bfloat16 (it would be emulated, slower than
    float32) and on a GPU run (use ``amp``).
    """

    model: str = "rednet30"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    steps: int = 10000
    time_budget_min: float = 0.0
    val_every: int = 250
    ckpt_every: int = 100
    log_every: int = 20
    seed: int = 0
    out_dir: str = "runs/exp"
    amp: bool = True
    cpu_bf16: bool = False
    threads: int = 0
    channels_last: bool = True
    multi_supervision: float = 1.0
    tensorboard: bool = False
    init_weights: str | None = None
    distill: DistillConfig = field(default_factory=DistillConfig)
    qat: bool = False
    qat_keep_float: list[str] | None = None
    ema_decay: float = 0.0


T = TypeVar("T")


def _build(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {unknown} in {where or 'config'}; valid keys: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        sub = (
            {"data": DataConfig, "noise": NoiseConfig, "optim": OptimConfig, "distill": DistillConfig}.get(name)
            if cls is TrainConfig
            else None
        )
        kwargs[name] = _build(sub, value, f"{where}{name}.") if sub else value
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig` from a mapping (e.g. parsed YAML).

    Raises:
        ConfigError: unknown keys (named, with the valid ones) or a non-mapping section.
    """
    return _build(TrainConfig, data, "")


def load_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a YAML config file; ``overrides`` replace top-level keys (e.g. ``out_dir``, ``steps``).

    Raises:
        ConfigError: missing file, invalid YAML, or unknown keys.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(data)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain-dict form of a config (what is saved as ``config.resolved.yaml`` and in checkpoints)."""
    return dataclasses.asdict(cfg)
