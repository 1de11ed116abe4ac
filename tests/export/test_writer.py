import json
import os

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from export import ClipWriter, ExportError, ExportSettings, make_record, read_record, write_clip


def _clip(n=6, h=32, w=48):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (1, h, w, 3), dtype=np.uint8)
    return np.concatenate([np.roll(base, i * 2, axis=2) for i in range(n)])


def _decode(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = list(reader)
    return meta, frames


RECORD = make_record({"prompt": "a red circle = moves; right # é", "seed": 3})


@pytest.mark.parametrize("fmt", ["mp4", "webm", "gif"])
def test_video_formats_decode_back_with_frames_size_fps_and_record(tmp_path, fmt):
    path = tmp_path / f"clip.{fmt}"
    write_clip(path, _clip(), ExportSettings(fmt, fps=12, width=96, height=64), RECORD)
    meta, frames = _decode(path)
    assert len(frames) == 6
    assert tuple(meta["size"]) == (96, 64)
    expected_fps = 100 / round(100 / 12) if fmt == "gif" else 12  # GIF delays are whole centiseconds
    assert meta["fps"] == pytest.approx(expected_fps, rel=0.01)
    assert read_record(path) == json.loads(json.dumps(RECORD))
    assert not [p for p in os.listdir(tmp_path) if p != path.name], "no temporary files are left"


def test_mp4_is_h264_yuv420p_with_faststart(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path, _clip(), ExportSettings("mp4", 8, 64, 64), RECORD)
    meta, _ = _decode(path)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "+faststart puts the index first"


def test_png_frames_go_to_a_new_folder_with_the_record(tmp_path):
    out = tmp_path / "frames"
    write_clip(out, _clip(), ExportSettings("png", 8, 48, 32), RECORD)
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:04d}.png" for i in range(6)] + ["kinemo.json"]
    assert Image.open(out / "frame_0000.png").size == (48, 32)
    assert read_record(out)["request"]["seed"] == 3


def test_a_failure_midway_leaves_nothing_behind(tmp_path):
    path = tmp_path / "clip.mp4"
    with pytest.raises(ExportError):
        with ClipWriter(path, ExportSettings("mp4", 8, 64, 64), (48, 32), RECORD) as writer:
            writer.write(_clip()[:2])
            writer.write(np.zeros((1, 10, 10, 3), np.uint8))  # wrong size
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept_when_the_new_export_fails(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"precious")
    with pytest.raises(ZeroDivisionError):
        with ClipWriter(path, ExportSettings("mp4", 8, 64, 64), (48, 32), RECORD) as writer:
            writer.write(_clip()[:2])
            raise ZeroDivisionError
    assert path.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


@pytest.mark.parametrize(
    "settings, message",
    [
        (ExportSettings("avi"), "unknown format"),
        (ExportSettings("mp4", fps=0), "fps"),
        (ExportSettings("mp4", width=33), "width"),
        (ExportSettings("mp4", quality=0), "quality"),
    ],
)
def test_bad_settings(tmp_path, settings, message):
    with pytest.raises(ExportError, match=message):
        write_clip(tmp_path / "x.mp4", _clip(), settings, RECORD)


def test_bad_destinations(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        write_clip(tmp_path / "missing" / "x.mp4", _clip(), ExportSettings(), RECORD)
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        with pytest.raises(ExportError, match="read-only"):
            write_clip(readonly / "x.mp4", _clip(), ExportSettings(), RECORD)
    finally:
        readonly.chmod(0o755)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.png").write_bytes(b"x")
    with pytest.raises(ExportError, match="not an empty folder"):
        write_clip(tmp_path / "full", _clip(), ExportSettings("png"), RECORD)


def test_reading_a_file_without_a_record(tmp_path):
    plain = tmp_path / "plain.gif"
    Image.fromarray(_clip()[0]).save(plain)
    with pytest.raises(ExportError, match="no Kinemo generation record"):
        read_record(plain)
    with pytest.raises(ExportError, match="no such file"):
        read_record(tmp_path / "none.mp4")


def test_reading_records_from_hostile_files_is_one_line_each(tmp_path):
    import struct

    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "kinemo.json").write_text("[" * 100000 + "]" * 100000)
    bad_utf8 = tmp_path / "bad"
    bad_utf8.mkdir()
    (bad_utf8 / "kinemo.json").write_bytes(b'{"request": "\xff\xfe"}')
    fifo = tmp_path / "x.mp4"
    os.mkfifo(fifo)
    bomb = tmp_path / "bomb.gif"  # a GIF whose screen is 65535 x 65535, in a few bytes
    bomb.write_bytes(
        b"GIF89a"
        + struct.pack("<HH", 65535, 65535)
        + b"\x00\x00\x00"
        + b"\x2c"
        + b"\x00" * 9
        + b"\x02\x02D\x01\x00\x3b"
    )
    for path, words in ((deep, "no Kinemo generation record"), (bad_utf8, "not UTF-8"), (fifo, "not a regular file")):
        with pytest.raises(ExportError, match=words) as failure:
            read_record(path)
        assert "\n" not in str(failure.value)
    with pytest.raises(ExportError) as failure:
        read_record(bomb)
    assert "\n" not in str(failure.value)
