"""``edgedenoise.models.loading``: the one loader of torch models (names, .safetensors, trainer .pt, modules)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

import edgedenoise
from edgedenoise.models import create_model, load_model, load_torch_model, model_cfg, model_file, save_weights
from edgedenoise.models.pretrained import shipped_models
from edgedenoise.runtime.errors import ArtifactError, UnknownModelError

ROOT = Path(edgedenoise.__file__).resolve().parent.parent


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_every_source_loads_with_its_weights_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = create_model("rednet10", features=8)
    assert load_model(model).module is model and load_model(model).weights_sha256() is None

    st = save_weights(model, tmp_path / "m.safetensors")
    pt = tmp_path / "best.pt"
    ck = {
        "arch": "rednet10",
        "cfg": model_cfg(model).to_json(),
        "overrides": {"features": 8},
        "state_dict": model.state_dict(),
    }
    torch.save(ck, pt)
    import edgedenoise.models.pretrained as pretrained

    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    shipped = save_weights(model, tmp_path / "weights" / "rednet10.safetensors")
    for spec, weights in ((st, st), (str(pt), pt), ("rednet10", shipped)):
        loaded = load_model(spec)
        assert loaded.weights == weights and not loaded.module.training
        assert loaded.weights_sha256() == hashlib.sha256(weights.read_bytes()).hexdigest()
        assert _same_weights(loaded.module, model) and _same_weights(load_torch_model(spec), model)


def test_refusals_name_the_source(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")
    with pytest.raises(ArtifactError, match="does not exist"):
        load_model(tmp_path / "missing.engine")  # a file suffix is never taken for a model name
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"x")
    with pytest.raises(ArtifactError, match=r"is not a torch model; give a \.safetensors or trainer \.pt"):
        load_model(onnx_file)
    with pytest.raises(UnknownModelError, match="unknown model 'nosuchnet'") as exc:
        load_model("nosuchnet")
    listed = str(exc.value).split("shipped: ")[1].split(" (")[0].split(", ")
    assert listed == shipped_models() and "did you mean" not in str(exc.value)
    with pytest.raises(UnknownModelError, match=r"'rednet18_slim64_u2_nll'; did you mean 'rednet18_slim64_u2_nl'\?"):
        load_model("rednet18_slim64_u2_nll")
    assert model_file("rednet30") is None and model_file(onnx_file) == onnx_file


def test_export_and_training_do_not_load_through_evaluation() -> None:
    """Loading is the models package's job: export/, compression and the trainer never import the evaluation module."""
    compress = (ROOT / "edgedenoise" / "compress").glob("*.py")
    for py in [*(ROOT / "export").glob("*.py"), *compress, ROOT / "edgedenoise" / "train" / "trainer.py"]:
        text = py.read_text()
        assert "from ..evaluate" not in text and "edgedenoise.evaluate" not in text, py
