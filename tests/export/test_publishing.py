"""Publishing is all or nothing: a failed export keeps the previous file, leaves no temporary, says why in one line."""

import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

from export import ClipWriter, ExportError, ExportSettings, make_record, write_clip
from export.writer import TEMP_MARK

RECORD = make_record({"prompt": "p", "seed": 1})


def _noise(n=48, h=128, w=128):
    return np.random.default_rng(0).integers(0, 255, (n, h, w, 3), dtype=np.uint8)  # compresses badly: a big file


def _leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.fixture
def small_disk(tmp_path):
    """A 96 KB tmpfs, where the machine lets this process mount one (root in CI); skipped elsewhere."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here to fill a disk")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.parametrize("fmt", ["mp4", "gif", "png"])
def test_a_disk_that_fills_keeps_the_previous_file(small_disk, fmt):
    path = small_disk / (f"clip.{fmt}" if fmt != "png" else "frames")
    if fmt != "png":
        path.write_bytes(b"the good clip")
    settings = ExportSettings(fmt, 8, 256, 256, quality=100)
    with pytest.raises(ExportError, match="no space left on the disk of") as failure:
        write_clip(path, _noise(), settings, RECORD)
    assert "\n" not in str(failure.value)
    if fmt != "png":
        assert path.read_bytes() == b"the good clip"
    assert _leftovers(small_disk, {path.name}) == []


def test_a_disk_already_full_says_so(small_disk):
    (small_disk / "filler").write_bytes(b"x" * (96 * 1024 - 8192))
    with pytest.raises(OSError):
        (small_disk / "more").write_bytes(b"x" * 16384)  # the disk is full now
    (small_disk / "more").unlink(missing_ok=True)
    path = small_disk / "clip.mp4"
    with pytest.raises(ExportError, match="no space left"):
        write_clip(path, _noise(8, 64, 64), ExportSettings("mp4", 8, 64, 64), RECORD)
    assert _leftovers(small_disk, {"filler"}) == []


@pytest.fixture
def fake_ffmpeg(tmp_path, monkeypatch):
    """Swap in an ffmpeg that reads its input, then behaves as the test says."""

    def install(script: str):
        exe = tmp_path / "ffmpeg"
        exe.write_text(f"#!{sys.executable}\nimport sys, pathlib\nsys.stdin.buffer.read()\n{script}\n")
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setattr("imageio_ffmpeg.get_ffmpeg_exe", lambda: str(exe))

    return install


def test_an_encoder_that_fails_is_one_line_with_its_reason(tmp_path, fake_ffmpeg):
    fake_ffmpeg("sys.stderr.write('[mp4] Could not write header\\nEncoder gave up: reason 7\\n'); sys.exit(1)")
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"old")
    with pytest.raises(ExportError, match=r"^the encoder failed \(exit status 1\): Encoder gave up: reason 7$"):
        write_clip(path, _noise(4, 32, 32), ExportSettings("mp4", 8, 32, 32), RECORD)
    assert path.read_bytes() == b"old" and _leftovers(tmp_path, {"clip.mp4", "ffmpeg"}) == []


def test_a_file_that_does_not_decode_whole_is_not_published(tmp_path, fake_ffmpeg):
    fake_ffmpeg("pathlib.Path(sys.argv[-1]).write_bytes(b'not a video'); sys.exit(0)")  # exit 0, broken file
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"old")
    with pytest.raises(ExportError, match="incomplete"):
        write_clip(path, _noise(4, 32, 32), ExportSettings("mp4", 8, 32, 32), RECORD)
    assert path.read_bytes() == b"old" and _leftovers(tmp_path, {"clip.mp4", "ffmpeg"}) == []


@pytest.mark.parametrize("kind", ["fifo", "device", "symlink"])
def test_special_files_are_refused_before_any_work(tmp_path, kind):
    path = tmp_path / "x.mp4"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        (tmp_path / "real.mp4").write_bytes(b"real")
        path.symlink_to(tmp_path / "real.mp4")
    else:
        path = tmp_path.parent / "null-device"
        path = type(path)("/dev/null")
    with pytest.raises(ExportError, match="not a regular file"):
        ClipWriter(path, ExportSettings("mp4"), (32, 32), RECORD)
    if kind == "fifo":
        assert stat.S_ISFIFO(os.stat(path, follow_symlinks=False).st_mode)


def test_a_name_longer_than_the_filesystem_allows_is_refused_up_front(tmp_path):
    with pytest.raises(ExportError, match="longer than this filesystem allows"):
        ClipWriter(tmp_path / ("a" * 252 + ".mp4"), ExportSettings("mp4"), (32, 32), RECORD)


def test_a_long_name_that_fits_still_gets_a_temporary_that_fits(tmp_path):
    path = tmp_path / ("b" * 251 + ".mp4")  # 255 bytes: the most ext4 allows
    write_clip(path, _noise(2, 32, 32), ExportSettings("mp4", 8, 32, 32), RECORD)
    assert path.is_file() and _leftovers(tmp_path, {path.name}) == []


def test_temporaries_of_a_killed_run_are_removed_by_the_next(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".clip.mp4{TEMP_MARK}{dead.pid}.abcdefgh.partial"
    stale.write_bytes(b"half a clip")
    alive = tmp_path / f".clip.mp4{TEMP_MARK}{os.getppid()}.ijklmnop.partial"  # a live process's: kept
    alive.write_bytes(b"in progress")
    write_clip(tmp_path / "clip.mp4", _noise(2, 32, 32), ExportSettings("mp4", 8, 32, 32), RECORD)
    assert not stale.exists() and alive.exists()


def test_two_exports_to_one_png_folder_one_wins_the_other_says_why(tmp_path):
    path = tmp_path / "frames"
    first = ClipWriter(path, ExportSettings("png", 8, 32, 32), (32, 32), RECORD)
    second = ClipWriter(path, ExportSettings("png", 8, 32, 32), (32, 32), RECORD)
    for writer in (first, second):
        writer.open()
        writer.write(_noise(2, 32, 32))
    errors = []

    def close(writer):
        try:
            writer.close()
        except ExportError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=close, args=(w,)) for w in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1 and "filled by another export" in errors[0]
    assert sorted(p.name for p in path.iterdir()) == ["frame_0000.png", "frame_0001.png", "kinemo.json"]
    assert _leftovers(tmp_path, {"frames"}) == []
