"""The keyword arguments Kinemo passes to each family's pipeline.

This is the documented contract behind "a seed means what it means in diffusers":
`kinemo generate --model M --seed S ...` calls the pipeline with exactly pipeline_arguments(...) and
generator=torch.Generator("cpu").manual_seed(S), so a direct diffusers call with the same
arguments draws the same frames.
"""

from __future__ import annotations

from engine.api.request import GenerationRequest


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
