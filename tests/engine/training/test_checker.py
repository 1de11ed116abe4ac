import random

import numpy as np
import pytest

from engine.training.checker import check_clip
from engine.training.evaluate import to_uint8 as _frames
from engine.training.synthetic import all_combos, render, sample_camera_clip, sample_object_clip
from engine.util.frames import psnr


def test_checker_reads_every_ground_truth_combination_correctly():
    rng = random.Random(7)
    wrong = []
    for combo in all_combos():
        clip = sample_object_clip(rng, combo)
        reading = check_clip(_frames(render(clip, 16)))
        got = (reading.colour, reading.shape, reading.motion, reading.background)
        if got != combo:
            wrong.append((combo, got))
    assert not wrong, f"{len(wrong)} misread, e.g. {wrong[:3]}"


def test_checker_is_not_fooled_by_an_empty_or_reversed_clip():
    rng = random.Random(1)
    clip = sample_object_clip(rng, ("red", "circle", "moves right", "black"))
    frames = _frames(render(clip, 16))
    assert check_clip(frames[::-1].copy()).motion == "moves left"
    empty = np.zeros_like(frames)
    reading = check_clip(empty)
    assert reading.colour is None and reading.motion is None and reading.consistency == 0


def test_psnr():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == float("inf")
    b = a.copy()
    b[0, 0, 0] = 255
    assert psnr(a, b) == pytest.approx(10 * np.log10(48), rel=1e-6)


def test_camera_clips_render_in_range():
    clip = sample_camera_clip(random.Random(3), "zooms in")
    video = render(clip, 16)
    assert video.shape == (3, 16, 64, 64) and 0 <= video.min() and video.max() <= 1


def test_objects_stay_clear_of_the_frame_border():
    """The checker reads the background from the border: no object may reach it, at any size or position."""
    import torch

    from engine.training.synthetic import object_coverage

    rng = random.Random(11)
    combos = all_combos()
    for _ in range(600):
        coverage = object_coverage(sample_object_clip(rng, rng.choice(combos)), 16)  # (f, h, w)
        ring = torch.ones(64, 64, dtype=torch.bool)
        ring[2:-2, 2:-2] = False
        assert coverage[:, ring].max() == 0


def test_the_checker_reads_a_large_clip_with_its_thresholds_scaled():
    for combo in [("red", "square", "moves left", "black"), ("blue", "triangle", "stays still", "white")]:
        clip = sample_object_clip(random.Random(3), combo)
        frames = (render(clip, 8, 512).permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)
        reading = check_clip(frames)
        assert (reading.colour, reading.shape, reading.motion, reading.background) == combo
