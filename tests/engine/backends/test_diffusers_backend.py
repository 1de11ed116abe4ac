"""The diffusers backend on tiny local pipelines: events, cancel, input rules and loading failures."""

import shutil

import numpy as np
import pytest
from tiny_diffusers.cases import CASES
from tiny_diffusers.direct import gradient_picture

from engine.api.errors import Cancelled, InvalidRequest, ModelLoadError
from engine.api.events import Finished, Frames, Loaded, Preview, Progress
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.base import open_backend
from engine.backends.diffusers.backend import DiffusersBackend


def request_for(case, tmp_path, **changes):
    image = str(gradient_picture(tmp_path / "first.png")) if case.image_to_video else None
    fields = dict(
        prompt="a fox runs through snow",
        model="tiny",
        image=image,
        frames=case.frames,
        width=case.size,
        height=case.size,
        steps=2,
        guidance=case.guidance,
        fps=case.fps,
        seed=1,
    )
    return GenerationRequest(**{**fields, **changes})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_events_then_cancel(case, build, tmp_path):
    backend = open_backend(str(build(case)), RunOptions(device="cpu"))
    assert isinstance(backend, DiffusersBackend) and backend.family == case.family

    # 1. a whole run: loaded, a progress and a preview per step, then the frames
    events = list(backend.generate(request_for(case, tmp_path)))
    assert isinstance(events[0], Loaded)
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.step for p in progress] == [1, 2] and all(p.total == 2 for p in progress)
    previews = [e for e in events if isinstance(e, Preview)]
    assert len(previews) == 2 and previews[0].frames.dtype == np.uint8 and previews[0].frames.ndim == 4
    frames = next(e for e in events if isinstance(e, Frames)).frames
    assert frames.shape == (case.frames, case.size, case.size, 3) and frames.dtype == np.uint8
    assert isinstance(events[-1], Finished) and events[-1].frame_count == case.frames

    # 2. asked to stop after the first step: Cancelled, before the last step, and the pipeline is free again
    seen = []
    with pytest.raises(Cancelled):
        for event in backend.generate(request_for(case, tmp_path, steps=4), should_stop=lambda: bool(seen)):
            if isinstance(event, Progress):
                seen.append(event.step)
    assert seen and max(seen) < 4
    again = [e for e in backend.generate(request_for(case, tmp_path, steps=2)) if isinstance(e, Frames)]
    assert again[0].frames.shape[0] == case.frames


def test_a_consumer_that_walks_away_stops_the_run(build, tmp_path):
    case = CASES[0]
    backend = open_backend(str(build(case)), RunOptions(device="cpu"))
    events = backend.generate(request_for(case, tmp_path, steps=6))
    for event in events:
        if isinstance(event, Progress):
            break
    events.close()  # joins the worker: the step callback ends the run
    assert not any(t.name == "kinemo-diffusers" and t.is_alive() for t in __import__("threading").enumerate())


def test_text_to_video_model_refuses_a_picture(build, tmp_path):
    case = next(c for c in CASES if c.name == "wan-t2v")
    backend = open_backend(str(build(case)))
    with pytest.raises(InvalidRequest, match="text-to-video only"):
        backend.check(request_for(case, tmp_path, image=str(gradient_picture(tmp_path / "p.png"))))


def test_image_to_video_model_needs_a_picture(build, tmp_path):
    case = next(c for c in CASES if c.name == "svd")
    backend = open_backend(str(build(case)))
    with pytest.raises(InvalidRequest, match="animates a picture: add --image"):
        backend.check(request_for(case, tmp_path, image=None))


def test_family_frame_rule(build, tmp_path):
    case = next(c for c in CASES if c.name == "ltx-t2v")
    with pytest.raises(InvalidRequest, match=r"8k\+1 frames"):
        open_backend(str(build(case))).check(request_for(case, tmp_path, frames=8))


def test_missing_component_is_named(build, tmp_path):
    copy = shutil.copytree(build(CASES[0]), tmp_path / "broken")
    shutil.rmtree(copy / "vae")
    with pytest.raises(ModelLoadError, match="lists 'vae' but there is no vae/ folder"):
        open_backend(str(copy)).check(request_for(CASES[0], tmp_path))


def test_pickled_weights_are_refused(build, tmp_path):
    import torch
    from safetensors.torch import load_file

    copy = shutil.copytree(build(CASES[0]), tmp_path / "pickled")
    for weights in copy.rglob("*.safetensors"):
        torch.save(load_file(weights), weights.with_suffix(".bin"))
        weights.unlink()
    with pytest.raises(ModelLoadError, match="refusing pickled weights"):
        list(open_backend(str(copy)).generate(request_for(CASES[0], tmp_path)))


def test_a_folder_of_another_kind_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(InvalidRequest, match="not a Kinemo model folder"):
        open_backend(str(tmp_path))
    with pytest.raises(InvalidRequest, match="neither a Kinemo model folder"):
        open_backend(str(tmp_path.parent))


def test_unknown_name():
    with pytest.raises(InvalidRequest, match="unknown model 'no such thing'"):
        open_backend("no such thing")


def test_unloadable_weights_are_reported_in_one_line(build, tmp_path):
    copy = shutil.copytree(build(CASES[0]), tmp_path / "corrupt")
    for weights in (copy / "vae").glob("*.safetensors"):
        weights.write_bytes(b"not safetensors at all")
    with pytest.raises(ModelLoadError, match="cannot load"):
        list(open_backend(str(copy)).generate(request_for(CASES[0], tmp_path)))


def test_long_animatediff_clips_use_context_windows(build, tmp_path):
    case = CASES[0]
    backend = open_backend(str(build(case)), RunOptions(device="cpu"))
    frames = next(e.frames for e in backend.generate(request_for(case, tmp_path, frames=20)) if isinstance(e, Frames))
    assert frames.shape == (20, case.size, case.size, 3) and backend.pipe.free_noise_enabled
    next(e for e in backend.generate(request_for(case, tmp_path, frames=8)) if isinstance(e, Frames))
    assert not backend.pipe.free_noise_enabled
