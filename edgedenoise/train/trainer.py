"""The training loop: patches + on-the-fly noise -> MSE, Adam or SGD, validation, checkpoints, resume, DDP.

Run it with ``edgedenoise train CONFIG.yaml`` or :func:`train`. Under ``torchrun`` (``WORLD_SIZE`` > 1) it
runs DistributedDataParallel (NCCL on CUDA, gloo on the CPU); every rank draws its own patches
(seed + rank) and rank 0 alone validates, logs and writes checkpoints. ``last.pt`` holds every rank's
sampler and noise generator states (``rank_rng``), so a resumed run with the same number of processes
continues exactly as an uninterrupted one; the log rows after the checkpoint's step are dropped on resume.

A run folder holds ``config.resolved.yaml``, ``log.csv``, ``last.pt`` (resumable), ``best.pt`` (best
validation PSNR) and ``best.safetensors`` (the weights, ready to ship). Checkpoints describe themselves:
``{arch, cfg, state_dict, metrics, config, git_rev, ...}`` and load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..data.noise import make_noise, noise_label
from ..data.patches import PatchSampler, load_folder
from ..models import create_model, model_cfg, save_weights
from ..runtime.errors import ConfigError
from ..runtime.imageio import list_images
from ..runtime.metrics import awgn, psnr, quantize8
from .config import TrainConfig, config_to_dict


def git_revision() -> str:
    """The repository's HEAD commit (``+dirty`` if modified), or ``unknown`` outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if rev.returncode:
            return "unknown"
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Learning rate at ``step`` given run ``progress`` in [0, 1] (see :class:`OptimConfig`)."""
    o = cfg.optim
    if o.warmup_steps and step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    p = min(max(progress, 0.0), 1.0)
    if o.schedule == "cosine":
        return o.min_lr + (o.lr - o.min_lr) * 0.5 * (1 + math.cos(math.pi * p))
    if o.schedule == "step":
        return o.lr * (0.1 if p >= 0.5 else 1.0) * (0.1 if p >= 0.75 else 1.0)
    if o.schedule == "constant":
        return o.lr
    raise ConfigError(f"unknown optim.schedule {o.schedule!r}; use cosine, step or constant")


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_dist(device: torch.device) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


class Validator:
    """Validation PSNR on fixed noisy images (σ = ``sigma``, seed per image index): the model's own input.

    Args:
        images: ``(C, H, W)`` float32 clean images in [0, 1].
        sigma: AWGN σ on the 0-255 scale.
        size_multiple: images are cropped to a multiple of it.
    """

    def __init__(self, images: list[np.ndarray], sigma: float, size_multiple: int = 1) -> None:
        self.sigma = sigma
        self.clean, self.noisy = [], []
        for i, im in enumerate(images):
            h = im.shape[1] - im.shape[1] % size_multiple
            w = im.shape[2] - im.shape[2] % size_multiple
            c = im[:, :h, :w]
            self.clean.append(c)
            self.noisy.append(awgn(c, sigma, seed=1000 + i))

    @torch.no_grad()
    def __call__(self, model: nn.Module, device: torch.device, fake_quant: Any = None) -> float:
        """Mean PSNR (dB, 8-bit protocol) of ``model`` over the validation images (with QAT: its fake-quantized
        ranges frozen meanwhile, so validation images never move them)."""
        was = model.training
        model.eval()
        if fake_quant is not None:
            fake_quant.observe(False)
        scores = []
        takes_sigma = model_cfg(model).noise_level_input
        for c, n in zip(self.clean, self.noisy, strict=True):
            x = torch.from_numpy(n)[None].to(device)
            out = model(x, torch.full_like(x[:, :1], self.sigma / 255.0)) if takes_sigma else model(x)
            out = out.float().cpu().numpy()[0]
            scores.append(psnr(quantize8(out), quantize8(c)))
        model.train(was)
        if fake_quant is not None:
            fake_quant.observe(True)
        return float(np.mean(scores))


def _native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX tiles), as oneDNN uses them."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def _loss(
    net: nn.Module,
    core: nn.Module,
    noisy: torch.Tensor,
    clean: torch.Tensor,
    alpha: float,
    sigma: torch.Tensor | None = None,
) -> torch.Tensor:
    if alpha < 1.0 and hasattr(core, "forward_all"):
        out, preds = net(noisy, return_all=True)  # through DDP's forward, so gradients are synchronised
        aux = sum(nn.functional.mse_loss(p.float(), clean) for p in preds) / len(preds)
        return alpha * nn.functional.mse_loss(out.float(), clean) + (1 - alpha) * aux
    out = net(noisy) if sigma is None else net(noisy, sigma)
    return nn.functional.mse_loss(out.float(), clean)


def _warm_start(model: nn.Module, path: str) -> None:
    """Load ``path`` (safetensors from ``save_weights``) into ``model``; shapes must match exactly (blind weights
    may start a noise-level-conditioned twin: its σ conv starts at zero).

    Raises:
        ConfigError: the file's tensors do not fit ``model`` (names the first mismatch).
    """
    from ..models import load_torch_model

    src = load_torch_model(path)
    state = src.state_dict()
    sigma_head = getattr(model, "sigma_head", None)
    if model_cfg(model).noise_level_input and not model_cfg(src).noise_level_input and sigma_head is not None:
        # a blind model's weights start its noise-level-conditioned twin: the σ-map conv starts at zero, so the
        # first forward pass is exactly the blind model's (edgedenoise.models.slim.add_noise_level_input)
        torch.nn.init.zeros_(sigma_head.weight)
        state = {**state, "sigma_head.weight": sigma_head.weight.detach().clone()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"init_weights {path!r} does not fit model {model_cfg(model).arch!r}: {first}") from exc


def _load_teacher(cfg: TrainConfig, in_channels: int, device: torch.device, fmt: Any) -> nn.Module | None:
    """The frozen distillation teacher of ``cfg.distill``, or ``None``.

    Raises:
        ConfigError: ``weight`` outside [0, 1], or a teacher with other input channels than the student.
    """
    d = cfg.distill
    if not d.teacher:
        return None
    if not 0.0 <= d.weight <= 1.0:
        raise ConfigError(f"distill.weight={d.weight} must be in [0, 1] (the teacher's share of the target)")
    from ..models import load_torch_model

    teacher = load_torch_model(d.teacher)
    if model_cfg(teacher).in_channels != in_channels:
        raise ConfigError(
            f"distill.teacher {d.teacher!r} takes {model_cfg(teacher).in_channels} channels, the student "
            f"{in_channels}; use a teacher trained on the same kind of images"
        )
    teacher = teacher.to(device).to(memory_format=fmt).eval()  # type: ignore[call-overload]
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def train(cfg: TrainConfig, resume: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg.model`` and return ``{"best_psnr", "best_step", "steps", "wall_s", "run_dir"}``.

    Args:
        cfg: the experiment.
        resume: a ``last.pt`` to continue from (model, optimiser, sampler and noise RNG state, step, clock).
        progress: show a tqdm bar (rank 0 only).

    Raises:
        ConfigError: bad optimiser/schedule names or data settings. InvalidInputError: unreadable images.
    """
    device = (
        torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if torch.cuda.is_available()
        else torch.device("cpu")
    )
    dd = _init_dist(device)
    if cfg.threads and device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch size: let cuDNN pick the fastest conv algorithms
    torch.manual_seed(cfg.seed)
    run_dir = Path(cfg.out_dir)
    try:
        noise = make_noise(
            cfg.noise.kind,
            cfg.noise.sigma,
            cfg.noise.a,
            cfg.noise.b,
            cfg.noise.clip,
            cfg.noise.zero_share,
            cfg.noise.clip8_share,
            cfg.noise.pg_share,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    overrides = dict(cfg.model_overrides)
    if overrides.setdefault("in_channels", cfg.data.in_channels) != cfg.data.in_channels:
        raise ConfigError(
            f"model_overrides.in_channels={overrides['in_channels']} contradicts data.in_channels="
            f"{cfg.data.in_channels}; set data.in_channels only"
        )
    model = create_model(cfg.model, noise=noise_label(noise), **overrides).to(device)
    # channels-last runs the convolutions about 20 % faster on this 2-core CPU (oneDNN); weights are saved
    # contiguous, so nothing downstream sees the layout.
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    if cfg.init_weights:
        _warm_start(model, cfg.init_weights)
    model = model.to(memory_format=fmt)  # type: ignore[call-overload]
    mcfg = model_cfg(model)
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ConfigError(f"ema_decay {cfg.ema_decay} is outside [0, 1); use e.g. 0.999, or 0 to turn it off")
    if cfg.ema_decay and cfg.qat:
        raise ConfigError("ema_decay cannot be combined with qat; set ema_decay: 0 for a QAT run")
    fake_quant = None
    if cfg.qat:
        from ..compress.qat import enable_fake_quant

        fake_quant = enable_fake_quant(model, cfg.qat_keep_float)
    teacher = _load_teacher(cfg, mcfg.in_channels, device, fmt)
    if cfg.data.patch_size % mcfg.size_multiple:
        raise ConfigError(f"data.patch_size {cfg.data.patch_size} must be a multiple of {mcfg.size_multiple}")

    files = list_images(cfg.data.train_dir)
    if cfg.data.val_dir:
        val_files = list_images(cfg.data.val_dir)
    else:
        if cfg.data.val_holdout >= len(files):
            raise ConfigError(f"data.val_holdout={cfg.data.val_holdout} leaves no training images")
        val_files = files[len(files) - cfg.data.val_holdout :]
        files = files[: len(files) - cfg.data.val_holdout]
    if isinstance(cfg.data.extra_train_dirs, str):
        raise ConfigError(
            f"data.extra_train_dirs must be a list of folders, got the string {cfg.data.extra_train_dirs!r}; "
            "write it as [folder]"
        )
    train_images = load_folder(cfg.data.train_dir, mcfg.in_channels, files)
    for extra in cfg.data.extra_train_dirs:
        train_images += load_folder(extra, mcfg.in_channels)
    sampler = PatchSampler(
        train_images,
        cfg.data.patch_size,
        seed=cfg.seed * 1000 + dd.rank,
    )
    validator = (
        Validator(
            load_folder("validation", mcfg.in_channels, val_files), cfg.data.val_sigma, mcfg.size_multiple
        )
        if dd.main
        else None
    )
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + dd.rank)

    o = cfg.optim
    if o.name == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(
            model.parameters(), lr=o.lr, weight_decay=o.weight_decay
        )
    elif o.name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    else:
        raise ConfigError(f"unknown optim.name {o.name!r}; use adam or sgd")
    use_amp = cfg.amp and device.type == "cuda"
    if cfg.cpu_bf16 and device.type != "cpu":
        raise ConfigError(f"cpu_bf16 applies to CPU training, this run is on {device.type}; set cpu_bf16: false")
    if cfg.cpu_bf16 and not _native_bf16():
        raise ConfigError(
            "cpu_bf16: this CPU has neither AVX-512 BF16 nor AMX, so bfloat16 would be emulated and slower than "
            "float32; set cpu_bf16: false"
        )
    autocast_dtype = torch.bfloat16 if cfg.cpu_bf16 else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    step, best, best_step, elapsed_before = 0, -math.inf, -1, 0.0
    ema_state = None
    if resume:
        from ..models.pretrained import load_torch_checkpoint

        ck = load_torch_checkpoint(resume)  # torch.load(weights_only=True); one-line ArtifactError if refused
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        sampler.set_state(ck["sampler_state"])
        gen.set_state(ck["noise_rng"])
        rank_rng = ck.get("rank_rng") or []  # one entry per rank (absent in checkpoints of older versions)
        if dd.rank < len(rank_rng):
            sampler.set_state(rank_rng[dd.rank]["sampler_state"])
            gen.set_state(rank_rng[dd.rank]["noise_rng"])
        elif dd.rank > 0:  # more processes than the checkpoint saw: rank 0's streams must not be repeated
            warnings.warn(
                f"{resume}: no RNG state for rank {dd.rank}; it draws fresh patches/noise, so this run will not "
                "match an uninterrupted one",
                stacklevel=2,
            )
            sampler = PatchSampler(sampler.images, cfg.data.patch_size, seed=(cfg.seed * 1000 + dd.rank) ^ ck["step"])
            gen = torch.Generator().manual_seed((cfg.seed * 7919 + dd.rank) ^ ck["step"])
        if ck.get("scaler") and use_amp:
            scaler.load_state_dict(ck["scaler"])
        step, best, best_step = ck["step"], ck["metrics"]["best_psnr"], ck["metrics"]["best_step"]
        elapsed_before = ck["metrics"]["wall_s"]
        ema_state = ck.get("ema")
    ema = None
    if cfg.ema_decay:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
        if ema_state:
            ema.load_state_dict(ema_state)
    scored: nn.Module = ema.module if ema is not None else model  # what validation scores and best.* hold
    net: nn.Module = model
    if dd.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    log_f = None
    writer = None
    if dd.main:
        import yaml

        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.resolved.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
        new_log = not (run_dir / "log.csv").exists() or not resume
        if not new_log:  # drop rows logged after the checkpoint, so the resumed rows do not repeat steps
            with open(run_dir / "log.csv", newline="") as f:
                rows = list(csv.reader(f))
            tmp_log = run_dir / "log.csv.tmp"
            with open(tmp_log, "w", newline="") as f:
                csv.writer(f).writerows(rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= step])
            tmp_log.replace(run_dir / "log.csv")
        log_f = open(run_dir / "log.csv", "w" if new_log else "a", newline="")  # noqa: SIM115
        log = csv.writer(log_f)
        if new_log:
            log.writerow(["step", "loss", "lr", "val_psnr", "wall_s"])
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run_dir / "tb"))

    def rng_states() -> list[dict[str, Any]]:
        """Every rank's sampler and noise-generator state (a collective call under DDP: all ranks call it)."""
        mine = {"sampler_state": sampler.state(), "noise_rng": gen.get_state()}
        if dd.world == 1:
            return [mine]
        everyone: list[Any] = [None] * dd.world
        dist.all_gather_object(everyone, mine)
        return everyone

    def checkpoint(
        path: Path, wall: float, rank_rng: list[dict[str, Any]] | None = None, weights: nn.Module | None = None
    ) -> None:
        tmp = path.with_name(path.name + ".tmp")
        torch.save(
            {
                "arch": mcfg.arch,
                "cfg": mcfg.to_json(),
                "overrides": overrides,
                "state_dict": (model if weights is None else weights).state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "optimizer": opt.state_dict(),
                "sampler_state": sampler.state(),
                "noise_rng": gen.get_state(),
                "rank_rng": rank_rng or [],
                "scaler": scaler.state_dict(),
                "step": step,
                "metrics": {"best_psnr": best, "best_step": best_step, "wall_s": wall},
                "config": config_to_dict(cfg),
                "git_rev": git_revision(),
            },
            tmp,
        )
        tmp.replace(path)

    t0 = time.time() - elapsed_before
    bar = None
    if progress and dd.main:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc=cfg.model, dynamic_ncols=True)
    budget_s = cfg.time_budget_min * 60.0
    # the running loss stays on the device between log lines: no host sync per step, so the CPU queues the
    # next step's kernels while the GPU runs this one
    run_loss = torch.zeros((), device=device)
    net.train()
    while step < cfg.steps:
        wall = time.time() - t0
        prog = max(step / cfg.steps, wall / budget_s if budget_s else 0.0)
        if budget_s and dd.world > 1:  # rank 0's clock decides, so all ranks use one LR and stop together
            shared = torch.tensor([prog], dtype=torch.float64, device=device)
            dist.broadcast(shared, src=0)
            prog = float(shared.item())
        if prog >= 1.0:
            break
        lr = lr_at(cfg, step, prog)
        for g in opt.param_groups:
            g["lr"] = lr
        clean = sampler.batch(cfg.data.batch_size)
        noisy, sigma_map = noise.sample(clean, gen)
        clean = clean.to(device, non_blocking=True).contiguous(memory_format=fmt)
        noisy = noisy.to(device, non_blocking=True).contiguous(memory_format=fmt)
        sigma_in = (
            sigma_map.to(device, non_blocking=True).contiguous(memory_format=fmt) if mcfg.noise_level_input else None
        )
        if teacher is not None:  # distillation: one MSE against the blend of clean and teacher (DistillConfig)
            with torch.no_grad():
                t_cond = model_cfg(teacher).noise_level_input
                t_out = teacher(noisy, sigma_map.to(device)) if t_cond else teacher(noisy)
                clean = torch.lerp(clean, t_out.float(), cfg.distill.weight)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=use_amp or cfg.cpu_bf16):
            loss = _loss(net, model, noisy, clean, cfg.multi_supervision, sigma_in)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if o.grad_clip > 0:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        scaler.step(opt)
        scaler.update()
        if ema is not None:
            ema.update_parameters(model)
        step += 1
        run_loss += loss.detach().float()
        states = rng_states() if step % cfg.ckpt_every == 0 else None  # collective: before ranks part ways
        if not dd.main:
            continue
        if bar is not None:
            bar.update(1)
        val = ""
        if step % cfg.val_every == 0 or step == cfg.steps:
            assert validator is not None
            v = validator(scored, device, fake_quant)
            val = f"{v:.3f}"
            if v > best:
                best, best_step = v, step
                checkpoint(run_dir / "best.pt", time.time() - t0, weights=scored)
                save_weights(scored, run_dir / "best.safetensors", {"step": str(step), "val_psnr": val})
            if writer is not None:
                writer.add_scalar("val_psnr", v, step)
        if step % cfg.log_every == 0 or val:
            n = cfg.log_every if step % cfg.log_every == 0 else 1
            mean_loss = float(run_loss) / n
            log.writerow([step, f"{mean_loss:.6g}", f"{lr:.3g}", val, f"{time.time() - t0:.1f}"])
            assert log_f is not None
            log_f.flush()
            if bar is not None:
                bar.set_postfix(loss=f"{mean_loss:.2e}", lr=f"{lr:.1e}", best=f"{best:.2f}")
            if writer is not None:
                writer.add_scalar("loss", mean_loss, step)
            run_loss.zero_()
        if step % cfg.ckpt_every == 0:
            checkpoint(run_dir / "last.pt", time.time() - t0, states)

    wall = time.time() - t0
    states = rng_states()
    if dd.main:
        assert validator is not None
        v = validator(scored, device, fake_quant)
        if v > best:
            best, best_step = v, step
            checkpoint(run_dir / "best.pt", wall, weights=scored)
            save_weights(scored, run_dir / "best.safetensors", {"step": str(step), "val_psnr": f"{v:.3f}"})
        checkpoint(run_dir / "last.pt", wall, states)
        if bar is not None:
            bar.close()
        if log_f is not None:
            log_f.close()
        if writer is not None:
            writer.close()
    if dd.world > 1:
        result: list[Any] = [best, best_step]  # every rank returns rank 0's validation result
        dist.broadcast_object_list(result, src=0)
        best, best_step = result
        dist.barrier()
    return {"best_psnr": best, "best_step": best_step, "steps": step, "wall_s": wall, "run_dir": str(run_dir)}
