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
