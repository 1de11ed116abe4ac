"""What Kinemo knows about each diffusers video family: pipeline classes, input rules, call arguments.

The call arguments are the documented contract behind "a seed means what it means in diffusers":
`kinemo generate --model M --seed S ...` calls the pipeline with exactly pipeline_arguments(...) and
generator=torch.Generator("cpu").manual_seed(S), so a direct diffusers call with the same
arguments draws the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidRequest
from engine.request import GenerationRequest


@dataclass(frozen=True)
class Family:
    name: str
    label: str
    t2v_class: str | None
    i2v_class: str | None
    latent_layout: str  # einops pattern of the latents the step callback sees
    frame_step: int  # frame counts must be frame_step * k + 1 (1 = any count)
    size_multiple: int
    negative_prompt: bool = True

    def pipeline_class(self, task: str) -> str:
        name = self.t2v_class if task == "t2v" else self.i2v_class
        if name is None:
            raise InvalidRequest(f"{self.label} has no {'text' if task == 't2v' else 'image'}-to-video pipeline")
        return name

    def check(self, request: GenerationRequest, model: str) -> None:
        """Family rules on frames and size, with the nearest valid values in the message."""
        f = request.frames
        if self.frame_step > 1 and (f - 1) % self.frame_step:
            below = (f - 1) // self.frame_step * self.frame_step + 1
            raise InvalidRequest(
                f"{model} makes clips of {self.frame_step}k+1 frames; {f} is not one (use {max(below, 1)} or {below + self.frame_step})"
            )
        for name in ("width", "height"):
            value = getattr(request, name)
            if value % self.size_multiple:
                low = max(self.size_multiple, value // self.size_multiple * self.size_multiple)
                raise InvalidRequest(
                    f"{model} needs a {name} that is a multiple of {self.size_multiple}; {value} is not (use {low} or {low + self.size_multiple})"
                )


FAMILIES = {
    f.name: f
    for f in (
        Family("animatediff", "AnimateDiff", "AnimateDiffPipeline", None, "b c f h w", 1, 8),
        Family(
            "svd",
            "Stable Video Diffusion",
            None,
            "StableVideoDiffusionPipeline",
            "b f c h w",
            1,
            8,
            negative_prompt=False,
        ),
        Family("wan", "Wan 2.1", "WanPipeline", "WanImageToVideoPipeline", "b c f h w", 4, 16),
        Family("ltx", "LTX-Video", "LTXPipeline", "LTXImageToVideoPipeline", "packed", 8, 32),
        Family("cogvideox", "CogVideoX", "CogVideoXPipeline", "CogVideoXImageToVideoPipeline", "b f c h w", 8, 16),
    )
}


def pipeline_arguments(family: str, request: GenerationRequest, image=None, extra: dict | None = None) -> dict:
    """The keyword arguments (besides generator and callbacks) Kinemo passes to a family's pipeline.

    image is a PIL picture for image-to-video. extra holds the catalog's per-model call settings.
    """
    negative = request.negative_prompt or None
    common = dict(
        height=request.height, width=request.width, num_frames=request.frames, num_inference_steps=request.steps
    )
    if family == "svd":
        # SVD is conditioned on the picture alone; guidance ramps from 1 to the chosen scale over the frames
        args = dict(image=image, **common, min_guidance_scale=1.0, max_guidance_scale=request.guidance, fps=request.fps)
    else:
        args = dict(prompt=request.prompt, negative_prompt=negative, **common, guidance_scale=request.guidance)
        if image is not None:
            args["image"] = image
        if family == "animatediff":
            args["eta"] = request.eta
        if family == "ltx":
            args["frame_rate"] = request.fps
    args.update(extra or {})
    args["output_type"] = "np"
    return args
