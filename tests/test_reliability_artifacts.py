"""Untrusted model files: ONNX that is not ONNX or belongs to another model, ONNX external data
outside the model's folder, engines with bad or missing sidecars, and pickled checkpoints with code in them.

Each is refused with the project's error type in one line naming the file (the CLI: exit 1, one stderr line,
no output), before the file can do harm: ONNX Runtime never opens an ONNX whose external data escapes its
folder, TensorRT is never touched for an engine whose sidecar is wrong, and a checkpoint's pickle never runs.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from conftest import checkpoint_dict, engine_meta
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from runtime_helpers import ROOT, run_cli, tiny_model, tiny_onnx

from edgedenoise.runtime import Denoiser
from edgedenoise.runtime import trt_backend as trt_backend_module
from edgedenoise.runtime.artifact import resolve_model
from edgedenoise.runtime.contract import ModelCfg
from edgedenoise.runtime.engine_meta import EngineMeta, Profile, mismatches, runtime_mismatches, write_sidecar
from edgedenoise.runtime.errors import (
    ArtifactError,
    BackendUnavailableError,
    EdgeDenoiseError,
    InferenceError,
    UnknownModelError,
)
from edgedenoise.runtime.onnx_scan import check_external_data, external_refs
from edgedenoise.runtime.optional import tensorrt_module

CFG1 = ModelCfg(arch="rednet10", receptive_field=21).to_json()


def assert_cli_refuses(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], needle: str) -> None:
    """``edgedenoise infer MODEL img -o out``: exit 1, one stderr line naming MODEL and ``needle``, no output."""
    img = tmp_path / "img.png"
    Image.fromarray(np.full((9, 9), 100, np.uint8)).save(img)
    before = img.read_bytes(), img.stat().st_mtime_ns
    out = tmp_path / "cli_out"
    code, _, err = run_cli(["infer", str(model), str(img), "-o", str(out)], capsys)
    assert code == 1 and err.count("\n") == 1 and err.startswith("Error: "), err
    assert model.name in err and needle in err, err
    assert not out.exists()
    assert (img.read_bytes(), img.stat().st_mtime_ns) == before


# ---------------------------------------------------------------------------------------------- not ONNX
def _png_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


NOT_ONNX = {
    "random.onnx": lambda: bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
    "text.onnx": lambda: b"this is a model, honestly\n" * 20,
    "empty.onnx": lambda: b"",
    "truncated.onnx": lambda: tiny_onnx("rednet10").read_bytes()[:3000],
    "image.onnx": _png_bytes,
}


@pytest.mark.parametrize("name", sorted(NOT_ONNX))
def test_a_file_that_is_not_onnx(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    path.write_bytes(NOT_ONNX[name]())
    with pytest.raises(ArtifactError) as info:
        Denoiser(path, threads=1)
    assert name in str(info.value) and "\n" not in str(info.value)
    assert_cli_refuses(path, tmp_path, capsys, "ONNX")


def test_a_folder_named_like_a_model(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").mkdir()
    with pytest.raises(ArtifactError, match="is a folder, not a model file"):
        Denoiser(tmp_path / "m.onnx")


# ---------------------------------------------------------------------------------------------- another model
def _graph(
    tmp: Path,
    name: str,
    *,
    meta: dict[str, str] | None,
    in_name: str = "noisy",
    out_name: str = "denoised",
    in_shape: tuple[object, ...] = ("N", 1, "H", "W"),
    in_type: int = TensorProto.FLOAT,
    extra_input: bool = False,
    op: str = "Identity",
    domain: str = "",
) -> Path:
    x = helper.make_tensor_value_info(in_name, in_type, list(in_shape))
    inputs = [x]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("scale", TensorProto.FLOAT, [1]))
    y = helper.make_tensor_value_info(out_name, in_type, None)
    node = helper.make_node(op, [in_name], [out_name], domain=domain)
    opsets = [helper.make_opsetid("", 18)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(helper.make_graph([node], name, inputs, [y]), opset_imports=opsets)
    model.ir_version = 9
    if meta is not None:
        helper.set_model_props(model, meta)
    path = tmp / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


OTHER_MODELS: list[tuple[str, dict[str, object], str]] = [
    ("no_metadata", {"meta": None}, "no edgedenoise contract in the ONNX metadata"),
    ("wrong_input_name", {"meta": {"edgedenoise.cfg": CFG1}, "in_name": "input"}, "do not follow the contract"),
    ("wrong_output_name", {"meta": {"edgedenoise.cfg": CFG1}, "out_name": "output"}, "do not follow the contract"),
    ("extra_input", {"meta": {"edgedenoise.cfg": CFG1}, "extra_input": True}, "do not follow the contract"),
    ("rank3_input", {"meta": {"edgedenoise.cfg": CFG1}, "in_shape": ("N", "H", "W")}, "expected (N, C, H, W)"),
    ("int_input", {"meta": {"edgedenoise.cfg": CFG1}, "in_type": TensorProto.INT64}, "is not float32/float16"),
    ("contract_not_json", {"meta": {"edgedenoise.cfg": "{arch: rednet"}}, "not valid JSON"),
    ("contract_unknown_field", {"meta": {"edgedenoise.cfg": '{"arch": "x", "payload": 1}'}}, "unknown fields"),
    (
        "channel_mismatch",
        {"meta": {"edgedenoise.cfg": ModelCfg(arch="x", in_channels=3).to_json()}},
        "input has 1 channels but the contract says 3",
    ),
    ("precision_int4", {"meta": {"edgedenoise.cfg": CFG1, "edgedenoise.precision": "int4"}}, "unknown precision"),
    ("custom_op", {"meta": {"edgedenoise.cfg": CFG1}, "op": "Backdoor", "domain": "com.evil"}, "ONNX"),
]


@pytest.mark.parametrize("name,kw,needle", OTHER_MODELS, ids=[c[0] for c in OTHER_MODELS])
def test_onnx_of_another_model(
    name: str, kw: dict[str, object], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _graph(tmp_path, name, **kw)  # type: ignore[arg-type]
    with pytest.raises(ArtifactError) as info:
        Denoiser(path, threads=1)
    assert needle in str(info.value) and path.name in str(info.value) and "\n" not in str(info.value)
    assert_cli_refuses(path, tmp_path, capsys, needle)


def test_a_model_whose_output_has_another_shape_fails_per_call(tmp_path: Path) -> None:
    path = _graph(tmp_path, "classifier", meta={"edgedenoise.cfg": CFG1}, op="GlobalAveragePool")
    with Denoiser(path, threads=1) as d, pytest.raises(InferenceError, match=r"returned shape \(1, 1, 1, 1\)"):
        d(np.zeros((8, 8), np.float32))


# ---------------------------------------------------------------------------------------------- external data
def _external_copy(folder: Path, location: str = "weights.bin") -> Path:
    """The tiny model saved with every initializer in ``folder/location`` (onnx's external-data API)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(tiny_onnx("rednet10")))
    path = folder / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location=location, size_threshold=0)
    return path


def _relocate(path: Path, location: str) -> None:
    """Point every external tensor of ``path`` at ``location`` (what a hostile file would do)."""
    model = onnx.load(str(path), load_external_data=False)
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(model.SerializeToString())


def test_external_data_inside_the_folder_runs_and_matches(tmp_path: Path) -> None:
    path = _external_copy(tmp_path / "m")
    assert len(external_refs(path)) == len(onnx.load(str(path), load_external_data=False).graph.initializer) > 0
    assert check_external_data(path) == [(tmp_path / "m" / "weights.bin").resolve()]
    x = np.random.default_rng(0).random((20, 23), dtype=np.float32)
    with Denoiser(path, threads=1) as a, Denoiser(tiny_onnx("rednet10"), threads=1) as b:
        np.testing.assert_array_equal(a(x), b(x))


ESCAPES = ["../secret.bin", "sub/../../secret.bin", "ABSOLUTE", "link.bin", "missing.bin", ""]


@pytest.mark.parametrize("location", ESCAPES)
def test_external_data_outside_the_folder_is_refused_before_onnxruntime_reads_it(
    location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _external_copy(tmp_path / "m")
    secret = tmp_path / "secret.bin"
    shutil.copy(tmp_path / "m" / "weights.bin", secret)  # a file the model must never reach (same bytes, so an
    (tmp_path / "m" / "sub").mkdir()  # unchecked runtime would load it and run)
    os.symlink(secret, tmp_path / "m" / "link.bin")
    loc = str(secret) if location == "ABSOLUTE" else location
    _relocate(path, loc)
    opened: list[str] = []
    real = onnxruntime.InferenceSession

    def spy(path_or_bytes: object, *args: object, **kwargs: object) -> object:
        opened.append(str(path_or_bytes))
        return real(path_or_bytes, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(onnxruntime, "InferenceSession", spy)
    with pytest.raises(ArtifactError) as info:
        Denoiser(path, threads=1)
    msg = str(info.value)
    assert opened == [] and "\n" not in msg and str(path) in msg and repr(loc) in msg, msg
    assert ("does not exist" if location == "missing.bin" else "model's folder") in msg
    with pytest.raises(ArtifactError, match="cannot be loaded"):  # `edgedenoise eval` loads ONNX too
        from edgedenoise.evaluate import OrtPredictor

        OrtPredictor(path)
    assert opened == []
    assert_cli_refuses(path, tmp_path, capsys, "model.onnx")


def test_scanner_finds_every_external_tensor_that_onnx_finds(tmp_path: Path) -> None:
    """External tensors in initializers, node attributes, subgraphs (If branches), functions; the oracle is
    onnx's own enumeration (``onnx.external_data_helper``)."""
    from onnx.external_data_helper import _get_all_tensors, set_external_data, uses_external_data

    def ext(name: str, loc: str) -> TensorProto:
        t = numpy_helper.from_array(np.zeros(3, np.float32), name)
        set_external_data(t, location=loc, offset=0, length=12)
        t.ClearField("raw_data")
        return t

    const = helper.make_node("Constant", [], ["c"], value=ext("const_value", "a.bin"))
    branch = helper.make_graph(
        [helper.make_node("Identity", ["w_then"], ["b"])],
        "then",
        [],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])],
        initializer=[ext("w_then", "../../etc/passwd")],
    )
    cond = helper.make_node("If", ["flag"], ["r"], then_branch=branch, else_branch=branch)
    graph = helper.make_graph(
        [const, cond],
        "g",
        [helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("r", TensorProto.FLOAT, [3])],
        initializer=[ext("w_top", "w.bin"), numpy_helper.from_array(np.ones(2, np.float32), "inline")],
    )
    fn_node = helper.make_node("Constant", [], ["k"], value=ext("fn_value", "/abs/fn.bin"))
    fn = helper.make_function("local", "f", [], ["k"], [fn_node], [helper.make_opsetid("", 18)])
    model = helper.make_model(graph, functions=[fn], opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / "nested.onnx"
    path.write_bytes(model.SerializeToString())
    ours = {(r.tensor, r.location) for r in external_refs(path)}
    theirs = {
        (t.name, next(e.value for e in t.external_data if e.key == "location"))
        for t in _get_all_tensors(model)
        if uses_external_data(t)
    }
    assert theirs <= ours and ours - theirs <= {("fn_value", "/abs/fn.bin")}, (ours, theirs)
    assert ("w_then", "../../etc/passwd") in ours and ("fn_value", "/abs/fn.bin") in ours
    with pytest.raises(ArtifactError, match="outside the model's folder"):
        check_external_data(path)


# ---------------------------------------------------------------------------------------------- engines
def _meta(**changes: object) -> EngineMeta:
    cfg = ModelCfg(arch="rednet30", receptive_field=61)
    profile = Profile((1, 1, 64, 64), (1, 1, 512, 512), (1, 1, 1088, 1920))
    return engine_meta(cfg, profile, **({"precision": "fp16", "source_onnx_sha256": "a" * 64} | changes))


def _engine(tmp: Path, sidecar: str | None) -> Path:
    engine = tmp / "m.fp16.engine"
    engine.write_bytes(b"\x00not a real engine\x00" * 8)
    if sidecar == "valid":
        write_sidecar(engine, _meta())
    elif sidecar is not None:
        Path(str(engine) + ".json").write_text(sidecar)
    return engine


def _sidecar_json(**edits: object) -> str:
    data = _meta().to_dict()
    data.update(edits)
    return json.dumps(data)


ENGINE_CASES = [
    ("missing", None, "has no sidecar 'm.fp16.engine.json'; rebuild it"),
    ("not_json", "{ this is not json", "is not valid JSON"),
    ("not_an_object", "[1, 2, 3]", "must be a JSON object"),
    ("other_schema", _sidecar_json(schema=2), "schema 2 is not 1"),
    ("unknown_field", _sidecar_json(plugin_library="/tmp/evil.so"), "unknown fields ['plugin_library']"),
    (
        "missing_field",
        json.dumps({k: v for k, v in _meta().to_dict().items() if k != "gpu_name"}),
        "lacks ['gpu_name']",
    ),
    ("bad_precision", _sidecar_json(precision="int4"), "precision 'int4'"),
    ("bad_sha", _sidecar_json(source_onnx_sha256="xyz"), "is not 64 lowercase hex digits"),
    (
        "channels_differ",
        _sidecar_json(profile={"min": [1, 3, 64, 64], "opt": [1, 3, 64, 64], "max": [1, 3, 64, 64]}),
        "profile has 3 channels but the model takes 1",
    ),
    (
        "profile_inverted",
        _sidecar_json(profile={"min": [1, 1, 99, 99], "opt": [1, 1, 9, 9], "max": [1, 1, 9, 9]}),
        "min <= opt",
    ),
]


@pytest.mark.parametrize("name,sidecar,needle", ENGINE_CASES, ids=[c[0] for c in ENGINE_CASES])
def test_engine_sidecar_is_checked_before_tensorrt_is_touched(
    name: str,
    sidecar: str | None,
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    touched: list[str] = []

    def no_tensorrt(what: str) -> object:
        touched.append(what)
        raise AssertionError("TensorRT must not be reached with a bad sidecar")

    monkeypatch.setattr(trt_backend_module, "require_tensorrt", no_tensorrt)
    engine = _engine(tmp_path, sidecar)
    for backend in ("auto", "tensorrt"):
        with pytest.raises(ArtifactError) as info:
            Denoiser(engine, backend=backend)
        assert needle in str(info.value) and "m.fp16.engine" in str(info.value) and "\n" not in str(info.value)
    assert touched == []
    assert_cli_refuses(engine, tmp_path, capsys, needle)


@pytest.mark.skipif(tensorrt_module() is not None, reason="real TensorRT is installed here")
def test_engine_with_a_valid_sidecar_needs_real_tensorrt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = _engine(tmp_path, "valid")
    with pytest.raises(BackendUnavailableError, match="needs TensorRT, which is not installed"):
        Denoiser(engine)
    assert_cli_refuses(engine, tmp_path, capsys, "needs TensorRT")


def test_engine_sidecar_mismatch_rules() -> None:
    meta = _meta()
    assert runtime_mismatches(meta, tensorrt_version="10.3.0", gpu_name="NVIDIA Orin", compute_capability="8.7") == []
    assert runtime_mismatches(meta, tensorrt_version="10.13.0", gpu_name="NVIDIA H200", compute_capability="9.0") == [
        "tensorrt_version: engine '10.3.0', here '10.13.0'",
        "gpu_name: engine 'NVIDIA Orin', here 'NVIDIA H200'",
        "compute_capability: engine '8.7', here '9.0'",
    ]
    other = _meta(precision="int8", source_onnx_sha256="b" * 64, built_at="later", edgedenoise_version="9")
    assert mismatches(meta, other) == [
        "precision: have 'fp16', want 'int8'",
        f"source_onnx_sha256: have {'a' * 64!r}, want {'b' * 64!r}",
    ]


def test_engines_load_only_from_paths_the_user_gave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model *name* resolves to the shipped ``<name>.onnx`` only, never to an engine lying in the weights
    folder (an engine is native code for one GPU; it is used only when the user passes its path)."""
    from edgedenoise.runtime import artifact

    monkeypatch.setattr(artifact, "weights_dir", lambda: tmp_path)
    for planted in ("rednet30.engine", "rednet30.fp16.engine", "rednet30.plan", "rednet30.trt"):
        (tmp_path / planted).write_bytes(b"engine")
    with pytest.raises(UnknownModelError, match="no shipped ONNX for model 'rednet30'"):
        resolve_model("rednet30")
    shutil.copy(tiny_onnx("rednet10"), tmp_path / "rednet30.onnx")
    assert resolve_model("rednet30") == tmp_path / "rednet30.onnx"
    assert resolve_model("rednet") == tmp_path / "rednet30.onnx"  # alias -> the ONNX too
    with pytest.raises(ArtifactError, match="does not exist"):
        resolve_model(str(tmp_path / "other.engine"))


# ---------------------------------------------------------------------------------------------- checkpoints
class _Payload:
    """Unpickling this calls ``open(marker, "w")``: a file appears if the pickle's code runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def _evil_checkpoint(path: Path, marker: Path, form: str) -> Path:
    ck = {**checkpoint_dict(tiny_model("rednet10")), "metrics": _Payload(marker)}
    if form == "zip":
        torch.save(ck, path)
    elif form == "legacy":
        torch.save(ck, path, _use_new_zipfile_serialization=False)
    else:  # a bare pickle, protocol 2 (what the weights-only unpickler reads opcode by opcode)
        with open(path, "wb") as f:
            pickle.dump({"arch": "rednet10", "payload": _Payload(marker)}, f, protocol=2)
    return path


@pytest.mark.parametrize("form", ["zip", "legacy", "bare_pickle"])
def test_checkpoint_with_code_is_refused_and_the_code_never_runs(
    form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgedenoise.export.pipeline import load_model_source
    from edgedenoise.models import load_checkpoint
    from edgedenoise.models.pretrained import load_torch_checkpoint

    marker = tmp_path / "code_ran"
    path = _evil_checkpoint(tmp_path / "evil.pt", marker, form)
    for load in (load_torch_checkpoint, load_checkpoint, load_model_source):  # trainer --resume, eval, export
        with pytest.raises(ArtifactError) as info:
            load(path)
        assert "evil.pt" in str(info.value) and "\n" not in str(info.value)
        assert not marker.exists()
    if form != "bare_pickle":
        assert "(global io.open)" in str(info.value) and "it may run code" in str(info.value)
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(data / "a.png")
    for args in (["eval", str(path), "--data", str(data), "--sigma", "25"], ["export", "--model", str(path)]):
        code, _, err = run_cli([*args, *(["-o", str(tmp_path / "x")] if args[0] == "export" else [])], capsys)
        assert code == 1 and err.count("\n") == 1 and "evil.pt" in err, err
        assert not marker.exists()
    assert not (tmp_path / "x").exists()
    if form == "zip":  # control: the payload is live, so the refusal above is what kept it from running
        torch.load(path, weights_only=False)
        assert marker.exists()


def test_a_plain_checkpoint_still_loads(tmp_path: Path) -> None:
    from edgedenoise.models import load_checkpoint

    model = tiny_model("rednet10")
    path = tmp_path / "good.pt"
    torch.save(checkpoint_dict(model), path)
    loaded = load_checkpoint(path)
    x = torch.rand(1, 1, 17, 19)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize(
    "content,needle,error",
    [
        (["not", "a", "dict"], "holds a list, not a checkpoint dict", ArtifactError),
        ({"state_dict": {}}, "lacks checkpoint key(s) ['arch', 'cfg', 'overrides']", ArtifactError),
        ({"overrides": {"features": 8, "depth_charge": 1}}, "cannot build 'rednet10'", ArtifactError),
        ({"overrides": {"features": 16}}, "does not match architecture 'rednet10'", ArtifactError),
        ({"arch": "rednet99"}, "unknown model 'rednet99'", UnknownModelError),
        ({"state_dict": {"w": [1, 2]}}, "not a mapping of tensors", ArtifactError),
        ({"cfg": '{"arch": 1, "evil": 2}'}, "unknown fields", ArtifactError),
        ({"overrides": "features=8"}, "wrong types", ArtifactError),
    ],
)
def test_malformed_checkpoints(content: object, needle: str, error: type[EdgeDenoiseError], tmp_path: Path) -> None:
    from edgedenoise.models import load_checkpoint

    model = tiny_model("rednet10")
    ck: object = content  # a dict is applied to a valid checkpoint; "lacks" cases replace it whole
    if isinstance(content, dict) and "lacks" not in needle:
        ck = {**checkpoint_dict(model), **content}
    path = tmp_path / "m.pt"
    torch.save(ck, path)
    with pytest.raises(error) as info:
        load_checkpoint(path)
    assert needle in str(info.value) and "\n" not in str(info.value)


def _safetensors(tmp: Path, **meta: str) -> Path:
    from safetensors.torch import save_file

    model = tiny_model("rednet10")
    base = {"arch": "rednet10", "cfg": model.cfg.to_json(), "overrides": json.dumps({"features": 8})}
    base.update(meta)
    path = tmp / "w.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=base)
    return path


@pytest.mark.parametrize(
    "kind,needle",
    [
        ("pickle_named_safetensors", "is not a readable safetensors file"),
        ("header_bomb", "is not a readable safetensors file"),
        ("truncated", "is not a readable safetensors file"),
        ("overrides_not_json", "metadata 'overrides' is not JSON"),
        ("overrides_unknown", "cannot build 'rednet10'"),
        ("no_metadata", "lacks edgedenoise metadata"),
    ],
)
def test_malformed_safetensors(kind: str, needle: str, tmp_path: Path) -> None:
    from edgedenoise.models import load_weights

    marker = tmp_path / "code_ran"
    if kind == "pickle_named_safetensors":
        path = _evil_checkpoint(tmp_path / "w.safetensors", marker, "zip")
    elif kind == "header_bomb":
        path = tmp_path / "w.safetensors"
        path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    elif kind == "truncated":
        good = _safetensors(tmp_path)
        path = tmp_path / "t.safetensors"
        path.write_bytes(good.read_bytes()[:-100])
    elif kind == "overrides_not_json":
        path = _safetensors(tmp_path, overrides="{features: 8")
    elif kind == "overrides_unknown":
        path = _safetensors(tmp_path, overrides=json.dumps({"features": 8, "payload": 1}))
    else:
        from safetensors.torch import save_file

        path = tmp_path / "w.safetensors"
        save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ArtifactError) as info:
        load_weights(path)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------- static rules
SOURCES = [ROOT / "edgedenoise", ROOT / "export", ROOT / "runtime"]


def _python_files() -> list[Path]:
    seen: dict[Path, Path] = {}
    for folder in SOURCES:
        for p in folder.rglob("*.py"):
            seen.setdefault(p.resolve(), p)  # edgedenoise/export and edgedenoise/runtime are symlinks
    return sorted(seen.values())


def test_every_torch_load_is_weights_only_and_nothing_else_unpickles() -> None:
    calls = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name.endswith("torch.load"):
                kw = {k.arg: k.value for k in node.keywords}
                ok = "weights_only" in kw and isinstance(kw["weights_only"], ast.Constant) and kw["weights_only"].value
                calls.append(path.name)
                assert ok, f"{path}:{node.lineno}: torch.load without weights_only=True"
            assert name not in ("pickle.load", "pickle.loads", "torch.jit.load", "dill.load"), f"{path}:{node.lineno}"
            if name in ("np.load", "numpy.load"):
                kw = {k.arg: k.value for k in node.keywords}
                assert "allow_pickle" not in kw, f"{path}:{node.lineno}: np.load(allow_pickle=...)"
    assert calls == ["pretrained.py"]  # the one reader every checkpoint goes through


def test_shipped_weights_are_safetensors_not_pickles() -> None:
    from edgedenoise.models.pretrained import WEIGHTS_DIR

    suffixes = {p.suffix for p in WEIGHTS_DIR.iterdir()} if WEIGHTS_DIR.is_dir() else set()
    assert suffixes <= {".safetensors", ".json", ".onnx"}, suffixes
    patterns = ["weights/*.safetensors", "weights/*.json", "weights/*.onnx"]
    text = (ROOT / "pyproject.toml").read_text()
    for pattern in patterns:
        assert pattern in text
    assert not any(ext in text for ext in ("*.pt", "*.pth", "*.pkl", "*.ckpt"))


def test_shipped_onnx_files_carry_no_machine_path_and_no_unused_initializer() -> None:
    """No shipped or reference ONNX file holds the exporter's per-node stack traces (absolute source paths), nor
    an initializer no node reads (ONNX Runtime warns about each one whenever the file is loaded)."""
    from edgedenoise.models.pretrained import WEIGHTS_DIR

    files = sorted(WEIGHTS_DIR.glob("*.onnx")) + sorted((ROOT / "benchmarks" / "reference").glob("*.onnx"))
    assert len(files) >= 2
    for f in files:
        model = onnx.load(str(f), load_external_data=False)
        keys = {p.key for n in model.graph.node for p in n.metadata_props}
        assert "pkg.torch.onnx.stack_trace" not in keys, f.name
        assert b'File "/' not in f.read_bytes(), f.name
        read = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
        assert [t.name for t in model.graph.initializer if t.name not in read] == [], f.name


def test_a_mistyped_model_name_gets_the_nearest_shipped_one() -> None:
    hint = r"no shipped model 'unet3_f32_u4_nl_rgbx'; did you mean 'unet3_f32_u4_nl_rgb'\?"
    with pytest.raises(UnknownModelError, match=hint):
        resolve_model("unet3_f32_u4_nl_rgbx")
    with pytest.raises(UnknownModelError, match="did you mean 'rednet30.int8'"):
        resolve_model("rednet3.int8")
