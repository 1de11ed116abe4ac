"""engine.training.distill: one-step targets, resumable runs, and a student the backend runs at its own timesteps."""

import json

import pytest
import torch

from engine.api.errors import InvalidRequest
from engine.api.events import Frames, Progress
from engine.api.request import GenerationRequest
from engine.backends.bundled import BundledBackend
from engine.kinemo.ddim import DDIMSampler
from engine.kinemo.files import load_model
from engine.kinemo.schedule import alphas_cumprod, make_betas
from engine.training.distill import landing_x0, main, student_timesteps


def test_the_landing_target_makes_one_ddim_step_hit_the_waypoint():
    cumprod = alphas_cumprod(make_betas("squaredcos_cap_v2", 1000, snr_scale=1 / 16))
    sampler = DDIMSampler(cumprod, prediction_type="sample")
    x_t, x_s = torch.randn(2, 3, 4, 8, 8), torch.randn(2, 3, 4, 8, 8)
    x0 = landing_x0(x_t, x_s, cumprod[749], cumprod[499])
    assert torch.allclose(sampler.step(x0, 749, 499, x_t).prev_sample, x_s, atol=1e-4)
    final = landing_x0(x_t, x_s, cumprod[249], torch.tensor(1.0))
    assert torch.allclose(final, x_s)


def test_student_timesteps_are_teacher_timesteps():
    student, teacher = student_timesteps(4, 24, 1000)
    assert student == [999, 749, 499, 249] and set(student) <= set(teacher)
    with pytest.raises(ValueError, match="multiple"):
        student_timesteps(4, 25, 1000)


def _distil(tiny_model_dir, tmp_path, steps):
    main(
        [
            "--teacher",
            str(tiny_model_dir),
            "--steps",
            str(steps),
            "--batch",
            "2",
            "--threads",
            "1",
            "--checkpoint",
            str(tmp_path / "ck.pt"),
            "--checkpoint-every",
            "1",
            "--out",
            str(tmp_path / "fast"),
        ]
    )
    return tmp_path / "fast"


def test_resumed_distillation_equals_an_uninterrupted_one(tiny_model_dir, tmp_path):
    whole = _distil(tiny_model_dir, tmp_path / "a", 2)
    _distil(tiny_model_dir, tmp_path / "b", 1)
    resumed = _distil(tiny_model_dir, tmp_path / "b", 2)
    for (name, x), (_, y) in zip(load_model(whole).state_dict().items(), load_model(resumed).state_dict().items()):
        assert torch.allclose(x, y, atol=1e-6), name
    config = json.loads((whole / "config.json").read_text())
    assert config["_sampling"]["timesteps"] == [999, 749, 499, 249] and config["_distillation"]["steps"] == 2


def test_the_backend_runs_a_student_at_its_timesteps(tiny_model_dir, tmp_path):
    fast = BundledBackend(_distil(tiny_model_dir, tmp_path, 1), model_id="fast")
    assert fast.defaults()["steps"] == 4
    events = list(fast.generate(GenerationRequest("a red circle", steps=4)))
    assert [e.timestep for e in events if isinstance(e, Progress)] == [999, 749, 499, 249]
    assert next(e for e in events if isinstance(e, Frames)).frames.shape == (16, 64, 64, 3)
    with pytest.raises(InvalidRequest, match="distilled for 4 steps; use --steps 4"):
        fast.check(GenerationRequest("a red circle", steps=25))


def test_fast_picks_the_distilled_version():
    from engine.registry.resolve import fast_model

    assert fast_model("kinemo-starter") == fast_model("kinemo-starter-fast") == "kinemo-starter-fast"
    assert fast_model("animatediff-v1-5-3") == "animatediff-lightning-4step"
    assert fast_model("ltx-video") == "ltx-video-0.9.7-distilled"
    assert fast_model("animatediff-lightning-4step") == "animatediff-lightning-4step"
    with pytest.raises(InvalidRequest, match="wan2.1-t2v-1.3b has no distilled version for --fast"):
        fast_model("wan2.1-t2v-1.3b")
