"""edgedenoise.train: config validation, LR schedule, a tiny end-to-end run, exact resume, and DDP under torchrun."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_train_config

import edgedenoise.train.trainer as trainer_mod
from edgedenoise.errors import ConfigError
from edgedenoise.models import load_weights
from edgedenoise.train import TrainConfig, config_from_dict, load_config, train
from edgedenoise.train.config import config_to_dict
from edgedenoise.train.trainer import lr_at

ROOT = Path(__file__).resolve().parent.parent


def _weights_sha(state: dict[str, torch.Tensor]) -> str:
    return hashlib.sha256(b"".join(state[k].detach().cpu().numpy().tobytes() for k in sorted(state))).hexdigest()


def _log_steps(run: Path) -> list[int]:
    with open(run / "log.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


# ---------------------------------------------------------------- config


def test_unknown_keys_are_rejected_and_named() -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"model": "rednet30", "stepz": 10})
    assert "'stepz'" in str(err.value) and "valid keys" in str(err.value) and "steps" in str(err.value)
    with pytest.raises(ConfigError) as err:
        config_from_dict({"optim": {"name": "adam", "lr_max": 1e-3}})
    assert "'lr_max'" in str(err.value) and "optim." in str(err.value)
    with pytest.raises(ConfigError, match="data. must be a mapping"):
        config_from_dict({"data": [1, 2]})


def test_load_config_yaml_overrides_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("model: rednet10\nsteps: 50\noptim: {name: sgd, grad_clip: 0.4}\n")
    cfg = load_config(path, steps=7, out_dir=None)
    assert isinstance(cfg, TrainConfig)
    assert (cfg.model, cfg.steps, cfg.optim.name, cfg.optim.grad_clip) == ("rednet10", 7, "sgd", 0.4)
    assert cfg.out_dir == TrainConfig().out_dir  # None overrides are ignored
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(tmp_path / "list.yaml")


def test_lr_schedule_values() -> None:
    cfg = config_from_dict({"optim": {"lr": 1.0, "min_lr": 0.0, "warmup_steps": 4, "schedule": "cosine"}})
    assert [lr_at(cfg, s, 0.0) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(cfg, 10, 0.0) == pytest.approx(1.0)
    assert lr_at(cfg, 10, 0.5) == pytest.approx(0.5)
    assert lr_at(cfg, 10, 1.0) == pytest.approx(0.0, abs=1e-12)
    step = config_from_dict({"optim": {"lr": 1.0, "warmup_steps": 0, "schedule": "step"}})
    assert [lr_at(step, 9, p) for p in (0.1, 0.5, 0.8)] == pytest.approx([1.0, 0.1, 0.01])
    with pytest.raises(ConfigError, match="unknown optim.schedule 'linear'"):
        lr_at(config_from_dict({"optim": {"schedule": "linear", "warmup_steps": 0}}), 5, 0.5)


# ---------------------------------------------------------------- a tiny run


def test_tiny_run_writes_a_self_describing_run_folder(images: Path, tmp_path: Path) -> None:
    cfg = config_from_dict(tiny_train_config(images, tmp_path / "run", steps=6))
    res = train(cfg, progress=False)
    run = Path(res["run_dir"])
    assert res["steps"] == 6 and math.isfinite(res["best_psnr"]) and res["best_step"] in (2, 4, 6)
    # the resolved config reads back into the same config
    assert config_from_dict(yaml.safe_load((run / "config.resolved.yaml").read_text())) == cfg
    assert _log_steps(run) == [1, 2, 3, 4, 5, 6]
    ck = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    assert {"arch", "cfg", "state_dict", "metrics", "config", "git_rev", "step"} <= set(ck)
    assert ck["arch"] == "rednet10" and ck["step"] == 6 and ck["config"] == config_to_dict(cfg)
    assert json.loads(ck["cfg"])["noise"] == "awgn:0-55"
    model = load_weights(run / "best.safetensors")
    assert model.cfg.noise == "awgn:0-55" and model.cfg.arch == "rednet10"
    best = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    assert _weights_sha(model.state_dict()) == _weights_sha(best["state_dict"])
    assert best["metrics"]["best_psnr"] == pytest.approx(res["best_psnr"])


def test_bad_optimiser_name_is_a_config_error(images: Path, tmp_path: Path) -> None:
    cfg = config_from_dict(tiny_train_config(images, tmp_path / "run", optim={"name": "rmsprop"}))
    with pytest.raises(ConfigError, match="unknown optim.name 'rmsprop'"):
        train(cfg, progress=False)


def test_data_in_channels_sets_the_model_channels(images: Path, tmp_path: Path) -> None:
    cfg = tiny_train_config(images, tmp_path / "rgb", steps=2)
    cfg["data"] = dict(cfg["data"], in_channels=3)
    train(config_from_dict(cfg), progress=False)
    ck = torch.load(tmp_path / "rgb" / "last.pt", map_location="cpu", weights_only=True)
    assert ck["overrides"] == {"features": 4, "in_channels": 3} and json.loads(ck["cfg"])["in_channels"] == 3
    assert load_weights(tmp_path / "rgb" / "best.safetensors").cfg.in_channels == 3
    cfg["model_overrides"] = {"features": 4, "in_channels": 1}
    with pytest.raises(ConfigError, match="model_overrides.in_channels=1 contradicts data.in_channels=3"):
        train(config_from_dict(cfg), progress=False)


def test_extra_train_dirs_join_the_training_images(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every image of an extra folder joins the 4 training images (nothing held out of it); a colour file
    becomes gray with BT.601 luma, as Pillow's ``convert("L")`` (the oracle) computes it."""
    from PIL import Image

    extra = tmp_path / "extra"
    extra.mkdir()
    rng = np.random.default_rng(1)
    rgb = [rng.integers(0, 256, (20, 18, 3), dtype=np.uint8) for _ in range(2)]
    for i, a in enumerate(rgb):
        Image.fromarray(a).save(extra / f"c{i}.png")
    seen: list[list[np.ndarray]] = []
    real = trainer_mod.PatchSampler

    def spy(imgs: list[np.ndarray], *a: object, **k: object) -> object:
        seen.append(imgs)
        return real(imgs, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(trainer_mod, "PatchSampler", spy)
    cfg = tiny_train_config(images, tmp_path / "run", steps=1)
    cfg["data"] = dict(cfg["data"], extra_train_dirs=[str(extra)])
    train(config_from_dict(cfg), progress=False)
    (imgs,) = seen
    assert [im.shape for im in imgs] == [(1, 24, 24)] * 4 + [(1, 20, 18)] * 2
    for im, a in zip(imgs[4:], rgb, strict=True):
        luma = np.asarray(Image.fromarray(a).convert("L"), dtype=np.float64) / 255
        assert np.abs(im[0] - luma).max() <= 0.5 / 255 + 1e-6

    cfg["data"] = dict(cfg["data"], extra_train_dirs=str(extra))
    with pytest.raises(ConfigError, match="data.extra_train_dirs must be a list of folders"):
        train(config_from_dict(cfg), progress=False)


def test_ema_weights_are_the_exponential_average_of_the_steps(images: Path, tmp_path: Path) -> None:
    """With ``ema_decay`` d the scored weights are avg_1 = w_1, avg_k = d avg_(k-1) + (1 - d) w_k, computed here
    from the raw weights of plain runs of 1, 2 and 3 steps (constant learning rate, so they share one path);
    ``last.pt`` keeps the raw weights; a run resumed from 2 steps ends where the uninterrupted one does."""
    optim = {"lr": 1e-2, "warmup_steps": 0, "schedule": "constant"}

    def run(name: str, steps: int, resume: Path | None = None, **top: object) -> Path:
        cfg = tiny_train_config(images, tmp_path / name, steps=steps, optim=optim, val_every=100, **top)
        train(config_from_dict(cfg), resume=resume, progress=False)
        return tmp_path / name

    def raw(folder: Path) -> dict[str, torch.Tensor]:
        return torch.load(folder / "last.pt", map_location="cpu", weights_only=True)["state_dict"]

    w = [raw(run(f"plain{k}", k)) for k in (1, 2, 3)]
    d = 0.6
    avg = {k: ((d * w[0][k] + (1 - d) * w[1][k]) * d + (1 - d) * w[2][k]) for k in w[0] if w[0][k].is_floating_point()}
    assert any(not torch.allclose(avg[k], w[2][k], atol=1e-6) for k in avg)  # the average is not the last step

    ema_run = run("ema", 3, ema_decay=d)
    ck = torch.load(ema_run / "last.pt", map_location="cpu", weights_only=True)
    assert _weights_sha(ck["state_dict"]) == _weights_sha(w[2])
    best = load_weights(ema_run / "best.safetensors").state_dict()
    best_pt = torch.load(ema_run / "best.pt", map_location="cpu", weights_only=True)["state_dict"]
    for k, v in avg.items():
        assert torch.allclose(best[k], v, atol=1e-6), k
        assert torch.allclose(ck["ema"][f"module.{k}"], v, atol=1e-6), k
        assert torch.equal(best_pt[k], best[k])

    half = run("ema_half", 2, ema_decay=d)
    resumed = run("ema_half", 3, resume=half / "last.pt", ema_decay=d)
    again = torch.load(resumed / "last.pt", map_location="cpu", weights_only=True)
    for k, v in avg.items():
        assert torch.allclose(again["ema"][f"module.{k}"], v, atol=1e-6), k

    for bad, why in (({"ema_decay": 1.0}, "outside"), ({"ema_decay": 0.9, "qat": True}, "cannot be combined")):
        with pytest.raises(ConfigError, match=why):
            train(config_from_dict(tiny_train_config(images, tmp_path / "bad", steps=1, **bad)), progress=False)


def _losses(run: Path) -> list[float]:
    with open(run / "log.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def test_cpu_bf16_runs_the_forward_in_bfloat16_and_keeps_float32_weights(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cpu_bf16`` changes the arithmetic (the losses differ from a float32 run's with the same seed) by no more
    than bfloat16 rounding (8 mantissa bits: a relative error of order 1e-2), and the saved weights stay float32.
    The hardware check is patched so the test runs on any CPU (there bfloat16 is emulated: slow, same numbers)."""
    monkeypatch.setattr(trainer_mod, "_native_bf16", lambda: True)
    optim = {"lr": 1e-3, "warmup_steps": 0, "schedule": "constant"}
    runs = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        cfg = tiny_train_config(images, tmp_path / name, steps=4, optim=optim, cpu_bf16=bf16)
        train(config_from_dict(cfg), progress=False)
        runs[name] = _losses(tmp_path / name)
    ref, got = np.array(runs["fp32"]), np.array(runs["bf16"])
    assert len(ref) == len(got) == 4
    assert not np.array_equal(ref, got)
    np.testing.assert_allclose(got, ref, rtol=2e-2)
    best = load_weights(tmp_path / "bf16" / "best.safetensors").state_dict()
    assert {v.dtype for v in best.values() if v.is_floating_point()} == {torch.float32}

    monkeypatch.setattr(trainer_mod, "_native_bf16", lambda: False)
    cfg = tiny_train_config(images, tmp_path / "refused", steps=1, cpu_bf16=True)
    with pytest.raises(ConfigError, match="neither AVX-512 BF16 nor AMX.*set cpu_bf16: false"):
        train(config_from_dict(cfg), progress=False)


class _Crash(Exception):
    pass


def test_resume_continues_exactly(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    straight = train(config_from_dict(tiny_train_config(images, tmp_path / "straight")), progress=False)

    # Crash while drawing the 6th batch: steps 1-5 are done and logged, last.pt holds step 3.
    calls = {"n": 0}
    real = trainer_mod.PatchSampler

    class CrashingSampler(real):  # type: ignore[misc, valid-type]
        def batch(self, n: int) -> torch.Tensor:
            calls["n"] += 1
            if calls["n"] == 6:
                raise _Crash
            return super().batch(n)

    monkeypatch.setattr(trainer_mod, "PatchSampler", CrashingSampler)
    cfg = config_from_dict(tiny_train_config(images, tmp_path / "resumed"))
    with pytest.raises(_Crash):
        train(cfg, progress=False)
    monkeypatch.setattr(trainer_mod, "PatchSampler", real)
    run = tmp_path / "resumed"
    mid = torch.load(run / "last.pt", weights_only=True)
    assert mid["step"] == 3
    assert _log_steps(run) == [1, 2, 3, 4, 5]

    resumed = train(cfg, resume=run / "last.pt", progress=False)
    a = torch.load(Path(straight["run_dir"]) / "last.pt", weights_only=True)
    b = torch.load(run / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 8
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert (resumed["best_psnr"], resumed["best_step"]) == (straight["best_psnr"], straight["best_step"])
    assert _log_steps(run) == list(range(1, 9))  # rows 4-5 of the crashed run were replaced, not repeated
    # and the comparison is not vacuous: steps 4-8 changed the weights
    assert _weights_sha(mid["state_dict"]) != _weights_sha(b["state_dict"])


# ---------------------------------------------------------------- DDP under torchrun (gloo, CPU)

_WORKER = """
import hashlib, json, os, sys
import edgedenoise.train.trainer as T
from edgedenoise.train import config_from_dict, train

made = []
_create = T.create_model


def capture(*args, **kwargs):
    model = _create(*args, **kwargs)
    made.append(model)
    return model


T.create_model = capture  # keep a handle on this rank's model to hash its weights after training
hashes = {}
for job in json.loads(sys.argv[1]):
    res = train(config_from_dict(job["cfg"]), resume=job.get("resume"), progress=False)
    sd = made[-1].state_dict()
    digest = hashlib.sha256(b"".join(sd[k].numpy().tobytes() for k in sorted(sd))).hexdigest()
    hashes[job["tag"]] = [digest, res["steps"], res["best_psnr"]]
with open(os.path.join(sys.argv[2], "rank%s.json" % os.environ["RANK"]), "w") as f:
    json.dump({"world": int(os.environ["WORLD_SIZE"]), "hashes": hashes}, f)
# Everything this rank had to do is on disk. Leave without the interpreter's teardown: torch 2.13's gloo backend
# at times aborts there ("terminate called without an active exception", no Python frame left), after the work.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
"""


def test_ddp_two_processes_gloo(images: Path, tmp_path: Path) -> None:
    """torchrun, 2 CPU processes on gloo: identical weights on both ranks, equal to rank 0's checkpoint;
    and a run resumed from a DDP checkpoint (every rank's RNG state restored) equals an uninterrupted one."""
    base = tiny_train_config(
        images, tmp_path, optim={"lr": 1e-3, "warmup_steps": 0, "schedule": "constant"}, ckpt_every=2
    )
    jobs = [
        {"tag": "straight", "cfg": dict(base, steps=4, out_dir=str(tmp_path / "straight"))},
        {"tag": "half", "cfg": dict(base, steps=2, out_dir=str(tmp_path / "resumed"))},
        {"tag": "resumed", "cfg": dict(base, steps=4, out_dir=str(tmp_path / "resumed")),
         "resume": str(tmp_path / "resumed" / "last.pt")},
        # a wall-time budget: ranks must agree on the LR and on when to stop (rank 0's clock decides)
        {"tag": "budget", "cfg": dict(base, steps=100000, time_budget_min=0.01, out_dir=str(tmp_path / "budget"))},
    ]  # fmt: skip
    worker = tmp_path / "worker.py"
    worker.write_text(_WORKER)
    out = tmp_path / "hashes"
    out.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [*cmd, str(worker), json.dumps(jobs), str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    h0, h1 = ranks[0]["hashes"], ranks[1]["hashes"]
    assert h0 == h1  # gradients were averaged: both replicas hold the same weights after every job (and
    # every rank returns rank 0's step count and validation result)
    assert all(math.isfinite(v[2]) for v in h0.values())
    assert [h0[t][1] for t in ("straight", "half", "resumed")] == [4, 2, 4]
    assert 0 < h0["budget"][1] < 100000  # stopped by the budget, at the same step on both ranks
    ck = torch.load(tmp_path / "straight" / "last.pt", map_location="cpu", weights_only=True)
    assert ck["step"] == 4 and len(ck["rank_rng"]) == 2
    assert _weights_sha(ck["state_dict"]) == h0["straight"][0]
    assert h0["resumed"][0] == h0["straight"][0] != h0["half"][0]
    assert (tmp_path / "straight" / "best.safetensors").is_file()
    # both ranks' data counted: a single process with the same config ends elsewhere
    single = train(config_from_dict(dict(base, steps=4, out_dir=str(tmp_path / "single"))), progress=False)
    ck1 = torch.load(Path(single["run_dir"]) / "last.pt", map_location="cpu", weights_only=True)
    assert _weights_sha(ck1["state_dict"]) != h0["straight"][0]
