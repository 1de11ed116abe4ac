"""What the 2025-26 families add to the diffusers backend: their rules checked up front in one line, SkyReels-V2's
long clips in windows, HunyuanVideo 1.5's steps seen without a callback, Wan 2.2 A14B's experts in int8, and
Kandinsky 5's processor where torchvision is missing."""

import importlib.util
import json
import shutil

import pytest
from tiny_diffusers.cases import CASES
from tiny_diffusers.direct import direct_frames, gradient_picture

from engine.api.errors import InvalidRequest, ModelLoadError
from engine.api.events import Frames, Notice, Progress
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.base import open_backend
from engine.backends.diffusers import loading
from engine.backends.diffusers.arguments import denoising_calls

BY_NAME = {c.name: c for c in CASES}


def request(case, tmp_path, **changes):
    image = str(gradient_picture(tmp_path / "first.png")) if case.image_to_video else None
    fields = dict(prompt="a fox runs", model="tiny", image=image, frames=case.frames, width=case.size)
    fields.update(height=case.size, steps=2, guidance=case.guidance, fps=case.fps, seed=1)
    return GenerationRequest(**{**fields, **changes})


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        ("ltx2-t2v", {"steps": 1}, "needs at least 2 steps"),
        ("ltx2-t2v", {"width": 32, "height": 32}, "at least 64 pixels"),
        ("ltx2-t2v", {"frames": 12}, r"8k\+1 frames; 12 is not one \(use 9 or 17\)"),
        ("sana-video-t2v", {"width": 48}, "multiple of 32; 48 is not"),
        ("kandinsky5-i2v", {"frames": 9}, "at least 17 frames"),
        ("hunyuan15-t2v", {"frames": 8}, r"4k\+1 frames"),
        ("wan22-ti2v-t2v", {"width": 48}, "multiple of 32; 48 is not"),  # its VAE compresses 16x, not 8x
        ("skyreels-v2-t2v", {"height": 40}, "multiple of 16; 40 is not"),
    ],
)
def test_family_rules_are_checked_before_loading(name, changes, message, build, tmp_path):
    case = BY_NAME[name]
    backend = open_backend(str(build(case)), RunOptions(device="cpu"))
    with pytest.raises(InvalidRequest, match=message) as caught:
        backend.check(request(case, tmp_path, **changes))
    assert "\n" not in str(caught.value) and backend.pipe is None


def test_skyreels_long_clips_run_in_windows(build, tmp_path):
    case = BY_NAME["skyreels-v2-t2v"]
    long = request(case, tmp_path, frames=101, steps=2)  # past one 97-frame window: two windows, 17 frames shared
    assert denoising_calls("skyreels_v2", long) == 4
    backend = open_backend(str(build(case)), RunOptions(device="cpu"))
    events = list(backend.generate(long))
    steps = [(e.step, e.total) for e in events if isinstance(e, Progress)]
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    frames = next(e for e in events if isinstance(e, Frames)).frames
    assert frames.shape == (101, case.size, case.size, 3)


def test_hunyuan_steps_are_seen_without_a_callback(build, tmp_path):
    """HunyuanVideo 1.5 offers no step callback: a hook on its transformer reports each step once (guidance runs
    two passes a step), and is gone after the run."""
    from diffusers.hooks import HookRegistry

    case = BY_NAME["hunyuan15-t2v"]
    backend = open_backend(str(build(case)), RunOptions(device="cpu"))
    events = list(backend.generate(request(case, tmp_path, steps=3, guidance=4.0)))
    assert [e.step for e in events if isinstance(e, Progress)] == [1, 2, 3]
    registry = HookRegistry.check_if_exists_or_initialize(backend.pipe.transformer)
    assert registry.get_hook("kinemo_steps") is None


def test_hunyuan_picture_size_is_said_when_it_differs(build, tmp_path):
    case = BY_NAME["hunyuan15-i2v"]
    backend = open_backend(str(build(case)), RunOptions(device="cpu"))
    events = list(backend.generate(request(case, tmp_path, width=64, height=48)))
    notes = [e.message for e in events if type(e) is Notice]
    frames = next(e for e in events if isinstance(e, Frames)).frames
    assert frames.shape[1:3] != (48, 64) and any("exported at the asked 64x48" in n for n in notes)


def test_both_wan22_a14b_experts_go_int8(build, tmp_path, cache_dir):
    from optimum.quanto import quantization_map

    case = BY_NAME["wan22-a14b-t2v"]
    first = open_backend(str(build(case)), RunOptions(device="cpu", quantize="int8"))
    list(first.generate(request(case, tmp_path)))
    assert first.int8_from_cache is False
    assert quantization_map(first.pipe.transformer) and quantization_map(first.pipe.transformer_2)
    second = open_backend(str(build(case)), RunOptions(device="cpu", quantize="int8"))
    list(second.generate(request(case, tmp_path)))
    assert second.int8_from_cache is True and quantization_map(second.pipe.transformer_2)


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="the stand-in is for no torchvision")
def test_kandinsky_processor_folders_load_without_torchvision(build, tmp_path, monkeypatch):
    """Real Kandinsky 5 folders record a Qwen2VLProcessor, which transformers cannot build without torchvision;
    its tokenizer stands in, and the frames are the pipeline's own."""
    case = BY_NAME["kandinsky5-t2v"]
    folder = shutil.copytree(build(case), tmp_path / "with-processor")
    index = json.loads((folder / "model_index.json").read_text())
    index["tokenizer"] = ["transformers", "Qwen2VLProcessor"]
    (folder / "model_index.json").write_text(json.dumps(index))
    clip = request(case, tmp_path, model=str(folder), seed=5)
    frames = next(e for e in open_backend(str(folder)).generate(clip) if isinstance(e, Frames)).frames
    expected = direct_frames(case, build(case), clip.prompt, None, seed=5, steps=2)
    assert (abs(frames.astype(int) - expected.astype(int)) <= 1).all()

    monkeypatch.setattr(loading, "processor_stand_ins", lambda folder: {})  # without the stand-in it cannot load
    with pytest.raises(ModelLoadError, match="cannot load"):
        list(open_backend(str(folder)).generate(clip))
