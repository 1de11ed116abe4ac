import numpy as np
import pytest
from PIL import Image

from engine.training.outline import clip_band, outline_band, outline_length
from engine.training.synthetic import ObjectClip, render


def _frame(shape: str, size: int, radius: float = 13.0) -> np.ndarray:
    clip = ObjectClip("red", shape, "stays still", "black", 31.3, 32.6, radius, 0.0)
    return (render(clip, 1, size)[:, 0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@pytest.mark.parametrize("shape, perimeter", [("circle", 2 * np.pi), ("square", 8.0), ("triangle", 2 + 2 * 5**0.5)])
def test_outline_length_is_within_a_few_percent(shape, perimeter):
    mask = _frame(shape, 512)[..., 0] > 127
    assert outline_length(mask) == pytest.approx(perimeter * 13.0 * 8, rel=0.06)


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
def test_a_crisp_outline_is_about_a_pixel_and_a_resampled_one_is_not(shape):
    assert outline_band(_frame(shape, 512)) < 1.5  # one anti-aliased pixel at most
    small = Image.fromarray(_frame(shape, 64))
    assert outline_band(np.array(small.resize((512, 512), Image.Resampling.LANCZOS))) > 5.0


def test_frames_without_an_object_have_no_band():
    assert outline_band(np.zeros((64, 64, 3), np.uint8)) is None
    assert clip_band(np.full((2, 64, 64, 3), 90, np.uint8)) is None
    frames = np.stack([np.zeros((512, 512, 3), np.uint8), _frame("circle", 512)])
    assert clip_band(frames) == pytest.approx(outline_band(frames[1]))
