"""engine.training.camera_eval: camera moves read off synthetic clips whose similarities are known."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from PIL import Image

from engine.training import camera_eval as ce
from engine.util.frames import psnr

PANS = (0.05, 0.15, 0.35)  # fraction of the frame's extent along the pan travelled over the clip
ZOOMS = (1.08, 1.25, 1.6)  # final magnification (zooms out end at 1 / it)
ASPECTS = {"16:9": (128, 72), "9:16": (72, 128)}


def picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A procedural colour picture with detail at three scales: (height, width, 3) uint8."""
    rng = np.random.default_rng(seed)
    out = np.zeros((height, width, 3), np.float32)
    for cells, amplitude in ((4, 1.0), (12, 0.6), (40, 0.35)):
        small = rng.random((max(2, cells * height // width), cells, 3)).astype(np.float32)
        channels = [
            Image.fromarray(small[..., c], mode="F").resize((width, height), Image.Resampling.BICUBIC) for c in range(3)
        ]
        out += amplitude * np.stack([np.asarray(c) for c in channels], axis=-1)
    out = (out - out.min()) / (out.max() - out.min())
    return (out * 255).astype(np.uint8)


def _mirror(u: np.ndarray, n: int) -> np.ndarray:
    period = 2 * (n - 1)
    u = np.mod(u, period)
    return np.where(u > n - 1, period - u, u)


def warp(img: np.ndarray, scale: float, tx: float, ty: float) -> np.ndarray:
    """img's pixel x moved to centre + scale * (x - centre) + t; borders filled by mirroring the picture."""
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    sx, sy = _mirror(cx + (xs - cx - tx) / scale, w), _mirror(cy + (ys - cy - ty) / scale, h)
    x0, y0 = np.minimum(sx.astype(int), w - 2), np.minimum(sy.astype(int), h - 2)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    f = img.astype(np.float64)
    top = f[y0, x0] * (1 - fx) + f[y0, x0 + 1] * fx
    bottom = f[y0 + 1, x0] * (1 - fx) + f[y0 + 1, x0 + 1] * fx
    return np.clip(top * (1 - fy) + bottom * fy + 0.5, 0, 255).astype(np.uint8)


def true_motion(move: str, amount: float, width: int, height: int, t: float) -> tuple[float, float, float]:
    """The similarity from frame 0 to clip time t in [0, 1]; content slides opposite to the camera."""
    return {
        "pans left": (1.0, amount * width * t, 0.0),
        "pans right": (1.0, -amount * width * t, 0.0),
        "pans up": (1.0, 0.0, amount * height * t),
        "pans down": (1.0, 0.0, -amount * height * t),
        "zooms in": (amount**t, 0.0, 0.0),
        "zooms out": (amount**-t, 0.0, 0.0),
        "stays still": (1.0, 0.0, 0.0),
    }[move]


def make_clip(pic: np.ndarray, move: str, amount: float, frames: int = 6) -> np.ndarray:
    h, w = pic.shape[:2]
    return np.stack([warp(pic, *true_motion(move, amount, w, h, t)) for t in np.linspace(0, 1, frames)])


@pytest.mark.parametrize("aspect", ASPECTS)
@pytest.mark.parametrize("move", ce.MOVES[:6])
def test_every_move_at_every_speed_is_named(move, aspect):
    """The clip's name comes from classify_move's own path (clip_motion, then move_of)."""
    width, height = ASPECTS[aspect]
    pic = picture(width, height, seed=len(move))
    for amount in PANS if move.startswith("pans") else ZOOMS:
        motion = ce.clip_motion(make_clip(pic, move, amount))
        assert ce.move_of(motion, width) == move, (move, aspect, amount)
        scale, tx, ty = motion
        want = true_motion(move, amount, width, height, 1.0)
        assert abs(math.log(scale / want[0])) < 0.01
        assert abs(tx - want[1]) < 0.01 * width and abs(ty - want[2]) < 0.01 * width


@pytest.mark.parametrize(
    "motion",
    [(1.0, 0.35 * 128, 0.0), (1.0, -0.3 * 128, 0.2 * 72), (1.6, 0.0, 0.0), (1 / 1.6, 0.0, 0.0), (1.3, 10.0, -6.0)],
)
def test_large_moves_are_recovered_between_two_frames(motion):
    pic = picture(128, 72, seed=3)
    scale, tx, ty = ce.estimate_similarity(pic, warp(pic, *motion))
    assert abs(scale / motion[0] - 1) < 0.01
    assert abs(tx - motion[1]) < 1.0 and abs(ty - motion[2]) < 1.0


def test_a_still_clip_stays_still_even_with_noise():
    pic = picture(128, 72, seed=5)
    noise = np.random.default_rng(0).normal(0, 2.0, (6, *pic.shape))
    clip = np.clip(pic[None] + noise, 0, 255).astype(np.uint8)
    assert ce.classify_move(clip) == "stays still"
    assert ce.classify_move(pic[None]) == "stays still"
    assert ce.classify_move(np.zeros((4, 32, 48, 3), np.uint8)) == "stays still"  # nothing to track


def test_moves_survive_noise_and_brightness_drift_and_noise_alone_stays_still():
    pic = picture(128, 72, seed=19)
    rng = np.random.default_rng(2)
    for move, amount in (("pans down", 0.2), ("zooms out", 1.3)):
        clip = make_clip(pic, move, amount).astype(np.float64)
        clip += rng.normal(0, 8.0, clip.shape) + np.linspace(0, 20, len(clip))[:, None, None, None]
        assert ce.classify_move(np.clip(clip, 0, 255).astype(np.uint8)) == move
    boiling = np.stack([picture(128, 72, seed=100 + i) for i in range(5)])  # unrelated frames: no camera
    assert ce.classify_move(boiling) == "stays still"


def test_the_thresholds_are_relative_to_the_frame():
    for width, height in ASPECTS.values():
        pic = picture(width, height, seed=7)
        assert ce.classify_move(make_clip(pic, "pans left", 0.01, frames=3)) == "stays still"
        assert ce.classify_move(make_clip(pic, "zooms in", 1.015, frames=3)) == "stays still"
        assert ce.classify_move(make_clip(pic, "pans left", 0.04, frames=3)) == "pans left"
        assert ce.classify_move(make_clip(pic, "zooms in", 1.05, frames=3)) == "zooms in"


def test_move_names_follow_the_camera_not_the_content():
    assert ce.move_of((1.0, 20.0, 0.0), 100) == "pans left"  # content slid right
    assert ce.move_of((1.0, -20.0, 5.0), 100) == "pans right"
    assert ce.move_of((1.0, 1.0, 20.0), 100) == "pans up"  # content slid down
    assert ce.move_of((1.0, 0.0, -20.0), 100) == "pans down"
    assert ce.move_of((1.2, 3.0, 0.0), 100) == "zooms in"  # content grew
    assert ce.move_of((0.8, 0.0, 0.0), 100) == "zooms out"
    assert ce.move_of((1.01, 1.0, -1.0), 100) == "stays still"


def test_similarities_compose_like_the_warps():
    pic = picture(128, 72, seed=9)
    first, second = (1.1, 4.0, -2.0), (0.95, -3.0, 5.0)
    both = ce.compose(first, second)
    direct = warp(pic, *both)
    assert psnr(warp(warp(pic, *first), *second)[16:-16, 16:-16], direct[16:-16, 16:-16]) > 30


def test_sharpness_falls_with_blur():
    pic = picture(128, 72, seed=11)
    blurred = np.asarray(Image.fromarray(pic).resize((32, 18)).resize((128, 72), Image.Resampling.BILINEAR))
    assert ce.sharpness(np.full((20, 20, 3), 128, np.uint8)) == 0.0
    assert ce.sharpness(blurred) < 0.5 * ce.sharpness(pic)
    assert ce.sharpness_ratio(pic, pic) == pytest.approx(1.0)
    assert ce.sharpness_ratio(blurred, pic) < 0.5


def test_flicker_scores_jumps_and_flashes_high():
    pic = picture(128, 72, seed=13)
    smooth = make_clip(pic, "pans right", 0.05, frames=8)
    assert ce.flicker(smooth) < 2.0
    flashed = smooth.copy()
    flashed[4] = np.clip(flashed[4].astype(int) + 80, 0, 255).astype(np.uint8)
    assert ce.flicker(flashed) > 3 * ce.flicker(smooth)
    jumped = np.concatenate([smooth[:4], make_clip(picture(128, 72, seed=14), "pans right", 0.05, frames=4)])
    assert ce.flicker(jumped) > 3
    still = np.repeat(pic[None], 10, axis=0)
    assert ce.flicker(still) == 0.0 and ce.flicker(pic[None]) == 0.0
    still[5] = 255 - still[5]  # a flash in an otherwise still clip
    assert ce.flicker(still) > 100


def test_psnr_sanity():
    pic = picture(64, 36)
    assert psnr(pic, pic) == float("inf")
    noisy = np.clip(pic + np.random.default_rng(1).normal(0, 5, pic.shape), 0, 255).astype(np.uint8)
    assert 30 < psnr(pic, noisy) < 40
    assert psnr(pic, noisy) > psnr(pic, 255 - pic)


def test_fit_picture_crops_the_centre_upright_and_exactly_sized(tmp_path):
    stored = np.zeros((200, 300, 3), np.uint8)  # stored sideways: the phone's top is on the stored left
    stored[:, :150] = (255, 0, 0)
    stored[:, 150:] = (0, 0, 255)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    path = tmp_path / "portrait.jpg"
    image.save(path, exif=exif, quality=95)
    fitted = ce.fit_picture(path, 36, 64)
    assert fitted.shape == (64, 36, 3) and fitted.dtype == np.uint8
    top, bottom = fitted[:20].mean(axis=(0, 1)), fitted[-20:].mean(axis=(0, 1))
    assert top[0] > 200 and bottom[2] > 200  # upright: red above, blue below
    wide = ce.fit_picture(path, 128, 72)  # a 16:9 crop of the 2:3 portrait: the middle band only
    assert wide.shape == (72, 128, 3)
    assert wide[:10].mean(axis=(0, 1))[0] > 200 and wide[-10:].mean(axis=(0, 1))[2] > 200


def test_photographs_are_found_on_disk_or_the_install_is_named(monkeypatch):
    if importlib.util.find_spec("skimage") is not None:
        found = ce.photographs()
        assert found and all(p.is_file() for p in found)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match=r'pip install "kinemo\[eval\]"'):
        ce.photographs()


def test_evaluate_camera_scores_a_generator_that_does_what_it_is_told(tmp_path):
    path = tmp_path / "picture.png"
    Image.fromarray(picture(256, 256, seed=17)).save(path)
    moves = ("pans left", "pans up", "zooms out", "stays still")

    def faithful(picture_path, prompt, width, height, seed):
        first = ce.fit_picture(picture_path, width, height)
        move = prompt.removeprefix("the camera ")
        amount = 1.3 if move.startswith("zoom") else 0.2
        return np.stack([warp(first, *true_motion(move, amount, width, height, t)) for t in np.linspace(0, 1, 4)])

    def lazy(picture_path, prompt, width, height, seed):  # the model's native size, and it never moves
        return np.repeat(ce.fit_picture(picture_path, 48, 48)[None], 4, axis=0)

    good = ce.evaluate_camera(faithful, [path], moves, width=96, height=54, seeds=(0, 1))
    assert good["clips"] == 8 and good["accuracy"] == 1.0
    assert good["per_move"] == dict.fromkeys(moves, 1.0)
    assert good["psnr_frame0"]["min"] == float("inf") and good["sharpness_ratio"]["mean"] == pytest.approx(1.0)
    assert good["flicker"]["max"] < 3
    poor = ce.evaluate_camera(lazy, [path], moves, width=96, height=54)
    assert poor["accuracy"] == 0.25 and poor["per_move"]["stays still"] == 1.0
    assert poor["psnr_frame0"]["mean"] < 30


def test_frames_of_another_size_are_resized():
    frames = np.zeros((2, 64, 64, 3), np.uint8)
    assert ce.resize_frames(frames, 96, 54).shape == (2, 54, 96, 3)
    assert ce.resize_frames(frames, 64, 64) is frames


def test_photographs_are_colour_pictures():
    if importlib.util.find_spec("skimage") is None:
        pytest.skip("scikit-image is not installed (pip install 'kinemo[eval]')")
    for path in ce.photographs():
        fitted = ce.fit_picture(path, 64, 36)
        assert fitted.shape == (36, 64, 3)
        assert np.abs(fitted[..., 0].astype(int) - fitted[..., 2]).mean() > 3, path.name  # not grey
