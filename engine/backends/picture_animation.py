"""Animating a given picture with a camera move: the camera model draws the motion, the picture is rendered
through it at the output's full size (engine.backends.picture_motion). Used by the bundled backend for
image-to-video requests whose prompt is a camera caption ("the camera pans up")."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from engine.api.errors import Cancelled, ModelLoadError
from engine.api.events import Event, Frames, Notice, Preview, Progress
from engine.api.request import GenerationRequest
from engine.backends.picture_motion import extends_beyond, frames_between, render, thumbnail
from engine.kinemo.camera_model import CameraConfig, CameraMotionModel, fields_to_grid
from engine.kinemo.vocabulary import tokenize
from engine.util.images import fit_to_size

PREVIEW_WIDTH = 160  # live previews render the current motion estimate at this width
TIMESTEP_SPACING = "trailing"


def load_camera_model(folder: Path) -> CameraMotionModel:
    """The camera model in folder (config.json with model_type kinemo-camera, model.safetensors)."""
    from safetensors.torch import load_file

    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if raw.get("model_type") != "kinemo-camera":
            raise ValueError(f"model_type {raw.get('model_type')!r} is not kinemo-camera")
        config = CameraConfig.from_dict({k: v for k, v in raw.items() if k != "model_type" and not k.startswith("_")})
        model = CameraMotionModel(config)
        model.load_state_dict(load_file(folder / "model.safetensors"))
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(f"the camera model in {folder} cannot be loaded: {str(exc).splitlines()[0]}") from None
    return model.eval().requires_grad_(False)


class PictureAnimator:
    """The camera model with its sampler, loaded once."""

    def __init__(self, folder: Path):
        from engine.kinemo.ddim import DDIMSampler
        from engine.kinemo.schedule import alphas_cumprod, make_betas

        self.model = load_camera_model(folder)
        config = self.model.config
        betas = make_betas(config.beta_schedule, config.num_train_timesteps)
        self.sampler = DDIMSampler(alphas_cumprod(betas), prediction_type="sample", clip_sample=True)

    def animate(
        self, request: GenerationRequest, picture: np.ndarray, should_stop: Callable[[], bool] | None, stats: dict
    ) -> Iterator[Event]:
        """Yield (Progress, Preview) per step, a Notice when the move looks past the picture, then Frames."""
        from engine.kinemo.ddim import ddim_timesteps

        # 1. the picture at the output's size and aspect, and as the model sees it
        fitted = fit_to_size(picture, request.width, request.height)
        config = self.model.config
        small = fit_to_size(picture, PREVIEW_WIDTH, max(2, round(PREVIEW_WIDTH * request.height / request.width)))
        with torch.inference_mode():
            ids = torch.tensor([tokenize(request.prompt).ids])
            cond = self.model.condition(ids, thumbnail(fitted, config.picture))

        # 2. denoise the motion fields
        generator = torch.Generator("cpu").manual_seed(request.seed)
        noise = torch.randn((1, config.frames, config.channels), generator=generator)
        timesteps = ddim_timesteps(request.steps, config.num_train_timesteps, TIMESTEP_SPACING)
        denoise = lambda x, t: self.model(x, torch.tensor([t]), cond)  # noqa: E731
        estimate, started = noise, time.perf_counter()
        for index, t, out in self.sampler.sample(denoise, noise, timesteps, eta=request.eta, generator=generator):
            estimate = out.pred_original_sample if index + 1 < len(timesteps) else out.prev_sample
            yield Progress(index + 1, len(timesteps), t, time.perf_counter() - started)
            preview = frames_between(fields_to_grid(estimate, config.grid)[0], min(request.frames, 8))
            yield Preview(index + 1, render(small, preview))
            if should_stop is not None and should_stop():
                raise Cancelled("generation cancelled")

        # 3. the picture rendered through the fields at full size
        fields = frames_between(fields_to_grid(estimate, config.grid)[0], request.frames)
        if extends_beyond(fields):
            yield Notice("this move looks past the picture's edges; the picture is extended there by mirroring it")
        rendered = time.perf_counter()
        yield Frames(0, render(fitted, fields))
        stats.update(
            render_seconds=time.perf_counter() - rendered, seconds_per_step=(rendered - started) / len(timesteps)
        )
