"""The creative controls on tiny diffusers pipelines: a clip ending on a picture, video-to-video, extending a clip
and prompt changes, each equal (within 1 level of 8 bits) to the diffusers pipeline called directly with the same
arguments and generator=torch.Generator("cpu").manual_seed(seed); and what each model refuses, in one line,
before anything loads."""

import numpy as np
import pytest
from PIL import Image
from tiny_diffusers.cases import CASES
from tiny_diffusers.direct import gradient_picture

from engine.api.controls import PromptChange
from engine.api.errors import InvalidRequest
from engine.api.events import Finished, Frames, Progress
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.base import open_backend
from engine.backends.diffusers.arguments import SKYREELS_ADDNOISE, SKYREELS_WINDOW
from engine.util.videos import VideoError

CASE = {c.name: c for c in CASES}
PROMPT = "a fox runs through snow"
SEED = 3


def clip_folder(folder, frames: int, size: int = 32):
    """A clip as a folder of PNG frames (lossless, so the direct call sees the same pixels): a gradient moving right."""
    folder.mkdir()
    ys, xs = np.mgrid[0:size, 0:size]
    for i in range(frames):
        rgb = np.stack([(xs + 3 * i) * 7 % 256, ys * 255 // (size - 1), np.full_like(xs, 40 + 10 * i)], axis=-1)
        Image.fromarray(rgb.astype(np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def clip_pictures(folder) -> list:
    return [Image.open(p).convert("RGB") for p in sorted(folder.glob("*.png"))]


def request(case, **changes) -> GenerationRequest:
    fields = dict(
        prompt=PROMPT,
        model="tiny",
        frames=case.frames,
        width=case.size,
        height=case.size,
        steps=2,
        guidance=case.guidance,
        fps=case.fps,
        seed=SEED,
    )
    return GenerationRequest(**{**fields, **changes}).validate()


def run(case, build, req) -> list:
    backend = open_backend(str(build(case)), RunOptions(device="cpu"))
    return list(backend.generate(req))


def direct(case, build, class_name, **kwargs) -> np.ndarray:
    """(f, h, w, 3) uint8 frames of diffusers.<class_name> called with the case's common arguments and kwargs."""
    import diffusers
    import torch

    pipe = getattr(diffusers, class_name).from_pretrained(build(case))
    pipe.set_progress_bar_config(disable=True)
    if kwargs.pop("free_noise", None):
        pipe.enable_free_noise(**kwargs.pop("free_noise_at"))
    common = dict(prompt=PROMPT, height=case.size, width=case.size, num_inference_steps=2, guidance_scale=case.guidance)
    generator = torch.Generator("cpu").manual_seed(SEED)
    torch.manual_seed(SEED)  # SkyReels-V2 noises the history it continues from torch's global generator
    frames = pipe(**{**common, **kwargs}, generator=generator, output_type="np").frames[0]
    return (np.clip(np.asarray(frames), 0, 1) * 255).round().astype(np.uint8)


def frames_of(events) -> np.ndarray:
    return np.concatenate([e.frames for e in events if isinstance(e, Frames)])


def assert_close(made: np.ndarray, expected: np.ndarray) -> None:
    assert made.shape == expected.shape
    assert expected.std() > 1  # a real picture, not a flat one any two runs would share
    assert np.abs(made.astype(int) - expected.astype(int)).max() <= 1


def ltx_condition(**kwargs):
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

    return LTXVideoCondition(**kwargs)


# -- a clip that ends on a picture ------------------------------------------------------------------------------
def first_last_call(name, first, last, frames):
    if name == "ltx-i2v":
        conditions = [ltx_condition(image=first, frame_index=0), ltx_condition(image=last, frame_index=frames - 1)]
        return "LTXConditionPipeline", dict(conditions=conditions, frame_rate=8)
    if name == "ltx2-i2v":
        from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

        conditions = [LTX2VideoCondition(first, 0), LTX2VideoCondition(last, frames - 1)]
        return "LTX2ConditionPipeline", dict(conditions=conditions, frame_rate=24)
    if name == "skyreels-v2-i2v":
        extra = dict(fps=8, base_num_frames=SKYREELS_WINDOW)
        return "SkyReelsV2DiffusionForcingImageToVideoPipeline", dict(image=first, last_image=last, **extra)
    return "WanImageToVideoPipeline", dict(image=first, last_image=last)


@pytest.mark.parametrize("name", ["wan22-a14b-i2v", "skyreels-v2-i2v", "ltx-i2v", "ltx2-i2v"])
def test_a_clip_ends_on_a_picture_as_the_direct_call_makes_it(name, build, tmp_path):
    case = CASE[name]
    first = gradient_picture(tmp_path / "first.png", case.size, case.size)
    last = tmp_path / "last.png"
    Image.new("RGB", (case.size, case.size), (10, 200, 30)).save(last)
    events = run(case, build, request(case, image=str(first), last_image=str(last)))
    class_name, kwargs = first_last_call(name, Image.open(first).convert("RGB"), Image.open(last).convert("RGB"), 9)
    expected = direct(case, build, class_name, num_frames=case.frames, **kwargs)
    assert_close(frames_of(events), expected)


# -- video-to-video ---------------------------------------------------------------------------------------------
def v2v_call(name, video, strength):
    if name == "ltx-t2v":
        return "LTXConditionPipeline", dict(
            conditions=[ltx_condition(video=video, frame_index=0, strength=1 - strength)], num_frames=9, frame_rate=8
        )
    classes = {
        "wan-t2v": "WanVideoToVideoPipeline",
        "animatediff": "AnimateDiffVideoToVideoPipeline",
        "cogvideox-t2v": "CogVideoXVideoToVideoPipeline",
    }
    extra = {"eta": 0.0} if name == "animatediff" else {}
    return classes[name], dict(video=video, strength=strength, **extra)


@pytest.mark.parametrize("name", ["wan-t2v", "animatediff", "cogvideox-t2v", "ltx-t2v"])
def test_video_to_video_equals_the_direct_call(name, build, tmp_path):
    case = CASE[name]
    video = clip_folder(tmp_path / "video", case.frames + 3)  # longer than asked: its first frames are re-rendered
    events = run(case, build, request(case, video=str(video), strength=0.7, steps=3))
    class_name, kwargs = v2v_call(name, clip_pictures(video)[: case.frames], 0.7)
    kwargs["num_inference_steps"] = 3
    assert_close(frames_of(events), direct(case, build, class_name, **kwargs))
    steps = [e for e in events if isinstance(e, Progress)]
    assert steps[-1].total == (3 if name == "ltx-t2v" else 2)  # int(3 x 0.7) steps from the part-noised video


# -- extending a clip -------------------------------------------------------------------------------------------
def extend_call(name, clip, new):
    """(class, arguments, frames of the output that re-make the clip) of the direct call continuing clip."""
    if name == "ltx-t2v":  # the clip's last 9 frames (8k+1) as a video condition at frame 0
        return "LTXConditionPipeline", dict(conditions=[ltx_condition(video=clip[-9:])], num_frames=17, frame_rate=8), 9
    if name == "skyreels-v2-t2v":  # its last 13 frames (4k+1) as the history; the output repeats them, then decodes
        call = dict(video=clip[-13:], num_frames=17, overlap_history=13, base_num_frames=17, fps=8)
        return "SkyReelsV2DiffusionForcingVideoToVideoPipeline", dict(call, addnoise_condition=SKYREELS_ADDNOISE), 26
    frames = 9 if name == "cogvideox-i2v" else 5  # new + 1 frames, rounded up to the family's 8k+1 or 4k+1
    classes = {"cogvideox-i2v": "CogVideoXImageToVideoPipeline", "wan-i2v": "WanImageToVideoPipeline"}
    return classes[name], dict(image=clip[-1], num_frames=frames), 1


@pytest.mark.parametrize("name", ["ltx-t2v", "skyreels-v2-t2v", "cogvideox-i2v", "wan-i2v"])
def test_an_extension_is_the_clip_then_the_direct_calls_new_frames(name, build, tmp_path):
    case = CASE[name]
    clip = clip_folder(tmp_path / "clip", 13)
    events = run(case, build, request(case, extends=str(clip), frames=4))
    frames = [e for e in events if isinstance(e, Frames)]
    original = np.stack([np.asarray(p) for p in clip_pictures(clip)])
    assert frames[0].start == 0 and np.array_equal(frames[0].frames, original)
    assert frames[1].start == 13 and frames[1].frames.shape == (4, 32, 32, 3)
    assert isinstance(events[-1], Finished) and events[-1].frame_count == 17
    class_name, kwargs, skip = extend_call(name, clip_pictures(clip), 4)
    expected = direct(case, build, class_name, **kwargs)
    assert_close(frames[1].frames, expected[skip : skip + 4])


# -- prompt changes ---------------------------------------------------------------------------------------------
def test_animatediff_prompt_changes_are_freenoise_keyframes(build):
    case = CASE["animatediff"]
    changes = (PromptChange(5, "a black cat sleeps"),)
    events = run(case, build, request(case, prompt_changes=changes))
    prompts = {0: PROMPT, 4: PROMPT, 5: "a black cat sleeps", 7: "a black cat sleeps"}  # each held to the next
    free_noise = dict(context_length=case.frames, context_stride=4)
    expected = direct(
        case,
        build,
        "AnimateDiffPipeline",
        free_noise=True,
        free_noise_at=free_noise,
        prompt=prompts,
        num_frames=8,
        eta=0.0,
    )
    assert_close(frames_of(events), expected)
    plain = direct(case, build, "AnimateDiffPipeline", num_frames=8, eta=0.0)
    assert np.abs(plain.astype(int) - expected.astype(int)).max() > 1  # the change shows


# -- refusals: one line, before anything loads ------------------------------------------------------------------
def refusal(case, build, **changes) -> str:
    backend = open_backend(str(build(case)), RunOptions(device="cpu"))
    with pytest.raises(InvalidRequest) as raised:
        backend.check(request(case, **changes))
    assert backend.pipe is None
    message = str(raised.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", ["animatediff", "wan-i2v", "wan22-ti2v-i2v", "cogvideox-i2v", "wan-t2v"])
def test_a_model_that_cannot_end_on_a_picture_says_which_families_can(name, build, tmp_path):
    first = gradient_picture(tmp_path / "first.png")
    message = refusal(CASE[name], build, image=str(first), last_image=str(first))
    assert "cannot end on a picture; families that can:" in message and "LTX-Video" in message


@pytest.mark.parametrize("name", ["skyreels-v2-t2v", "wan-i2v", "wan22-a14b-t2v", "cogvideox-i2v"])
def test_a_model_without_video_to_video_says_so(name, build, tmp_path):
    message = refusal(CASE[name], build, video=str(clip_folder(tmp_path / "video", 9)))
    assert "cannot re-render a video; families that can:" in message and "AnimateDiff" in message


def test_a_file_that_is_not_a_video_is_refused(build, tmp_path):
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"not a video at all" * 10)
    message = refusal(CASE["wan-t2v"], build, video=str(fake))
    assert "clip.mp4" in message and "not a video" in message
    backend = open_backend(str(build(CASE["wan-t2v"])), RunOptions(device="cpu"))
    with pytest.raises(VideoError):  # the same error the CLI's fingerprinting raises at the boundary
        list(backend.generate(request(CASE["wan-t2v"], video=str(fake))))
    assert backend.pipe is None


def test_a_video_shorter_than_the_clip_and_a_strength_without_steps_are_refused(build, tmp_path):
    video = str(clip_folder(tmp_path / "video", 6))
    assert "has 6 frames" in refusal(CASE["wan-t2v"], build, video=video, frames=9)
    assert "use 5 or fewer" in refusal(CASE["wan-t2v"], build, video=video, frames=9).replace("ask for", "use")
    long = str(clip_folder(tmp_path / "long", 9))
    assert "leaves no step" in refusal(CASE["wan-t2v"], build, video=long, strength=0.3, steps=2)


@pytest.mark.parametrize("name", ["wan-t2v", "animatediff"])
def test_a_text_only_model_cannot_extend(name, build, tmp_path):
    message = refusal(CASE[name], build, extends=str(clip_folder(tmp_path / "clip", 9)), frames=4)
    assert "cannot continue one" in message


def test_prompt_changes_past_the_end_or_on_a_family_without_them(build):
    with pytest.raises(InvalidRequest, match="outside the clip"):
        request(CASE["animatediff"], prompt_changes=(PromptChange(8, "later"),))
    message = refusal(CASE["wan-t2v"], build, prompt_changes=(PromptChange(4, "later"),))
    assert "one prompt for the whole clip" in message and "AnimateDiff" in message


def test_the_plan_counts_each_controls_inputs(build, tmp_path):
    case = CASE["ltx-t2v"]
    backend = open_backend(str(build(case)), RunOptions(device="cpu"))
    clip = str(clip_folder(tmp_path / "clip", 13))
    plain = backend.plan(request(case))
    for changes in (dict(video=clip), dict(extends=clip, frames=9)):
        plan = backend.plan(request(case, **changes))
        assert plan.estimate.ram > plain.estimate.ram  # the video read, an extension's clip frames re-made
