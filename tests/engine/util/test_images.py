import os

import numpy as np
import pytest
from PIL import Image

from engine.api.errors import ImageError
from engine.util.images import fit_to_frame, load_image


def test_rgba_is_composited_and_16_bit_is_scaled(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb = load_image(tmp_path / "a.png")
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert abs(int(rgb[0, 0, 0]) - 100) <= 1

    deep = np.full((8, 8), 65535 // 2, np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    gray = load_image(tmp_path / "d.png")
    assert gray.shape == (8, 8, 3) and abs(int(gray[0, 0, 0]) - 127) <= 1


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated", "text", "folder"])
def test_unusable_pictures_are_refused_in_one_line(tmp_path, kind):
    path = tmp_path / "picture.png"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "text":
        path.write_text("hello, not a picture")
    elif kind == "folder":
        path.mkdir()
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_fit_to_frame_keeps_the_output_aspect():
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 140:160] = 255  # a bar in the centre survives the centre crop
    out = fit_to_frame(wide, aspect=1.0, size=64)
    assert out.shape == (64, 64, 3)
    assert out[:, 32].mean() > 200 and out[:, 2].mean() < 10


def test_a_picture_is_decoded_once_until_it_changes(tmp_path, monkeypatch):
    import engine.util.images as images

    path = tmp_path / "p.png"
    Image.fromarray(np.full((4, 6, 3), 10, np.uint8)).save(path)
    reads = []
    real = images._read_image
    monkeypatch.setattr(images, "_read_image", lambda p: reads.append(p) or real(p))
    first, second = images.load_image(path), images.load_image(path)
    assert first is second and len(reads) == 1 and not first.flags.writeable
    Image.fromarray(np.full((4, 6, 3), 200, np.uint8)).save(path)
    os.utime(path, ns=(1, 1))  # a new modification time, as a rewrite has
    assert images.load_image(path)[0, 0, 0] == 200 and len(reads) == 2


def _bomb_png(path, width, height):
    """A PNG whose header declares width x height pixels, in a few bytes (no pixel data to speak of)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("side", [30000, 10000])
def test_a_decompression_bomb_is_one_line(tmp_path, side, capsys):
    path = _bomb_png(tmp_path / "bomb.png", side, side)
    assert path.stat().st_size < 100
    with pytest.raises(ImageError, match="too large") as failure:
        load_image(path)
    assert "\n" not in str(failure.value) and capsys.readouterr().err == ""


def test_exif_orientation_is_honoured(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)  # stored landscape: 40 wide, 20 high
    pixels[:, :20] = 255  # the left half white
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view": a phone's portrait
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    rgb = load_image(tmp_path / "phone.jpg")
    assert rgb.shape == (40, 20, 3)  # shown as a portrait
    assert rgb[:18].mean() > 200 and rgb[22:].mean() < 50  # the white half is on top
