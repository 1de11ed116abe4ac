"""What the tests of the tiny pipelines (tests/engine/backends/test_tiny_diffusers_*.py) share.

Each test module lists its ``CASES`` (name -> ``Case``) and makes its fixtures from them::

    folders = folders_fixture(CASES)  # folders(name) -> the saved pipeline folder
    pipelines = pipelines_fixture(CASES)  # pipelines(name) -> the pipeline loaded from it
    outputs = outputs_fixture(CASES)  # outputs(name, seed=..., ...) -> what the pipeline gave, run once

``run`` calls a pipeline the way all these tests do (seeded CPU generator, ``output_type="np"``), ``picture`` is the
image the image-to-video cases get, and the ``assert_*`` helpers are the checks every family's clips and folders pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

PROMPT = "a red fox runs through the snow"
NON_ASCII_PROMPT = "ein Fuchs läuft 🦊 über den Schnee, 狐狸"
PICTURE_COLOR = (200, 60, 30)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".onnx", ".gguf")


@dataclass(frozen=True)
class Case:
    build: Callable  # folder -> folder
    pipeline_class: str  # what model_index.json records and DiffusionPipeline.from_pretrained gives back
    call: dict
    image_to_video: bool = False
    load_as: str | None = None  # load with this pipeline class instead of DiffusionPipeline
    shape: tuple | None = None  # (frames, height, width) of the clip the call gives; None: the call's own

    @property
    def clip_shape(self) -> tuple:
        """(1, frames, height, width, 3): the clip the call gives."""
        if self.shape is not None:
            return (1, *self.shape, 3)
        frames = self.call.get("num_frames", self.call.get("frames"))  # SANA-Video calls it frames
        return (1, frames, self.call["height"], self.call["width"], 3)


def picture(color=PICTURE_COLOR, size=(40, 24)) -> Image.Image:
    """A small picture with a blue top-left quarter: what the image-to-video cases start from."""
    image = Image.new("RGB", size, color)
    image.paste((20, 40, 220), (0, 0, size[0] // 2, size[1] // 2))
    return image


def load_pipeline(folder, class_name: str = "DiffusionPipeline", **kwargs):
    """diffusers.<class_name>.from_pretrained(folder) with safetensors, progress bar off."""
    import diffusers

    pipe = getattr(diffusers, class_name).from_pretrained(folder, use_safetensors=True, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe, case: Case, *, seed=0, prompt=PROMPT, image=None, output_type="np", **overrides):
    """pipe(...) with the case's call (plus overrides) and a seeded CPU generator; what the pipeline returns.

    An image-to-video case gets image, or picture(); prompt=None passes no prompt (Stable Video Diffusion).
    """
    kwargs = dict(case.call, **overrides)
    if case.image_to_video:
        kwargs["image"] = image if image is not None else picture()
    if prompt is not None:
        kwargs["prompt"] = prompt
    return pipe(generator=torch.Generator("cpu").manual_seed(seed), output_type=output_type, **kwargs)


def folders_fixture(cases: dict[str, Case]):
    """A module fixture: folders(name) -> the case's saved folder, built once per builder (cases can share a folder).

    The folders come from the session's build fixture (tests/conftest.py).
    """

    @pytest.fixture(scope="module")
    def folders(build):
        return lambda name: build(SimpleNamespace(name=name, build=cases[name].build))

    return folders


def pipelines_fixture(cases: dict[str, Case]):
    """A module fixture: pipelines(name) -> the case's pipeline (its load_as class, else DiffusionPipeline), loaded once."""

    @pytest.fixture(scope="module")
    def pipelines(folders):
        loaded = {}

        def get(name):
            if name not in loaded:
                loaded[name] = load_pipeline(folders(name), cases[name].load_as or "DiffusionPipeline")
            return loaded[name]

        return get

    return pipelines


def outputs_fixture(cases: dict[str, Case]):
    """A module fixture: outputs(name, *, seed=0, prompt=PROMPT, color=PICTURE_COLOR, repeat=0, **overrides).

    The output of run(pipelines(name), ...) with picture(color) for an image-to-video case, computed once per
    arguments and shared by the module's tests; repeat=1 is a second run of the same call (to compare with the first).
    """

    @pytest.fixture(scope="module")
    def outputs(pipelines):
        made = {}

        def get(name, *, seed=0, prompt=PROMPT, color=PICTURE_COLOR, repeat=0, **overrides):
            key = (name, seed, prompt, color, repeat, tuple(sorted(overrides.items())))
            if key not in made:
                image = picture(color)
                made[key] = run(pipelines(name), cases[name], seed=seed, prompt=prompt, image=image, **overrides)
            return made[key]

        return get

    return outputs


def assert_safetensors_only(folder: Path, *models: str) -> None:
    """Every weights file under folder is .safetensors (there is one at least), and each of models holds one."""
    folder = Path(folder)
    weights = [p for p in folder.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
    assert weights and all(p.suffix == ".safetensors" for p in weights), weights
    for model in models:
        assert list((folder / model).glob("*.safetensors")), f"no safetensors weights in {model}/"


def saved_models(folder: Path, pipeline_class: str) -> set[str]:
    """The models of a saved pipeline folder, once its model_index.json names pipeline_class and all is safetensors."""
    folder = Path(folder)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == pipeline_class
    models = {c for c, entry in index.items() if isinstance(entry, list) and (folder / c / "config.json").is_file()}
    assert_safetensors_only(folder, *models)  # every model saved its weights, as safetensors
    return models


def assert_a_clip(video, shape: tuple) -> None:
    """video is a float32 np clip of this shape, values in [0, 1], not flat."""
    assert isinstance(video, np.ndarray) and video.dtype == np.float32
    assert video.shape == shape
    assert np.isfinite(video).all() and video.min() >= 0.0 and video.max() <= 1.0
    assert video.std() > 1e-4  # not a flat clip


def assert_runs_reproducibly(outputs, name: str, shape: tuple) -> np.ndarray:
    """The case's seed-0 clip is a clip of this shape, the same when run again, another with seed 1; it is returned."""
    video = outputs(name).frames
    assert_a_clip(video, shape)
    np.testing.assert_array_equal(outputs(name, repeat=1).frames, video)  # same seed, same clip
    assert not np.allclose(outputs(name, seed=1).frames, video)  # another seed, another clip
    return video
