"""--cache on the tiny diffusers pipelines: each cache a family takes skips work, leaves the events per step and
cancel as they were, draws what diffusers draws with the same cache config, and is removed after the run; a cache
a family does not take is refused in one line before anything loads."""

import json
import shutil

import numpy as np
import pytest
from tiny_diffusers.cases import CASES
from tiny_diffusers.direct import CLASSES, direct_frames, gradient_picture

from engine.api.errors import Cancelled, InvalidRequest
from engine.api.events import Finished, Frames, Preview, Progress
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.base import open_backend
from engine.backends.diffusers import step_caches
from engine.registry.families import FAMILIES

PROMPT = "a fox runs through snow"
STEPS = 4
BY_NAME = {c.name: c for c in CASES}
RUNS = [
    (name, cache)
    for name in (
        "wan-t2v",
        "ltx-t2v",
        "cogvideox-t2v",
        "wan22-a14b-t2v",
        "ltx2-t2v",
        "hunyuan15-t2v",
        "skyreels-v2-t2v",
    )
    for cache in FAMILIES[BY_NAME[name].family].step_caches
]
RUNS += [("wan-i2v", "first-block"), ("cogvideox-i2v", "faster")]  # a picture's pipelines use the same hooks


@pytest.fixture(autouse=True)
def eager_caches(monkeypatch):
    """Settings under which the tiny random models skip within four steps (the defaults wait longer)."""
    settings = {name: dict(values) for name, values in step_caches.SETTINGS.items()}
    settings["first-block"]["threshold"] = 0.5
    settings["taylorseer"].update(cache_interval=2, disable_cache_before_step=1)
    settings["pab"]["spatial_attention_timestep_skip_range"] = (-1, 1001)
    settings["faster"]["spatial_attention_timestep_skip_range"] = (-1, 1001)
    monkeypatch.setattr(step_caches, "SETTINGS", settings)


@pytest.fixture(scope="module")
def two_blocks(build, tmp_path_factory):
    """The tiny folders with a two-block denoiser (First Block Cache needs a block after the first)."""
    made = {}

    def get(case):
        if case.name not in made:
            import diffusers
            import torch

            folder = tmp_path_factory.mktemp(f"{case.name}-2") / "model"
            shutil.copytree(build(case), folder)
            for part in ("transformer", "transformer_2"):
                path = folder / part / "config.json"
                if path.exists() and "num_layers" in json.loads(path.read_text()):
                    config = json.loads(path.read_text())
                    kept = {k: v for k, v in config.items() if not k.startswith("_")}
                    torch.manual_seed(0)
                    model = getattr(diffusers, config["_class_name"]).from_config({**kept, "num_layers": 2})
                    model.save_pretrained(folder / part)
            made[case.name] = folder
        return made[case.name]

    return get


def request_for(case, **changes):
    fields = dict(prompt=PROMPT, model="tiny", frames=case.frames, width=case.size, height=case.size)
    fields.update(steps=STEPS, guidance=case.guidance, fps=case.fps, seed=3)
    return GenerationRequest(**{**fields, **changes})


def direct_with_cache(case, folder, cache: str, monkeypatch, image=None) -> np.ndarray:
    """The documented diffusers call (tiny_diffusers.direct) with the same cache config enabled on the denoiser(s)."""
    import diffusers

    pipeline_class = getattr(diffusers, CLASSES[(case.family, case.task)])
    load = pipeline_class.from_pretrained

    def with_cache(*args, **kwargs):
        pipe = load(*args, **kwargs)
        for denoiser in step_caches.denoisers(pipe):
            denoiser.enable_cache(step_caches.cache_config(cache, pipe, denoiser))
        return pipe

    monkeypatch.setattr(pipeline_class, "from_pretrained", with_cache)
    return direct_frames(case, folder, PROMPT, image, seed=3, steps=STEPS)


@pytest.mark.parametrize(("name", "cache"), RUNS, ids=[f"{n}-{c}" for n, c in RUNS])
def test_a_cache_skips_work_and_draws_what_diffusers_draws(name, cache, two_blocks, monkeypatch, tmp_path):
    case = BY_NAME[name]
    image = str(gradient_picture(tmp_path / "first.png")) if case.image_to_video else None
    folder = two_blocks(case)
    backend = open_backend(str(folder), RunOptions(device="cpu", cache=cache))
    events = list(backend.generate(request_for(case, image=image)))

    assert [e.step for e in events if isinstance(e, Progress)] == list(range(1, STEPS + 1))
    assert len([e for e in events if isinstance(e, Preview)]) == STEPS
    stats = events[-1].stats
    assert isinstance(events[-1], Finished) and stats["step_cache"] == cache
    assert stats["cache_skipped"] > 0 and stats["cache_computed"] > 0 and stats["denoiser_calls"] > 0
    assert not any(d.is_cache_enabled for d in step_caches.denoisers(backend.pipe))  # removed after the run

    frames = next(e for e in events if isinstance(e, Frames)).frames
    expected = direct_with_cache(case, folder, cache, monkeypatch, image)
    assert frames.shape == expected.shape and expected.std() > 1
    assert np.abs(frames.astype(int) - expected.astype(int)).max() <= 1


def test_auto_takes_the_family_default_and_off_counts_nothing(two_blocks):
    case = BY_NAME["wan-t2v"]
    backend = open_backend(str(two_blocks(case)), RunOptions(device="cpu", cache="auto"))
    assert list(backend.generate(request_for(case)))[-1].stats["step_cache"] == FAMILIES["wan"].auto_cache
    backend.options = RunOptions(device="cpu")  # the loaded pipeline serves a run without a cache
    assert "step_cache" not in list(backend.generate(request_for(case)))[-1].stats


@pytest.mark.parametrize(("name", "cache"), [("ltx-t2v", "first-block"), ("hunyuan15-t2v", "taylorseer")])
def test_cancel_with_a_cache_stops_and_removes_it(name, cache, two_blocks):
    case = BY_NAME[name]  # HunyuanVideo 1.5's steps are seen from its denoiser's calls, beside the cache's hooks
    backend = open_backend(str(two_blocks(case)), RunOptions(device="cpu", cache=cache))
    seen: list[int] = []
    with pytest.raises(Cancelled):
        for event in backend.generate(request_for(case, steps=6), should_stop=lambda: bool(seen)):
            if isinstance(event, Progress):
                seen.append(event.step)
    assert seen and max(seen) < 6
    assert not backend.pipe.transformer.is_cache_enabled
    assert isinstance(list(backend.generate(request_for(case)))[-1], Finished)  # and the next run works


@pytest.mark.parametrize(
    ("name", "cache", "message"),
    [
        ("wan-t2v", "faster", "Wan's denoiser takes first-block, taylorseer, pab"),
        ("ltx-t2v", "mag", "calibrated for each model"),
        ("sana-video-t2v", "first-block", "takes no step cache"),
        ("animatediff", "pab", "takes no step cache"),
    ],
)
def test_a_cache_the_family_does_not_take_is_refused_before_loading(name, cache, message, build):
    case = BY_NAME[name]
    backend = open_backend(str(build(case)), RunOptions(device="cpu", cache=cache))
    with pytest.raises(InvalidRequest, match=message) as refused:
        next(backend.generate(request_for(case)))
    assert "\n" not in str(refused.value) and backend.pipe is None


def test_faster_cache_runs_without_guidance(build):
    """FasterCache splits a guided batch in two; a run at guidance 1 has one pass, and is told so."""
    step_caches.SETTINGS["faster"]["spatial_attention_timestep_skip_range"] = (-1, 681)  # the default: not step 1
    case = BY_NAME["cogvideox-t2v"]
    backend = open_backend(str(build(case)), RunOptions(device="cpu", cache="faster"))
    assert list(backend.generate(request_for(case, guidance=1.0)))[-1].stats["cache_skipped"] > 0
