"""The keyword arguments Kinemo passes to each family's pipeline.

This is the documented contract behind "a seed means what it means in diffusers":
`kinemo generate --model M --seed S ...` calls the pipeline with exactly pipeline_arguments(...) and
generator=torch.Generator("cpu").manual_seed(S), so a direct diffusers call with the same
arguments draws the same frames.
"""

from __future__ import annotations

from engine.api.request import GenerationRequest

# SkyReels-V2 diffusion forcing: a clip longer than one window is made window after window, each later window
# starting from the last OVERLAP frames of the one before, with ADDNOISE of noise on them (the values the
# model's card recommends for long videos)
SKYREELS_WINDOW, SKYREELS_OVERLAP, SKYREELS_ADDNOISE = 97, 17, 20


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
        args.update(_family_arguments(family, request, args))
    args.update(extra or {})
    args["output_type"] = "np"
    return args


def _family_arguments(family: str, request: GenerationRequest, args: dict) -> dict:
    """What one family's pipeline takes beyond (or instead of) the common arguments."""
    if family == "animatediff":
        return {"eta": request.eta}
    if family in ("ltx", "ltx2"):
        return {"frame_rate": request.fps}
    if family == "skyreels_v2":
        window = {"fps": request.fps, "base_num_frames": SKYREELS_WINDOW}
        if request.frames > SKYREELS_WINDOW:
            window.update(overlap_history=SKYREELS_OVERLAP, addnoise_condition=SKYREELS_ADDNOISE)
        return window
    if family == "sana_video":  # SANA-Video names the frame count `frames`; the size is made as asked, not
        # moved to the nearest trained aspect ratio and resized back (binning breaks the multiple-of-32 rule)
        # its prompt cleaning reads the negative prompt as text: "" where others take None
        args["negative_prompt"] = request.negative_prompt
        return {"frames": args.pop("num_frames"), "use_resolution_binning": False}
    if family == "hunyuan15":  # guidance is the guider's (engine.backends.diffusers.guiders)
        args.pop("guidance_scale")
        if "image" in args:  # the image-to-video pipeline takes its size from the picture
            args.pop("height"), args.pop("width")
    return {}


def denoising_calls(family: str, request: GenerationRequest) -> int:
    """How many times the pipeline's step callback runs: steps x windows for SkyReels-V2's long clips, the last
    strength x steps where a video-to-video pipeline starts from the video part-noised, else steps."""
    if request.video and family in ("wan", "animatediff", "cogvideox"):
        return int(request.steps * request.strength)
    if family != "skyreels_v2" or request.frames <= SKYREELS_WINDOW:
        return request.steps
    latent, base, overlap = ((n - 1) // 4 + 1 for n in (request.frames, SKYREELS_WINDOW, SKYREELS_OVERLAP))
    windows = 1 + (latent - base - 1) // (base - overlap) + 1
    return request.steps * windows
