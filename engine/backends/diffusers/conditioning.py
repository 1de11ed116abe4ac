"""The creative controls on diffusers pipelines: a clip that ends on a picture, a video re-rendered, a clip
continued, prompts that change along the clip.

check_controls() refuses, in one line and before anything loads, what a model cannot do (its family has no such
pipeline, or its folder's model lacks the input: Wan 2.1's image-to-video model has no last-frame input, Wan 2.2
TI2V ignores one) and returns the request as the pipeline makes it; prepare() reads the inputs into Controls,
control_arguments() turns the family's common call arguments into the control's, and Controls.continuation() cuts
an extension's new frames out of what the pipeline made.

An extension is conditioned on the clip's last frames: LTX-Video and LTX-2 take the last 8k+1 of them (at most
EXTEND_CONTEXT_FRAMES) as a video condition at frame 0, SkyReels-V2 as the history its diffusion forcing continues,
and the other image-to-video families take the last frame as their first. The output's frames that re-make the
clip's are dropped, so the continuation starts with a new frame.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.api.controls import prompt_segments
from engine.api.errors import InvalidRequest
from engine.api.request import GenerationRequest
from engine.backends.diffusers.arguments import SKYREELS_ADDNOISE, SKYREELS_WINDOW
from engine.registry.families import EXTEND_CONTEXT_FRAMES, FAMILIES, TASKS, Family, request_task

# families whose video-to-video pipeline denoises only the last strength x steps of the steps (the LTX ones run
# them all, the video's tokens joining once the schedule's noise is below strength)
STEP_CUTTING_V2V = ("wan", "animatediff", "cogvideox")
CONDITION_PIPELINES = ("ltx", "ltx2")  # conditions=[...] at frame indices
_clips: dict = {}  # the last clip read, by (path, mtime, size): check() and generate() decode it once


@dataclass(frozen=True)
class Controls:
    """How one request's pipeline call is made."""

    family: str
    task: str  # engine.registry.families.TASKS
    load_task: str  # the task whose pipeline class is loaded (one class is not loaded twice for two tasks)
    call: GenerationRequest  # the request as the pipeline makes it (an extension's frames and size)
    video: tuple = ()  # PIL frames handed to the pipeline: the video to re-render, the clip's last frames
    image: object = None  # PIL picture an image-to-video extension starts from (the clip's last frame)
    last_image: object = None  # PIL picture the clip ends on
    original: np.ndarray | None = None  # the clip an extension continues, (f, h, w, 3) uint8
    skip: int = 0  # leading output frames that re-make the clip (an extension's), dropped
    new_frames: int = 0  # frames an extension adds

    def continuation(self, frames: np.ndarray) -> np.ndarray:
        """An extension's new frames out of the pipeline's output, at the original clip's size."""
        assert self.original is not None
        new = frames[self.skip : self.skip + self.new_frames]
        height, width = self.original.shape[1:3]
        if new.shape[1:3] != (height, width):
            from engine.util.images import fit_to_size

            new = np.stack([fit_to_size(frame, width, height) for frame in new])
        return new


def _can(attribute: str) -> str:
    return ", ".join(f.label for f in FAMILIES.values() if getattr(f, attribute))


def check_controls(
    family: Family | None, tasks: tuple[str, ...], folder: Path | None, request: GenerationRequest, model: str
) -> GenerationRequest:
    """InvalidRequest (one line) for a control this model cannot take; else the request as its pipeline makes it.
    family None (a hub id not downloaded yet): nothing is known, the request is checked again once it is."""
    task = request_task(request)
    if family is None:
        return request
    if request.prompt_changes and not family.prompt_changes:
        raise InvalidRequest(
            f"{model} takes one prompt for the whole clip; prompts that change along it work with {_can('prompt_changes')}"
        )
    wan = _wan_traits(folder) if family.name == "wan" and folder is not None else {}
    if task == "first_last" and (family.first_last_class is None or "i2v" not in tasks or wan.get("no_last")):
        raise InvalidRequest(f"{model} cannot end on a picture; families that can: {_ends_on_a_picture()}")
    if task == "v2v":
        return _check_video(family, tasks, wan, request, model)
    if task == "extend":
        return _extension(family, tasks, folder, request, model)[0]
    return request


def _ends_on_a_picture() -> str:
    return _can("first_last_class").replace("Wan", "Wan (2.1 FLF2V, 2.2 A14B image-to-video)")


def _check_video(family: Family, tasks, wan: dict, request: GenerationRequest, model: str) -> GenerationRequest:
    if family.v2v_class is None or "t2v" not in tasks or wan.get("no_v2v"):
        raise InvalidRequest(f"{model} cannot re-render a video; families that can: {_can('v2v_class')}")
    if family.name in STEP_CUTTING_V2V and int(request.steps * request.strength) < 1:
        raise InvalidRequest(
            f"strength {request.strength:g} of {request.steps} steps leaves no step to take: use at least "
            f"{math.ceil(1 / request.strength)} steps or a higher strength"
        )
    have = len(read_clip(request.video))
    if have < request.frames:
        step = family.frame_step
        fits = (have - 1) // step * step + 1
        raise InvalidRequest(
            f"{request.video} has {have} frames and {model} re-renders its first --frames {request.frames}: ask for "
            f"{fits} or fewer ({family.label} makes {step}k+1)"
            if step > 1
            else f"{request.video} has {have} frames: ask for {have} or fewer (--frames)"
        )
    return request


def _extension(family: Family, tasks, folder: Path | None, request: GenerationRequest, model: str):
    """(the call request, frames of the clip it is conditioned on, output frames to skip) for an extension."""
    if family.extend_class is None and (family.i2v_class is None or "i2v" not in tasks):
        raise InvalidRequest(
            f"{model} makes clips from text alone, so it cannot continue one: pick an image-to-video model or "
            f"{_can('extend_class')}"
        )
    clip = len(read_clip(request.extends))
    new = request.frames
    if family.name in CONDITION_PIPELINES:
        context = min(EXTEND_CONTEXT_FRAMES, (clip - 1) // 8 * 8 + 1)
        frames, skip = context + 8 * math.ceil(new / 8), context
    elif family.name == "skyreels_v2":  # whole causal blocks of latent frames, or diffusers cuts the newest off
        block = _causal_block(folder)
        latents = min((EXTEND_CONTEXT_FRAMES - 1) // 4 + 1, (clip - 1) // 4 + 1) // block * block
        if latents < 1:
            raise InvalidRequest(f"{model} continues clips of at least {4 * block - 3} frames; this one has {clip}")
        context = 4 * (latents - 1) + 1
        # the output is the history as given, then all the frames decoded: the history again, then the new ones
        frames, skip = context + 4 * math.ceil(new / 4), 2 * context
    else:  # image-to-video from the clip's last frame: the output's first frame is that frame again
        step = family.frame_step
        frames = max(family.min_frames_i2v, (new + step - 1) // step * step + 1)
        context, skip = 1, 1
    multiple = max(family.size_multiple, 1)
    width, height = (
        max(multiple, family.min_size, round(v / multiple) * multiple) for v in (request.width, request.height)
    )
    call = replace(request, frames=frames, width=width, height=height, image=request.extends)
    return call, context, skip


def _causal_block(folder: Path | None) -> int:
    config = _json(folder / "transformer" / "config.json") if folder else {}
    return int(config.get("num_frame_per_block") or 1)


def _wan_traits(folder: Path) -> dict:
    """What a Wan folder's model lacks: no_last (Wan 2.1's image-to-video model takes one picture's CLIP tokens, Wan
    2.2 TI2V ignores a last frame), no_v2v (only Wan 2.1's text-to-video latents fit WanVideoToVideoPipeline)."""
    index = _json(folder / "model_index.json")
    transformer = _json(folder / "transformer" / "config.json")
    two_experts = (index.get("transformer_2") or [None])[0] is not None
    ti2v = bool(index.get("expand_timesteps"))
    flf2v = transformer.get("image_dim") is None or transformer.get("pos_embed_seq_len") is not None
    t2v_latents = transformer.get("in_channels") == transformer.get("out_channels")
    return {"no_last": ti2v or not flf2v, "no_v2v": ti2v or two_experts or not t2v_latents}


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_clip(path: str) -> np.ndarray:
    """The frames of a video or clip (engine.util.videos.load_video), decoded once for check() and generate()."""
    from engine.util.videos import load_video

    resolved = Path(path).expanduser()
    try:
        stat = resolved.stat()
        key = (str(resolved.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    if key is None or key not in _clips:
        frames, _ = load_video(resolved)
        _clips.clear()
        if key is None:
            return frames
        _clips[key] = frames
    return _clips[key]


def prepare(family: Family, tasks, folder: Path | None, request: GenerationRequest, model: str) -> Controls:
    """Controls for a request that passed check_controls: its inputs read and fitted to the call's size."""
    from PIL import Image

    from engine.util.images import fit_to_size, load_image

    task = request_task(request)
    call = check_controls(family, tasks, folder, request, model)

    def pictures(frames) -> tuple:
        return tuple(Image.fromarray(fit_to_size(f, call.width, call.height)) for f in frames)

    cls = family.pipeline_class(task)
    load_task = next(t for t in TASKS if _class(family, t) == cls)  # LTX's three controls share one pipeline
    controls = Controls(family.name, task, load_task, call)
    if task == "first_last":
        return replace(controls, last_image=Image.fromarray(load_image(request.last_image)))
    if task == "v2v":
        return replace(controls, video=pictures(read_clip(request.video)[: request.frames]))
    if task == "extend":
        original = read_clip(request.extends)
        _, context, skip = _extension(family, tasks, folder, request, model)
        video = pictures(original[-context:])
        image = video[-1] if family.extend_class is None else None
        return replace(controls, video=video, image=image, original=original, skip=skip, new_frames=request.frames)
    return controls


def _class(family: Family, task: str) -> str | None:
    try:
        return family.pipeline_class(task)
    except InvalidRequest:
        return None


def control_arguments(controls: Controls, args: dict) -> dict:
    """The family's common call arguments (engine.backends.diffusers.arguments) turned into the control's."""
    family, task, call = controls.family, controls.task, controls.call
    if call.prompt_changes:  # FreeNoise's keyframes: each prompt holds until the frame before the next one
        segments = prompt_segments(call.prompt, call.prompt_changes, call.frames)
        args["prompt"] = {frame: text for first, end, text in segments for frame in (first, end - 1)}
    if task in ("t2v", "i2v") or (task == "extend" and controls.image is not None):
        return args  # an image-to-video extension is called as image-to-video, from the clip's last frame
    if family in CONDITION_PIPELINES:
        args["conditions"] = _conditions(controls, args.pop("image", None))
        return args
    if task == "first_last":
        args["last_image"] = controls.last_image
    elif task == "v2v":
        args.pop("num_frames")
        args.update(video=list(controls.video), strength=call.strength)
    elif task == "extend":  # SkyReels-V2: diffusion forcing continues the clip's last frames
        args.pop("image", None)
        args.update(
            video=list(controls.video),
            overlap_history=len(controls.video),
            base_num_frames=min(call.frames, SKYREELS_WINDOW),  # a window past the clip's end would be empty
            addnoise_condition=SKYREELS_ADDNOISE,
        )
    return args


def _conditions(controls: Controls, first) -> list:
    """LTX's frame conditions: the pictures at the first and last frames; the video at frame 0, kept as it is for an
    extension, or noised as far as strength says to re-render it."""
    if controls.family == "ltx2":
        from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

        def condition(frames, index, strength=1.0):
            return LTX2VideoCondition(frames, index, strength)
    else:
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        def condition(frames, index, strength=1.0):
            key = "video" if isinstance(frames, list) else "image"
            return LTXVideoCondition(**{key: frames}, frame_index=index, strength=strength)

    call = controls.call
    if controls.task == "first_last":
        return [condition(first, 0), condition(controls.last_image, call.frames - 1)]
    if controls.task == "v2v":
        return [condition(list(controls.video), 0, 1.0 - call.strength)]
    return [condition(list(controls.video), 0)]
