"""Atomicity: an interrupted ``edgedenoise infer`` leaves only complete outputs, its temporary files
are recognised and removed by the next run, and ``--skip-existing`` finishes the job without redoing any.

The kill test is a real ``SIGKILL`` of a torch-free child process after its first output appears; the files
are large enough (60 x 256x256) that the child is still mid-folder when the signal lands.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from runtime_helpers import BLOCK_TORCH, ROOT, run_cli, tiny_onnx

from edgedenoise.runtime import Denoiser, atomic
from edgedenoise.runtime.imageio import remove_stale_temps, write_image

TEMP = re.compile(r"^\.(?P<name>.+)\.edgedenoise-(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")


def _images(folder: Path, count: int, size: int) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pixels = {}
    for i in range(count):
        name = f"frame{i:03d}.png"
        pixels[name] = rng.integers(0, 256, (size, size), dtype=np.uint8)
        Image.fromarray(pixels[name]).save(folder / name)
    return pixels


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.slow
def test_sigkill_mid_folder_leaves_only_complete_outputs_and_skip_existing_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    count = 60
    src, out = tmp_path / "in", tmp_path / "out"
    pixels = _images(src, count, 256)
    model = str(tiny_onnx("rednet10"))
    args = ["infer", model, str(src), "-o", str(out), "--threads", "1"]
    code = BLOCK_TORCH + f"sys.argv = ['edgedenoise', *{args!r}]\nfrom edgedenoise.cli import main\nmain()\n"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if out.is_dir() and _visible(out):
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    done = _visible(out)
    assert 1 <= len(done) < count, len(done)  # killed mid-folder
    with Denoiser(model, threads=1) as d:
        for p in done:  # every output present is complete and correct: atomic writes
            np.testing.assert_array_equal(np.asarray(Image.open(p)), d(pixels[p.name]))
    leftovers = _hidden(out)
    for name in leftovers:  # at most the file being written when the signal came, under our pattern
        m = TEMP.match(name)
        assert m is not None and int(m["pid"]) == proc.pid, leftovers
    assert len(leftovers) <= 1
    # Whether or not the kill landed mid-write, plant what other interruptions leave behind:
    dead = _dead_pid()
    (out / f".frame059.png.edgedenoise-{dead}-abcd1234.tmp").write_bytes(b"half a png")
    live = out / f".frame058.png.edgedenoise-{os.getpid()}-efgh5678.tmp"  # a writer that is still running
    live.write_bytes(b"still being written")
    (out / ".keep").write_text("not ours")
    stamps = {p.name: p.stat().st_mtime_ns for p in done}
    code_, stdout, err = run_cli([*args, "--skip-existing"], capsys)
    assert code_ == 0, err
    assert f"denoised {count - len(done)} files ({len(done)} skipped, 0 failed)" in stdout
    assert f"removed {len(leftovers) + 1} temporary file(s)" in stdout
    assert [p.name for p in _visible(out)] == sorted(pixels)
    assert _hidden(out) == sorted([".keep", live.name])  # only the live writer's file and the user's file remain
    assert {p.name: p.stat().st_mtime_ns for p in done} == stamps  # skipped outputs were not rewritten
    with Denoiser(model, threads=1) as d:
        for name in sorted(pixels)[::7]:
            np.testing.assert_array_equal(np.asarray(Image.open(out / name)), d(pixels[name]))


def test_ctrl_c_during_a_write_leaves_no_partial_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    pixels = _images(src, 5, 24)
    real_save = Image.Image.save
    calls = []

    def save_then_interrupt(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        calls.append(fp)
        real_save(self, fp, *args, **kwargs)  # type: ignore[arg-type]
        if len(calls) == 3:  # the third file is fully encoded into its temp file, then Ctrl-C
            raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", save_then_interrupt)
    args = ["infer", str(tiny_onnx("rednet10")), str(src), "-o", str(out), "--threads", "1"]
    code, _, err = run_cli(args, capsys)
    assert code == 130 and "Interrupted." in err  # click turns Ctrl-C into Abort; main() exits 130
    assert [p.name for p in _visible(out)] == sorted(pixels)[:2] and _hidden(out) == []
    monkeypatch.setattr(Image.Image, "save", real_save)
    code, stdout, err = run_cli([*args, "--skip-existing"], capsys)
    assert code == 0 and "denoised 3 files (2 skipped, 0 failed)" in stdout, err
    assert [p.name for p in _visible(out)] == sorted(pixels) and _hidden(out) == []


def test_writes_are_fsynced_before_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> None:
        events.append(("replace", str(a)))
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "a.png"
    write_image(target, np.zeros((4, 4), np.uint8))
    (kind0, tmp), (kind1, renamed) = events[0], events[1]
    assert (kind0, kind1) == ("fsync", "replace") and tmp == renamed and TEMP.match(Path(tmp).name)
    assert events[2] == ("fsync", str(tmp_path))  # then the folder, so the rename itself is durable
    assert np.asarray(Image.open(target)).shape == (4, 4)


def test_remove_stale_temps_only_takes_dead_writers_files(tmp_path: Path) -> None:
    dead = _dead_pid()
    stale = tmp_path / f".a.png.edgedenoise-{dead}-x1y2z3w4.tmp"
    live = tmp_path / f".b.png.edgedenoise-{os.getpid()}-x1y2z3w4.tmp"
    lookalike = tmp_path / f".c.png.{dead}.tmp"  # a user's file that is not our pattern
    folder = tmp_path / f".d.png.edgedenoise-{dead}-x1y2z3w4.tmp"  # a folder with our name: not a temp file
    for p in (stale, live, lookalike):
        p.write_bytes(b"x")
    folder.mkdir()
    assert remove_stale_temps(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, lookalike, folder))
    assert remove_stale_temps(tmp_path / "missing") == []


def test_skip_existing_redoes_an_empty_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    _images(src, 2, 16)
    out.mkdir()
    (out / "frame000.png").write_bytes(b"")  # what a power cut without fsync can leave
    args = ["infer", str(tiny_onnx("rednet10")), str(src), "-o", str(out), "--skip-existing", "--threads", "1"]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0 and "denoised 2 files (0 skipped, 0 failed)" in stdout, err
    assert Image.open(out / "frame000.png").size == (16, 16)


def test_temp_names_are_hidden_from_image_listing(tmp_path: Path) -> None:
    from edgedenoise.runtime.imageio import list_images

    fd, name = atomic.temp_beside(tmp_path / "x.png")
    os.close(fd)
    assert TEMP.match(Path(name).name) and int(TEMP.match(Path(name).name)["pid"]) == os.getpid()  # type: ignore[index]
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "y.png")
    assert list_images(tmp_path) == [tmp_path / "y.png"]  # a leftover is never taken for an input


def test_outputs_get_the_usual_file_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """mkstemp makes 0600; every output is published 0666 less the umask (0644 under 022), and an --in-place
    replacement keeps the mode of the file it replaces."""
    old = os.umask(0o022)
    try:
        src = tmp_path / "in"
        _images(src, 2, 16)
        os.chmod(src / "frame001.png", 0o664)
        report = tmp_path / "r" / "report.json"
        args = ["infer", str(tiny_onnx("rednet10")), str(src / "frame000.png"), "-o", str(tmp_path / "out"),
                "--threads", "1", "--report", str(report)]
        code, _, err = run_cli(args, capsys)
        assert code == 0, err
        code, _, err = run_cli(
            ["infer", str(tiny_onnx("rednet10")), str(src / "frame001.png"), "--in-place", "--threads", "1"], capsys
        )
        assert code == 0, err
        atomic.write_atomic(tmp_path / "t.json", "{}")
        outputs = (tmp_path / "out" / "frame000.png", report, tmp_path / "t.json")
        modes = {p.name: os.stat(p).st_mode & 0o777 for p in outputs}
        assert modes == {"frame000.png": 0o644, "report.json": 0o644, "t.json": 0o644}
        assert os.stat(src / "frame001.png").st_mode & 0o777 == 0o664
    finally:
        os.umask(old)
