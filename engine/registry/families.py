"""What Kinemo knows about each diffusers video family, one Family record each: pipeline classes and the
model_index.json classes that identify a folder, frame and size rules, negative-prompt support, which of
Kinemo's caches and accelerations apply, and the memory calibration. The call arguments live with the
backend (engine.backends.diffusers.arguments).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.api.errors import InvalidRequest
from engine.api.request import GenerationRequest

# what a request asks a pipeline to do -> the words messages use for it
TASKS = {
    "t2v": "text-to-video",
    "i2v": "image-to-video",
    "first_last": "first-and-last-frame",
    "v2v": "video-to-video",
    "extend": "clip extension",
}
EXTEND_CONTEXT_FRAMES = 17  # frames of a clip that condition its continuation where a family takes video (4-8k+1)


def request_task(request: GenerationRequest) -> str:
    """The task a request asks for: a clip to extend, a video to re-render, two pictures, one, or text alone."""
    if request.extends:
        return "extend"
    if request.video:
        return "v2v"
    if request.last_image:
        return "first_last"
    return "i2v" if request.image else "t2v"


@dataclass(frozen=True)
class MemoryCalibration:
    """CPU/fp32 constants of the memory estimate, fitted by `python bench/bench_memory_plan.py --calibrate`
    (engine.planning.estimate says how they enter it; the means of two runs, spread up to 10 % of a peak)."""

    den_fixed: float  # MB the first denoising step adds whatever the size (oneDNN buffers, text encoding, ...)
    den_k: float  # denoiser activation units alive at the step's peak
    dec_fixed: float  # MB the decode phase holds whatever the size (what the allocator kept from denoising)
    k_px: float  # extra floats per decoded pixel beyond K_LIVE x channels (the 3D VAEs' conv workspaces)


@dataclass(frozen=True)
class Family:
    """Everything Kinemo knows about one diffusers video family; a new family is one more record here."""

    name: str
    label: str
    t2v_class: str | None
    i2v_class: str | None
    latent_layout: str  # einops pattern of the latents the step callback sees ("packed": LTX's tokens)
    frame_step: int  # frame counts must be frame_step * k + 1 (1 = any count)
    size_multiple: int
    memory: MemoryCalibration
    # pipeline class recorded in a folder's model_index.json -> the tasks such a folder can do
    pipelines: dict[str, tuple[str, ...]] = field(default_factory=dict)
    negative_prompt: bool = True
    unet: bool = False  # a UNet denoiser whose cross-attention sees one copy per frame (conditioning K/V reuse)
    cfg_sequential: bool = False  # runs the conditional and unconditional passes one after the other
    onnx_motion: bool = False  # its motion modules run in onnxruntime with --onnx-temporal
    context_frames: int | None = None  # frames its temporal layers see at once; longer clips use context windows
    # (temporal, spatial) compression of its VAE where the VAE's config does not say (engine.planning.estimate)
    compression: tuple[int, int] = (4, 8)
    audio: bool = False  # it makes sound with the frames (the pipeline returns .audio)
    guider: bool = False  # guidance is set on the pipeline's guider component, not passed to the call
    min_steps: int = 1  # fewer steps break its schedule (LTX-2's terminal shift gives NaN sigmas at one step)
    min_size: int = 16  # its VAE cannot decode smaller frames
    step_callback: bool = True  # the pipeline takes callback_on_step_end (else steps are seen from its denoiser)
    min_frames_i2v: int = 1  # fewer frames from a picture break it (Kandinsky 5's image-to-video gives NaN)
    # the creative controls (engine.backends.diffusers.conditioning): the pipeline class that ends a clip on a
    # picture, re-renders a video, continues a clip from its last frames (None: from its last frame, image-to-video)
    first_last_class: str | None = None
    v2v_class: str | None = None
    extend_class: str | None = None
    prompt_changes: bool = False  # its pipeline takes prompts that change along the clip
    # the step caches its denoiser takes through diffusers' hooks (engine.backends.diffusers.step_caches), found by
    # running each on the tiny pipelines; auto_cache: what --cache auto uses, "off" where none is known to help.
    # Measured: First Block Cache at diffusers' default threshold (0.05), 20 steps, the tiny pipelines with two
    # random blocks: Wan skipped 8 of 80 block calls, LTX-Video 5 of 40, CogVideoX none (so its auto is off).
    step_caches: tuple[str, ...] = ()
    auto_cache: str = "off"

    def pipeline_class(self, task: str) -> str:
        """The diffusers class for a task (TASKS); InvalidRequest naming what this family lacks."""
        name = {
            "t2v": self.t2v_class,
            "i2v": self.i2v_class,
            "first_last": self.first_last_class,
            "v2v": self.v2v_class,
            "extend": self.extend_class or self.i2v_class,
        }.get(task)
        if name is None:
            raise InvalidRequest(f"{self.label} has no {TASKS.get(task, task)} pipeline")
        return name

    def check(self, request: GenerationRequest, model: str, size_multiple: int | None = None) -> None:
        """Family rules on frames and size, with the nearest valid values in the message; size_multiple replaces
        the family's where one model of it needs larger steps (engine.registry.layout.pixels_per_token)."""
        multiple = max(self.size_multiple, size_multiple or 1)
        f = request.frames
        if request.steps < self.min_steps:
            raise InvalidRequest(f"{model} needs at least {self.min_steps} steps; {request.steps} is too few")
        for name in ("width", "height"):
            if getattr(request, name) < self.min_size:
                raise InvalidRequest(f"{model} makes frames at least {self.min_size} pixels wide and high")
        if request.image and f < self.min_frames_i2v:
            raise InvalidRequest(
                f"{model} animates a picture into at least {self.min_frames_i2v} frames; {f} is too few"
            )
        if self.frame_step > 1 and (f - 1) % self.frame_step:
            below = (f - 1) // self.frame_step * self.frame_step + 1
            raise InvalidRequest(
                f"{model} makes clips of {self.frame_step}k+1 frames; {f} is not one (use {max(below, 1)} or {below + self.frame_step})"
            )
        for name in ("width", "height"):
            value = getattr(request, name)
            if value % multiple:
                low = max(multiple, value // multiple * multiple)
                raise InvalidRequest(
                    f"{model} needs a {name} that is a multiple of {multiple}; {value} is not (use {low} or {low + multiple})"
                )


FAMILIES = {
    f.name: f
    for f in (
        Family(
            "animatediff",
            "AnimateDiff",
            "AnimateDiffPipeline",
            None,
            "b c f h w",
            1,
            8,
            MemoryCalibration(den_fixed=21, den_k=48.0, dec_fixed=56, k_px=22.0),
            {"AnimateDiffPipeline": ("t2v",)},
            unet=True,
            onnx_motion=True,
            context_frames=16,
            v2v_class="AnimateDiffVideoToVideoPipeline",
            prompt_changes=True,
        ),
        Family(
            "svd",
            "Stable Video Diffusion",
            None,
            "StableVideoDiffusionPipeline",
            "b f c h w",
            1,
            8,
            MemoryCalibration(den_fixed=15, den_k=66.0, dec_fixed=240, k_px=26.0),
            {"StableVideoDiffusionPipeline": ("i2v",)},
            negative_prompt=False,
            unet=True,
        ),
        Family(
            "wan",
            "Wan",
            "WanPipeline",
            "WanImageToVideoPipeline",
            "b c f h w",
            4,
            16,
            # den_k 12 for the transformer families is not fitted: their tiny denoisers' activations are too
            # small to show; it counts a block's tensors of the model's width (hidden, norm, q, k, v, 4x MLP...)
            MemoryCalibration(den_fixed=33, den_k=12.0, dec_fixed=55, k_px=170.0),
            {"WanPipeline": ("t2v",), "WanImageToVideoPipeline": ("i2v",)},
            cfg_sequential=True,
            first_last_class="WanImageToVideoPipeline",
            v2v_class="WanVideoToVideoPipeline",
            step_caches=("first-block", "taylorseer", "pab"),
            auto_cache="first-block",
        ),
        Family(
            "ltx",
            "LTX-Video",
            "LTXPipeline",
            "LTXImageToVideoPipeline",
            "packed",
            8,
            32,
            MemoryCalibration(den_fixed=11, den_k=12.0, dec_fixed=25, k_px=6.0),
            {name: ("t2v", "i2v") for name in ("LTXPipeline", "LTXImageToVideoPipeline", "LTXConditionPipeline")},
            compression=(8, 32),
            first_last_class="LTXConditionPipeline",
            v2v_class="LTXConditionPipeline",
            extend_class="LTXConditionPipeline",
            step_caches=("first-block", "taylorseer", "pab"),
            auto_cache="first-block",
        ),
        Family(
            "cogvideox",
            "CogVideoX",
            "CogVideoXPipeline",
            "CogVideoXImageToVideoPipeline",
            "b f c h w",
            8,
            16,
            MemoryCalibration(den_fixed=14, den_k=12.0, dec_fixed=10, k_px=388.0),
            {"CogVideoXPipeline": ("t2v",), "CogVideoXImageToVideoPipeline": ("i2v",)},
            v2v_class="CogVideoXVideoToVideoPipeline",
            step_caches=("first-block", "taylorseer", "faster", "pab"),
        ),
        Family(
            "ltx2",
            "LTX-2",
            "LTX2Pipeline",
            "LTX2ImageToVideoPipeline",
            "packed",
            8,
            32,
            MemoryCalibration(den_fixed=26, den_k=12.0, dec_fixed=55, k_px=4.0),  # den_k chosen, as for wan
            {name: ("t2v", "i2v") for name in ("LTX2Pipeline", "LTX2ImageToVideoPipeline")},
            compression=(8, 32),
            audio=True,
            min_steps=2,
            min_size=64,  # its VAE pads by reflection, which needs a few latent pixels
            first_last_class="LTX2ConditionPipeline",
            v2v_class="LTX2ConditionPipeline",
            extend_class="LTX2ConditionPipeline",
            step_caches=("taylorseer",),
        ),
        Family(
            "hunyuan15",
            "HunyuanVideo 1.5",
            "HunyuanVideo15Pipeline",
            "HunyuanVideo15ImageToVideoPipeline",
            "b c f h w",
            4,
            16,
            # den_k chosen, as for wan; the attention masks over its 1985 text and image tokens + the latent ones
            # are counted apart (engine.planning.estimate.attention_mask_bytes)
            MemoryCalibration(den_fixed=49, den_k=12.0, dec_fixed=142, k_px=17.0),
            {"HunyuanVideo15Pipeline": ("t2v",), "HunyuanVideo15ImageToVideoPipeline": ("i2v",)},
            compression=(4, 16),
            guider=True,
            step_callback=False,
            cfg_sequential=True,
            step_caches=("taylorseer", "pab"),
        ),
        Family(
            "sana_video",
            "SANA-Video",
            "SanaVideoPipeline",
            "SanaImageToVideoPipeline",
            "b c f h w",
            4,
            32,
            MemoryCalibration(den_fixed=24, den_k=12.0, dec_fixed=106, k_px=256.0),  # den_k chosen, as for wan
            {"SanaVideoPipeline": ("t2v",), "SanaImageToVideoPipeline": ("i2v",)},
        ),
        Family(
            "skyreels_v2",
            "SkyReels-V2",
            "SkyReelsV2DiffusionForcingPipeline",
            "SkyReelsV2DiffusionForcingImageToVideoPipeline",
            "b c f h w",
            4,
            16,
            MemoryCalibration(den_fixed=29, den_k=12.0, dec_fixed=103, k_px=85.0),  # den_k chosen, as for wan
            {  # one diffusion-forcing model makes clips from text or from a first frame
                "SkyReelsV2DiffusionForcingPipeline": ("t2v", "i2v"),
                "SkyReelsV2DiffusionForcingImageToVideoPipeline": ("t2v", "i2v"),
            },
            cfg_sequential=True,
            first_last_class="SkyReelsV2DiffusionForcingImageToVideoPipeline",
            extend_class="SkyReelsV2DiffusionForcingVideoToVideoPipeline",
            step_caches=("taylorseer",),
        ),
        Family(
            "kandinsky5",
            "Kandinsky 5",
            "Kandinsky5T2VPipeline",
            "Kandinsky5I2VPipeline",
            "b f h w c",
            4,
            16,
            # den_k chosen, as for wan; k_px 0 and dec_fixed chosen: past K_LIVE x channels and its VAE's mid-block
            # mask the tiny decode does not grow with the size (260-290 MB more at 128 px, 70 at 256, -60 at 256x33):
            # dec_fixed is the mean over all sizes measured, not the 168 of the two fit cases alone
            MemoryCalibration(den_fixed=17, den_k=12.0, dec_fixed=130, k_px=0.0),
            {"Kandinsky5T2VPipeline": ("t2v",), "Kandinsky5I2VPipeline": ("i2v",)},
            cfg_sequential=True,
            min_frames_i2v=17,
        ),
    )
}
# pipeline class in model_index.json -> (family, tasks)
PIPELINE_FAMILIES = {cls: (f.name, tasks) for f in FAMILIES.values() for cls, tasks in f.pipelines.items()}
