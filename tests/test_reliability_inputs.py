"""Bad-input matrix: arrays through ``Denoiser`` and image files through ``edgedenoise infer``.

Every kind has one defined outcome: a correct result (checked against an independent oracle: a raw ONNX
Runtime session, numpy, hand-built files), or the project's error type with one line naming the problem and
the fix. For the CLI: exit code 1, exactly one ``Error: <file>: ...`` line on stderr, no output file (nor a
temporary one), and the input unchanged (bytes and mtime).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from runtime_helpers import run_cli, run_cli_without_torch, tiny_onnx

from edgedenoise.runtime import Denoiser
from edgedenoise.runtime.errors import EdgeDenoiseError, InvalidInputError
from edgedenoise.runtime.imageio import MAX_PIXELS

RNG = np.random.default_rng(8)


# ---------------------------------------------------------------------------------------------- oracles
@pytest.fixture(scope="module")
def gray() -> Denoiser:
    with Denoiser(tiny_onnx("rednet10"), threads=1) as d:
        yield d


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(tiny_onnx("rednet10")), so, providers=["CPUExecutionProvider"])


def ort_ref(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    """Raw ONNX Runtime on an ``(H, W)`` float image, untiled, clipped to [0, 1]: the independent oracle."""
    (y,) = session.run(["denoised"], {"noisy": np.ascontiguousarray(x, np.float32)[None, None]})
    return np.clip(y[0, 0], 0.0, 1.0)


def ort_ref_hwc(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    return np.stack([ort_ref(session, x[..., c]) for c in range(x.shape[-1])], axis=-1)


# ---------------------------------------------------------------------------------------------- API: arrays
def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _f(shape: tuple[int, ...]) -> np.ndarray:
    return RNG.random(shape, dtype=np.float32)


# (id, input, expected float oracle input or None): the Denoiser's output must equal ort_ref of the oracle input.
API_OK: list[tuple[str, np.ndarray, Callable[[np.ndarray], np.ndarray]]] = [
    ("non-contiguous view", _f((40, 45))[::2, ::3], lambda x: np.ascontiguousarray(x)),
    ("negative strides", _f((17, 23))[::-1, ::-1], lambda x: np.ascontiguousarray(x)),
    ("fortran order", np.asfortranarray(_f((19, 21))), lambda x: np.ascontiguousarray(x)),
    ("read-only", _readonly(_f((20, 20))), lambda x: x),
    ("big-endian float32", _f((9, 11)).astype(">f4"), lambda x: x.astype(np.float32)),
    ("1x1", np.full((1, 1), 0.5, np.float32), lambda x: x),
    ("1x700 (tiled along W)", _f((1, 700)), lambda x: x),
    ("700x1 (tiled along H)", _f((700, 1)), lambda x: x),
    ("3x1100 (extreme aspect)", _f((3, 1100)), lambda x: x),
    ("noise beyond [0, 1]", (_f((16, 16)) * 1.6 - 0.3).astype(np.float32), lambda x: x),
]


@pytest.mark.parametrize("name,x,oracle", API_OK, ids=[c[0] for c in API_OK])
def test_api_arrays_with_a_correct_result(
    gray: Denoiser, session: ort.InferenceSession, name: str, x: np.ndarray, oracle: Callable[[np.ndarray], np.ndarray]
) -> None:
    before = x.copy()
    y = gray(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not np.shares_memory(y, x)
    np.testing.assert_array_equal(x, before)  # input untouched
    np.testing.assert_allclose(y.astype(np.float32), ort_ref(session, oracle(x)), atol=2e-6)


def test_api_integer_and_layout_kinds(gray: Denoiser, session: ort.InferenceSession) -> None:
    u16 = RNG.integers(0, 65536, (12, 10), dtype=np.uint16)
    for arr in (u16, u16.astype(">u2")):  # native and big-endian 16-bit
        y = gray(arr)
        assert y.dtype == arr.dtype and y.shape == arr.shape
        ref = np.rint(ort_ref(session, arr.astype(np.float32) / 65535) * 65535)
        assert np.abs(y.astype(np.int64) - ref).max() <= 1
    u8 = RNG.integers(0, 256, (2, 14, 9, 1), dtype=np.uint8)  # (N, H, W, 1)
    y = gray(u8)
    assert y.shape == u8.shape and y.dtype == np.uint8
    for i in range(2):
        ref = np.rint(ort_ref(session, u8[i, ..., 0].astype(np.float32) / 255) * 255)
        assert np.abs(y[i, ..., 0].astype(np.int64) - ref).max() <= 1
    rgb = _f((11, 13, 3))[:, ::-1]  # a colour view with negative strides
    np.testing.assert_allclose(gray(rgb), ort_ref_hwc(session, np.ascontiguousarray(rgb)), atol=2e-6)


def test_api_nan_replace_is_a_correct_result(session: ort.InferenceSession) -> None:
    x = _f((10, 10))
    x[2, 3], x[4, 5], x[6, 7] = np.nan, np.inf, -np.inf
    with Denoiser(tiny_onnx("rednet10"), threads=1, nonfinite="replace") as d:
        y = d(x)
    clean = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0)
    np.testing.assert_allclose(y, ort_ref(session, clean), atol=2e-6)
    assert np.isnan(x[2, 3])  # the caller's array still holds its NaN


API_ERRORS: list[tuple[str, object, str]] = [
    ("int64", np.zeros((8, 8), np.int64), r"dtype int64 is not supported; pass uint8, uint16 or float32"),
    ("float64", np.zeros((8, 8)), r"dtype float64 .*astype\(np.float32\)"),
    ("bool", np.zeros((8, 8), bool), r"dtype bool is not supported"),
    ("float16", np.zeros((8, 8), np.float16), r"dtype float16 is not supported"),
    ("int16", np.zeros((8, 8), np.int16), r"dtype int16 is not supported"),
    ("object", np.array([[None, 1]], dtype=object), r"dtype object is not supported"),
    ("python list", [[0.5, 0.5]], r"dtype float64 is not supported"),
    ("string", "noise.png", r"dtype <U9 is not supported"),
    ("0-d", np.float32(0.5), r"shape \(\) is not"),
    ("1-d", np.zeros(5, np.float32), r"shape \(5,\) is not"),
    ("5-d", np.zeros((1, 1, 5, 5, 1), np.float32), r"shape \(1, 1, 5, 5, 1\) is not"),
    ("2 channels", np.zeros((5, 5, 2), np.float32), r"shape \(5, 5, 2\) is not .*pass alpha separately"),
    ("4 channels (RGBA)", np.zeros((5, 5, 4), np.uint8), r"shape \(5, 5, 4\) is not .*pass alpha separately"),
    ("0x5", np.zeros((0, 5), np.float32), r"shape \(0, 5\) is empty"),
    ("0x0", np.zeros((0, 0), np.uint8), r"shape \(0, 0\) is empty"),
    ("empty batch", np.zeros((0, 5, 5, 1), np.float32), r"shape \(0, 5, 5, 1\) is empty"),
    ("NaN", np.full((5, 5), np.nan, np.float32), r"25 NaN/Inf values; .*nonfinite='replace'"),
    ("+Inf", np.where(np.eye(5, dtype=bool), np.inf, 0.5).astype(np.float32), r"5 NaN/Inf values"),
    ("0-255 floats", np.full((5, 5), 200.0, np.float32), r"span \[200, 200\], far outside .*x / 255"),
    ("float HDR", np.linspace(0, 40, 25, dtype=np.float32).reshape(5, 5), r"far outside the model's range"),
]


@pytest.mark.parametrize("name,x,pattern", API_ERRORS, ids=[c[0] for c in API_ERRORS])
def test_api_arrays_refused_with_one_line(gray: Denoiser, name: str, x: object, pattern: str) -> None:
    before = np.array(x, copy=True)
    with pytest.raises(InvalidInputError, match=pattern) as info:
        gray(x)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    if isinstance(x, np.ndarray):
        np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"tile": -1}, r"tile must be a positive number"),
        ({"tile": 20}, r"tile 20 is too small .*at least 37"),
        ({"blend": -3}, r"blend must be >= 0"),
        ({"color": "sepia"}, r"unknown color mode 'sepia'; choose one of: auto, per-channel, luma, opponent"),
        ({"nonfinite": "ignore"}, r"unknown NaN/Inf policy 'ignore'"),
        ({"backend": "cuda"}, r"unknown backend 'cuda'; choose one of"),
        ({"backend": "tensorrt"}, r"'tensorrt' backend runs TensorRT .engine files"),
    ],
)
def test_api_bad_arguments(kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(InvalidInputError, match=pattern) as info:
        Denoiser(tiny_onnx("rednet10"), threads=1, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_api_call_errors_sigma_and_closed(gray: Denoiser) -> None:
    with pytest.raises(InvalidInputError, match="no noise-level input; do not pass sigma"):
        gray(np.zeros((4, 4), np.float32), sigma=25)
    d = Denoiser(tiny_onnx("rednet10"), threads=1)
    d.close()
    with pytest.raises(InvalidInputError, match="closed; create a new one"):
        d(np.zeros((4, 4), np.float32))


# ---------------------------------------------------------------------------------------------- files
def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_bytes(width: int, height: int, depth: int, colour: int, rows: bytes = b"", chunks: bytes = b"") -> bytes:
    """A PNG written by hand (PNG spec, ISO/IEC 15948: signature, IHDR, [chunks], IDAT, IEND)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + chunks
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def tiff_header_only(width: int, height: int) -> bytes:
    """A baseline little-endian TIFF whose IFD claims ``width x height`` 8-bit gray with a 16-byte strip."""
    entries = [  # (tag, type, count, value); type 3 = SHORT, 4 = LONG
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8 + 2 + 12 * 9 + 4),
        (277, 3, 1, 1),
        (278, 4, 1, height),
        (279, 4, 1, 16),
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", t, ty, n) + (struct.pack("<H2x", v) if ty == 3 else struct.pack("<I", v))
        for t, ty, n, v in entries
    )
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + bytes(16)


def _encoded(arr: np.ndarray, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def _u8(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _multipage(path: Path) -> None:
    a, b = Image.fromarray(_u8((16, 16), 1)), Image.fromarray(_u8((16, 16), 2))
    a.save(path, save_all=True, append_images=[b])


def _float_tiff(values: np.ndarray) -> Callable[[Path], None]:
    return lambda p: Image.fromarray(values.astype(np.float32)).save(p)


def _with_nan() -> np.ndarray:
    a = np.random.default_rng(3).random((12, 12)).astype(np.float32)
    a[4, 4] = np.nan
    return a


def _with_inf() -> np.ndarray:
    a = np.random.default_rng(4).random((12, 12)).astype(np.float32)
    a[1, 2] = np.inf
    return a


@dataclass(frozen=True)
class BadFile:
    name: str
    make: Callable[[Path], None]
    needle: str  # part of the one error line (besides the file name)


def _write(data: bytes) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(data)


_PNG = _encoded(_u8((32, 32), 0), "PNG")
_JPG = _encoded(_u8((32, 32, 3), 0), "JPEG", quality=90)
_ZTXT_BOMB = _chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(b"a" * (16 << 20)))  # 16 MB of text from 16 kB
_LZW = bytearray(_encoded(_u8((48, 48), 5), "TIFF", compression="tiff_lzw"))
_LZW[20:60] = b"\xff" * 40  # damaged compressed strip: libtiff prints to fd 2 and fails

BAD_FILES = [
    BadFile("empty.png", _write(b""), "file is empty"),
    BadFile("truncated.png", _write(_PNG[: len(_PNG) // 2]), "cannot decode as an image"),
    BadFile("truncated.jpg", _write(_JPG[: len(_JPG) // 2]), "cannot decode as an image"),
    BadFile("text.png", _write(b"not an image, just text\n"), "cannot decode as an image"),
    BadFile("garbage.tif", _write(b"II*\x00" + bytes(RNG.integers(0, 256, 300, dtype=np.uint8))), "cannot decode"),
    BadFile("damaged_lzw.tif", _write(bytes(_LZW)), "cannot decode as an image"),
    BadFile("zero_width.png", _write(png_bytes(0, 5, 8, 0)), "cannot decode as an image"),
    BadFile("zero_size.png", _write(png_bytes(0, 0, 8, 0)), "cannot decode as an image"),
    BadFile(
        "bomb.png",
        _write(png_bytes(20_000, 20_000, 8, 0, b"\x00" * 64)),
        f"400,000,000 pixels exceeds the limit of {MAX_PIXELS:,}",
    ),
    BadFile("bomb.tif", _write(tiff_header_only(100_000, 100_000)), "exceeds the limit"),
    BadFile("text_bomb.png", _write(png_bytes(4, 4, 8, 0, b"\x00" * 20, _ZTXT_BOMB)), "cannot decode as an image"),
    BadFile("rgb16.png", _write(png_bytes(4, 4, 16, 2, (b"\x00" + bytes(24)) * 4)), "16-bit colour/alpha"),
    BadFile("gray_alpha16.png", _write(png_bytes(4, 4, 16, 4, (b"\x00" + bytes(16)) * 4)), "16-bit colour/alpha"),
    BadFile("cmyk.jpg", lambda p: Image.fromarray(_u8((9, 9, 3), 6)).convert("CMYK").save(p), "mode 'CMYK'"),
    BadFile("bilevel.png", lambda p: Image.fromarray(_u8((9, 9), 7)).convert("1").save(p), "mode '1'"),
    BadFile("int32.tif", lambda p: Image.fromarray(_u8((9, 9), 8).astype(np.int32)).save(p), "mode 'I'"),
    BadFile("multipage.tif", _multipage, "has 2 frames"),
    BadFile("animated.png", _multipage, "has 2 frames"),  # APNG
    BadFile("nan.tif", _float_tiff(_with_nan()), "1 NaN/Inf values"),
    BadFile("inf.tif", _float_tiff(_with_inf()), "1 NaN/Inf values"),
    BadFile("scale255.tif", _float_tiff(np.random.default_rng(5).random((9, 9)) * 255), "far outside"),
    BadFile("folder.png", lambda p: p.mkdir(), "no image files"),
]


def _state(path: Path) -> tuple[bytes, int] | tuple[str, int]:
    st = path.stat()
    return ("dir", st.st_mtime_ns) if path.is_dir() else (path.read_bytes(), st.st_mtime_ns)


def test_bad_file_matrix_is_at_least_30_kinds_with_the_api() -> None:
    assert len(BAD_FILES) + len(API_ERRORS) + len(API_OK) >= 30
    assert len({b.name for b in BAD_FILES}) == len(BAD_FILES)


@pytest.mark.parametrize("bad", BAD_FILES, ids=[b.name for b in BAD_FILES])
def test_cli_bad_file_one_line_no_output_input_unchanged(
    bad: BadFile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    path = src / bad.name
    bad.make(path)
    before = _state(path)
    code, stdout, err = run_cli(
        ["infer", str(tiny_onnx("rednet10")), str(path), "-o", str(out), "--threads", "1"], capsys
    )
    assert code == 1, (stdout, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ") and str(path) in lines[0] and bad.needle in lines[0], lines[0]
    assert not out.exists() or not any(out.rglob("*")), list(out.rglob("*"))  # nothing, not even a temp file
    assert _state(path) == before
    assert sorted(p.name for p in src.iterdir()) == [bad.name]


def test_api_read_errors_are_the_project_type(tmp_path: Path) -> None:
    from edgedenoise.runtime.imageio import read_image

    for bad in BAD_FILES:
        path = tmp_path / bad.name
        bad.make(path)
        if bad.needle in ("1 NaN/Inf values", "far outside", "no image files"):
            continue  # decodes fine; the Denoiser refuses it (above), or it is a folder argument
        with pytest.raises(EdgeDenoiseError) as info:
            read_image(path)
        assert str(info.value).startswith(str(path)) and "\n" not in str(info.value), bad.name


# ---------------------------------------------------------------------------------------------- good files
@dataclass(frozen=True)
class GoodFile:
    name: str
    make: Callable[[Path], np.ndarray]  # writes the file, returns the pixels the model must see (upright)
    mode: str  # Pillow mode of the output file
    alpha: bool = False
    lossless: bool = True


def _save(arr: np.ndarray, **kw: object) -> Callable[[Path], np.ndarray]:
    def make(p: Path) -> np.ndarray:
        Image.fromarray(arr).save(p, **kw)
        if arr.ndim == 3 and arr.shape[2] == 2:  # LA: the model sees L
            return arr[..., 0]
        return arr[..., :3] if arr.ndim == 3 and arr.shape[2] == 4 else arr

    return make


def _palette(transparent: bool) -> Callable[[Path], np.ndarray]:
    def make(p: Path) -> np.ndarray:
        idx = _u8((10, 12), 11) % 16
        im = Image.fromarray(idx, mode="P")
        pal = _u8((16, 3), 12)
        im.putpalette(pal.ravel().tolist())
        if transparent:
            im.info["transparency"] = 3
            im.save(p, transparency=3)
        else:
            im.save(p)
        return pal[idx]  # palette lookup by hand

    return make


def _exif_rotated(p: Path) -> np.ndarray:
    upright = np.tile(np.linspace(0, 255, 48, dtype=np.float32), (32, 1)).astype(np.uint8)  # 32 x 48
    stored = np.rot90(upright, k=1)  # 48 x 32, displayed after a 90-degree clockwise turn (EXIF orientation 6)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(stored)).save(p, exif=exif, quality=95)
    decoded = np.asarray(Image.open(p))  # Pillow decodes the stored orientation; numpy turns it upright
    return np.ascontiguousarray(np.rot90(decoded, k=-1))


def _gif_named_png(p: Path) -> np.ndarray:
    idx = _u8((8, 9), 13) % 4
    im = Image.fromarray(idx, mode="P")
    pal = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    im.putpalette(pal.ravel().tolist() + [0] * (768 - 12))
    im.save(p, format="GIF")
    return pal[idx]


def _gray16_be_tiff(p: Path) -> np.ndarray:
    arr = np.random.default_rng(14).integers(0, 65536, (10, 11), dtype=np.uint16)
    Image.fromarray(arr.astype(">u2")).save(p)  # mode I;16B
    return arr


GOOD_FILES = [
    GoodFile("one_pixel.png", _save(np.array([[77]], np.uint8)), "L"),
    GoodFile("one_pixel_rgb.png", _save(np.array([[[1, 200, 30]]], np.uint8)), "RGB"),
    GoodFile("strip_1x700.png", _save(_u8((1, 700), 15)), "L"),
    GoodFile("strip_700x1.png", _save(_u8((700, 1), 16)), "L"),
    GoodFile("gray16.png", _save(np.random.default_rng(17).integers(0, 65536, (9, 7), dtype=np.uint16)), "I;16"),
    GoodFile("gray16_big_endian.tif", _gray16_be_tiff, "I;16"),
    GoodFile("palette.png", _palette(False), "RGB"),
    GoodFile("palette_transparent.png", _palette(True), "RGBA", alpha=True),
    GoodFile("gray_alpha.png", _save(_u8((9, 10, 2), 18)), "LA", alpha=True),
    GoodFile("rgba.png", _save(_u8((9, 10, 4), 19)), "RGBA", alpha=True),
    GoodFile("exif_rotated.jpg", _exif_rotated, "L", lossless=False),
    GoodFile("float01.tif", _save(np.random.default_rng(20).random((8, 9)).astype(np.float32)), "F"),
    GoodFile("gif_content.png", _gif_named_png, "RGB"),
    GoodFile("bitmap.bmp", _save(_u8((7, 6, 3), 21)), "RGB"),
]


@pytest.mark.parametrize("good", GOOD_FILES, ids=[g.name for g in GOOD_FILES])
def test_cli_unusual_but_valid_files_give_the_correct_result(
    good: GoodFile, gray: Denoiser, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    path = src / good.name
    model_input = good.make(path)
    before = _state(path)
    code, stdout, err = run_cli(
        ["infer", str(tiny_onnx("rednet10")), str(path), "-o", str(out), "--threads", "1"], capsys
    )
    assert code == 0 and err == "", err
    assert _state(path) == before
    assert sorted(p.name for p in out.iterdir()) == [good.name]  # no temp file beside it
    with Image.open(out / good.name) as im:
        assert im.mode == good.mode and im.size == (model_input.shape[1], model_input.shape[0])
        pixels = np.asarray(im)
    expected = gray(model_input)
    if good.alpha:
        with Image.open(path) as im:
            src_alpha = np.asarray(im.convert("RGBA" if im.mode == "P" else im.mode))[..., -1]
        np.testing.assert_array_equal(pixels[..., -1], src_alpha)
        pixels = pixels[..., 0] if good.mode == "LA" else pixels[..., :3]
    if good.lossless:
        np.testing.assert_array_equal(pixels, expected)
    else:  # JPEG written again at quality 95
        diff = pixels.astype(np.float64) - expected.astype(np.float64)
        assert 10 * np.log10(255**2 / np.mean(diff**2)) > 35


def test_whole_battery_in_one_torch_free_process(tmp_path: Path) -> None:
    """All bad and good files in one folder, in a fresh process with torch blocked: one stderr line per bad file
    (C libraries' own stderr output included: libtiff prints for the damaged LZW strip), the good ones written."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for f in (*BAD_FILES, *GOOD_FILES):
        f.make(src / f.name)
    before = {p.name: _state(p) for p in src.iterdir()}
    res = run_cli_without_torch(["infer", str(tiny_onnx("rednet10")), str(src), "-o", str(out), "--threads", "1"])
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    files = [b for b in BAD_FILES if b.name != "folder.png"]  # a folder inside the input folder is just walked
    assert len(lines) == len(files), res.stderr
    for b in files:
        assert sum(f"{src / b.name}:" in ln and b.needle in ln for ln in lines) == 1, (b.name, res.stderr)
    assert sorted(p.name for p in out.iterdir()) == sorted(g.name for g in GOOD_FILES)
    assert {p.name: _state(p) for p in src.iterdir()} == before
    assert f"denoised {len(GOOD_FILES)} files (0 skipped, {len(files)} failed)" in res.stdout
