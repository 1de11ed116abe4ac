"""The bundled pixel models draw the clips they drew when tests/data/reference_clips.npz was recorded.

The clips were recorded with the shipped weights (same requests, same seeds; `python
tests/engine/backends/test_reference_clips.py` from the checkout records them again, for new weights only); a change in what the
engine computes for a request shows up here. Float kernels may round differently on another processor, so a
pixel may differ by one level there, and only a few may. The pixel model's own frames are compared: the
upscaler, which redraws them larger, has tests of its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.api.events import Frames
from engine.api.request import GenerationRequest
from engine.backends.base import open_backend

REFERENCE = Path(__file__).resolve().parents[2] / "data" / "reference_clips.npz"


def _picture(path: Path) -> str:
    y, x = np.mgrid[0:96, 0:128]
    pixels = np.stack([(x * 2) % 256, (y * 2) % 256, (x + y) % 256], -1).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


CASES = {
    "t2v": dict(prompt="a red circle moves right on a black background", frames=16, steps=8, seed=3),
    "t2v_guided_long": dict(  # guidance batches the negative prompt; 20 frames take two rolling windows
        prompt="a blue square moves up on a white background",
        negative_prompt="red",
        guidance=2.0,
        frames=20,
        steps=4,
        seed=5,
    ),
    "i2v": dict(prompt="the camera pans left", image="PICTURE", frames=8, steps=6, seed=1, width=128, height=96),
    "fast": dict(prompt="a green triangle grows on a gray background", model="kinemo-starter-fast", steps=4, seed=7),
}


def pixel_model_clip(name: str, folder: Path) -> np.ndarray:
    spec = dict(CASES[name])
    if spec.get("image") == "PICTURE":
        spec["image"] = _picture(folder / "picture.png")
    request = GenerationRequest(**spec).validate()
    backend = open_backend(request.model)
    backend.camera_folder = None  # the pixel model's clips are recorded (camera captions over a picture too)
    backend.upscaler_folder = None
    return np.concatenate([e.frames for e in backend.generate(request) if isinstance(e, Frames)])


@pytest.mark.parametrize("name", sorted(CASES))
def test_frames_equal_the_recorded_clip(name, tmp_path):
    frames = pixel_model_clip(name, tmp_path)
    want = np.load(REFERENCE)[name]
    assert frames.shape == want.shape
    diff = np.abs(frames.astype(np.int16) - want.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001, f"{(diff > 0).sum()} pixels differ, by up to {diff.max()}"


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        np.savez_compressed(REFERENCE, **{name: pixel_model_clip(name, Path(tmp)) for name in sorted(CASES)})
    print(f"recorded {REFERENCE}")
