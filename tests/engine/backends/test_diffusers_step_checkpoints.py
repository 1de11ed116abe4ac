"""A diffusers run with a checkpoint_dir saves its latents and scheduler state between steps, and a stopped run of
the same request continues from them to the clip an uninterrupted run makes (engine.backends.diffusers.
step_checkpoints), on the tiny pipelines of tests/tiny_diffusers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from tiny_diffusers.cases import CASES
from tiny_diffusers.direct import gradient_picture

from engine.api.errors import Cancelled
from engine.api.events import Frames, Notice, Progress
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.base import open_backend
from engine.backends.diffusers import step_checkpoints
from engine.backends.diffusers.step_checkpoints import FILE_NAME

STEPS = 6
BY_NAME = {c.name: c for c in CASES}
# Wan's own checkpoints step with UniPC, a multistep solver that carries model outputs from step to step; the tiny
# folders use a first-order Euler scheduler: both are covered
RESUMED = [
    "wan-t2v",
    "wan-t2v+unipc",
    "wan-i2v",
    "wan22-a14b-t2v",
    "wan22-a14b-i2v",
    "wan22-ti2v-t2v",
    "wan22-ti2v-i2v",
]
RESUMED += ["ltx-t2v", "ltx-i2v", "kandinsky5-t2v", "kandinsky5-i2v", "sana-video-t2v", "sana-video-i2v"]
RESUMED += ["cogvideox-t2v", "cogvideox-i2v", "animatediff"]
EULER = {"_class_name": "EulerDiscreteScheduler", "beta_schedule": "linear", "timestep_spacing": "trailing"}
UNIPC = {
    "_class_name": "UniPCMultistepScheduler",
    "num_train_timesteps": 1000,
    "prediction_type": "flow_prediction",
    "use_flow_sigmas": True,
    "flow_shift": 3.0,
}


@pytest.fixture(autouse=True)
def save_after_every_step(monkeypatch):
    monkeypatch.setattr(step_checkpoints, "SAVE_EVERY_S", 0.0)


@pytest.fixture(scope="module")
def folders(build, tmp_path_factory):
    made = {}

    def get(name):
        if name not in made:
            case, _, scheduler = name.partition("+")
            made[name] = build(BY_NAME[case])
            if scheduler:  # the folder with another scheduler
                made[name] = tmp_path_factory.mktemp(case) / "model"
                shutil.copytree(build(BY_NAME[case]), made[name])
                config = {"unipc": UNIPC, "euler": EULER}[scheduler]
                (made[name] / "scheduler" / "scheduler_config.json").write_text(json.dumps(config))
                index = json.loads((made[name] / "model_index.json").read_text())
                index["scheduler"] = ["diffusers", config["_class_name"]]  # the class comes from the index
                (made[name] / "model_index.json").write_text(json.dumps(index))
        return made[name]

    return get


def _request(name, tmp_path, **changes):
    case = BY_NAME[name.partition("+")[0]]
    image = str(gradient_picture(tmp_path / "first.png")) if case.image_to_video else None
    fields = dict(prompt="a fox runs through snow", model="tiny", frames=case.frames, width=case.size)
    fields.update(height=case.size, steps=STEPS, guidance=case.guidance, fps=case.fps, seed=3, image=image)
    return GenerationRequest(**{**fields, **changes})


def _run(folder, request, checkpoints=None, stop_after=None, **options):
    """(frames, steps reported, notices, the scheduler's class) of one run; stop_after: cancel once that many steps
    are reported."""
    backend = open_backend(
        str(folder), RunOptions(device="cpu", checkpoint_dir=checkpoints and str(checkpoints), **options)
    )
    steps, notices, frames = [], [], None
    for event in backend.generate(request, should_stop=lambda: stop_after is not None and len(steps) >= stop_after):
        if isinstance(event, Progress):
            steps.append(event.step)
        elif isinstance(event, Notice):
            notices.append(event.message)
        elif isinstance(event, Frames):
            frames = event.frames
    return frames, steps, notices, type(backend.pipe.scheduler).__name__


@pytest.mark.parametrize("name", RESUMED)
def test_a_stopped_run_resumes_to_the_uninterrupted_clip(name, folders, tmp_path):
    folder, request, saved = folders(name), _request(name, tmp_path), tmp_path / "resume"
    plain, *_ = _run(folder, request)
    with pytest.raises(Cancelled):
        _run(folder, request, saved, stop_after=3)
    kept = step_checkpoints.StepCheckpoint(saved, "", STEPS).path
    assert kept.is_file()

    frames, steps, notices, scheduler = _run(folder, request, saved)
    assert np.array_equal(frames, plain) and plain.std() > 1
    assert "+" not in name or scheduler == UNIPC["_class_name"]
    resumed_from = steps[0] - 1  # the steps the stopped run had saved; the rest are made again
    assert 3 <= resumed_from < STEPS and steps == list(range(resumed_from + 1, STEPS + 1))
    assert any(f"{resumed_from} of {STEPS} steps were made" in n for n in notices)
    assert not saved.exists()


def test_a_checkpoint_of_another_request_or_a_damaged_one_is_set_aside(folders, tmp_path):
    folder, request, saved = folders("wan-t2v"), _request("wan-t2v", tmp_path), tmp_path / "resume"
    plain, *_ = _run(folder, request)
    with pytest.raises(Cancelled):
        _run(folder, request.with_changes(seed=4), saved, stop_after=3)
    frames, steps, notices, scheduler = _run(folder, request, saved)
    assert np.array_equal(frames, plain) and steps == list(range(1, STEPS + 1))
    assert any("belongs to another request or settings" in n for n in notices)

    with pytest.raises(Cancelled):
        _run(folder, request, saved, stop_after=3)
    path = saved / FILE_NAME
    path.write_bytes(path.read_bytes()[:100])
    frames, steps, notices, scheduler = _run(folder, request, saved)
    assert np.array_equal(frames, plain) and steps == list(range(1, STEPS + 1))
    assert any(f"the checkpoint {path} cannot be read" in n for n in notices) and not saved.exists()


@pytest.mark.parametrize(("name", "options", "why"), [
    ("ltx2-t2v", {}, "does not checkpoint its steps yet"),
    ("animatediff+euler", {}, "scales the latents a resumed run would start from"),
    ("wan-t2v", {"cache": "first-block"}, "a step cache keeps state"),
])  # fmt: skip
def test_a_run_that_cannot_checkpoint_says_so_and_writes_nothing(name, options, why, folders, tmp_path):
    saved = tmp_path / "resume"
    frames, steps, notices, scheduler = _run(folders(name), _request(name, tmp_path), saved, **options)
    assert frames is not None and steps == list(range(1, STEPS + 1))
    assert any(why in n and "keeps no checkpoint" in n for n in notices) and not saved.exists()


def test_a_checkpoint_that_cannot_be_written_is_said_once_and_the_run_goes_on(folders, tmp_path):
    folder, request = folders("wan-t2v"), _request("wan-t2v", tmp_path)
    plain, *_ = _run(folder, request)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    frames, steps, notices, scheduler = _run(folder, request, blocker / "resume")
    assert np.array_equal(frames, plain) and steps == list(range(1, STEPS + 1))
    assert len([n for n in notices if "cannot write the checkpoint" in n]) == 1
