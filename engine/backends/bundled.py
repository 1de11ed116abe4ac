"""The bundled Kinemo models as a backend: request in, events out (the Backend contract of engine.backends.base)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from functools import cached_property
from pathlib import Path

from engine.api.errors import InvalidRequest
from engine.api.events import Event, Finished, Frames, Loaded, MemoryNotice, Notice
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends import run_checks
from engine.kinemo.vocabulary import mentions_camera, picture_move, tokenize
from engine.registry.assets import CAMERA_DIR, FAST_DIR, STARTER_DIR, UPSCALER_DIR, read_config, read_sampling
from engine.registry.resolve import STARTER_ID
from engine.util.images import load_image

log = logging.getLogger("kinemo.engine")

TIMESTEP_SPACING = "trailing"
MAX_FRAMES = 1024
DEFAULT_KEYS = ("steps", "guidance", "width", "height", "frames", "fps")


def unknown_words_notice(label: str, text: str) -> Notice | None:
    words = tokenize(text).unknown_words
    if not words:
        return None
    listed = ", ".join(f"'{w}'" for w in dict.fromkeys(words))
    return Notice(
        f"the bundled model does not know these words in the {label} and cannot follow them: {listed} "
        "(`kinemo vocabulary` lists the words it knows)"
    )


def bundled_device(device: str) -> str:
    """The bundled model is small: "auto" keeps it on the CPU, which is fast enough and always there."""
    if device == "auto":
        return "cpu"
    from engine.backends.devices import pick_device

    return pick_device(device)


class BundledBackend:
    """Kinemo's own small model, trained by engine.training.train and shipped in assets/."""

    def __init__(
        self,
        folder: str | Path = STARTER_DIR,
        options: RunOptions | None = None,
        model_id: str = STARTER_ID,
        camera_folder: Path | None = CAMERA_DIR,
        upscaler_folder: Path | None | str = "paired",
    ):
        self.options = (options or RunOptions()).validate()
        run_checks.bundled_cache(self.options)
        run_checks.bundled_speed(self.options)
        # the camera model animates a given picture; without one, camera prompts go to the pixel model
        self.camera_folder = (
            camera_folder if camera_folder and (Path(camera_folder) / "config.json").is_file() else None
        )
        self.animator = None  # engine.backends.picture_animation.PictureAnimator, loaded on first use
        # the upscaler draws text-to-video frames larger than the model's own size again, with crisp outlines;
        # "paired": the bundled upscaler for the bundled pixel models, which it was trained to follow
        if upscaler_folder == "paired":
            bundled = Path(folder).resolve() in (STARTER_DIR.resolve(), FAST_DIR.resolve())
            upscaler_folder = UPSCALER_DIR if bundled else None
        self.upscaler_folder = (
            Path(upscaler_folder) if upscaler_folder and (Path(upscaler_folder) / "config.json").is_file() else None
        )
        self.upscaler = None  # engine.kinemo.upscaler.KinemoUpscaler, loaded on first use
        self.folder = Path(folder)
        self.device = bundled_device(self.options.device)
        self.model_id = model_id
        self.model = None
        self.sampler = None
        self.onnx = None  # engine.accel's OnnxDenoiser (--onnx) or OnnxTemporal (--onnx-temporal)

    # -- loading ---------------------------------------------------------------------------------
    def load(self) -> float:
        """Load weights once; returns the seconds it took (0 when already loaded)."""
        if self.model is not None:
            return 0.0
        started = time.perf_counter()
        from engine.backends.threads import apply_thread_policy
        from engine.kinemo.ddim import DDIMSampler
        from engine.kinemo.files import load_model
        from engine.kinemo.schedule import alphas_cumprod, make_betas

        apply_thread_policy()
        if self.options.quantize:
            from engine.accel.quantize import load_quantized

            model = load_quantized(self.folder, self.options.quantize, self.device).model
        else:
            model = load_model(self.folder).to(self.device)
        if self.options.onnx_denoiser:
            from engine.accel.onnx_denoiser import OnnxDenoiser

            self.onnx = OnnxDenoiser.prepare(model)  # the whole step as one graph, exported once per model
        elif self.options.onnx_temporal:
            from engine.accel.onnx_temporal import OnnxTemporal

            self.onnx = OnnxTemporal.prepare(model, self.device)  # exported once per model, then reused
        config = model.config
        betas = make_betas(config.beta_schedule, config.num_train_timesteps, snr_scale=config.snr_scale)
        self.sampler = DDIMSampler(alphas_cumprod(betas), prediction_type=config.prediction_type, clip_sample=True)
        self.model = model
        return time.perf_counter() - started

    def release(self) -> None:
        self.model = self.sampler = self.onnx = None

    @property
    def max_frames(self) -> int:
        """The model's temporal window, known before its weights are loaded."""
        if self.model is not None:
            return self.model.config.max_frames
        return int(read_config(self.folder).get("max_frames", 16))

    def defaults(self) -> dict:
        """Sizes, steps and guidance a request gets when the user gives none."""
        d = GenerationRequest(prompt="-")
        defaults = {k: getattr(d, k) for k in DEFAULT_KEYS}
        if self.fixed_timesteps:
            defaults["steps"] = len(self.fixed_timesteps)
        return defaults

    @cached_property
    def fixed_timesteps(self) -> list[int] | None:
        """The timesteps a distilled model was trained for; None for a model that takes any step count."""
        return read_sampling(self.folder)

    def check(self, request: GenerationRequest) -> None:
        """Validate what this backend needs beyond the request's own ranges."""
        request.validate()
        if request.loras:
            raise InvalidRequest(
                f"{self.model_id} takes no LoRA: LoRAs adapt the diffusers models (kinemo models list)"
            )
        fixed = self.fixed_timesteps
        if fixed and request.steps != len(fixed):
            raise InvalidRequest(f"{self.model_id} is distilled for {len(fixed)} steps; use --steps {len(fixed)}")
        low, high = 1, MAX_FRAMES  # beyond the model's window, clips are made window by window
        if not low <= request.frames <= high:
            raise InvalidRequest(f"frames must be between {low} and {high} for {self.model_id}, got {request.frames}")
        run_checks.bundled_cache(self.options, request.frames > self.max_frames or bool(request.extends))
        self._check_controls(request)

    def _check_controls(self, request: GenerationRequest) -> None:
        """What the bundled models make of a request's creative controls, said in one line before any work."""
        if request.last_image:
            raise InvalidRequest(
                f"{self.model_id} cannot end a clip on a picture: it takes one picture, always as the first frame "
                "(pick a model that takes a last frame, e.g. wan2.2-i2v-a14b or ltx-2.3)"
            )
        if request.video:
            raise InvalidRequest(
                f"{self.model_id} cannot re-render a video; video-to-video needs e.g. wan2.1-t2v-1.3b or ltx-2.3"
            )
        camera = picture_move(request.prompt) is not None and self.camera_folder is not None
        if request.prompt_changes and (self.animates(request) or (request.extends and camera)):
            raise InvalidRequest(
                "the camera model makes one move per clip from its caption; prompt changes apply to object prompts"
            )
        if request.extends:
            from engine.backends.bundled_extend import clip_frames

            clip_frames(request, MAX_FRAMES)  # a clip that cannot be read is one line here, before any work

    def notices(self, request: GenerationRequest) -> list[Notice]:
        found = [
            unknown_words_notice("prompt", request.prompt),
            unknown_words_notice("negative prompt", request.negative_prompt),
        ]
        return [n for n in (*found, self._picture_notice(request)) if n]

    def _picture_notice(self, request: GenerationRequest) -> Notice | None:
        """What happens to a picture or a camera move the request may not get as the user thinks."""
        move = picture_move(request.prompt)
        if move and not request.image and not request.extends:
            return Notice(
                "a camera move needs a picture to move over (an --image, or one dropped on the studio's window); "
                "without one the pixel model draws a picture of its own and moves over it (pans left or right, "
                "zooms in or out only)"
            )
        if request.image and move and self.animates(request) and (self.options.quantize or self.options.uses_onnx):
            return Notice("int8 weights and ONNX apply to the pixel model; the camera model runs as it is")
        if request.image and not move and mentions_camera(request.prompt):
            return Notice(
                "the camera model moves a picture for 'the camera <move>' (kinemo vocabulary lists the moves); this "
                "prompt goes to the pixel model, which redraws the picture at 64x64 instead"
            )
        return None

    def animates(self, request: GenerationRequest) -> bool:
        """Whether the camera model makes this request: a camera caption over a given picture."""
        return bool(request.image) and picture_move(request.prompt) is not None and self.camera_folder is not None

    # -- memory ----------------------------------------------------------------------------------
    def plan(self, request: GenerationRequest, memory: str | None = None):
        """The memory plan of a run (one way to run: an estimate against what is free), with this process's
        baseline measured once the modules the run uses are imported."""
        import torch  # noqa: F401 - what the run imports, counted in the baseline

        import engine.caches.temporal_kv  # noqa: F401
        import engine.kinemo.ddim  # noqa: F401
        import engine.kinemo.model  # noqa: F401
        from engine.planning.bundled_estimate import accel_bytes, picture_render_bytes
        from engine.planning.estimate import Shape
        from engine.planning.plan import plan_bundled
        from engine.planning.system import free_ram, process_rss

        held = 0
        if self.model is not None:  # loaded by an earlier run: its weights are in the plan
            held = sum(t.numel() * t.element_size() for t in self.model.state_dict().values())
        free = free_ram()
        # an extension's windows also read the clip's last frames through the rolling cache: a longer clip's work
        frames = request.frames + (self.max_frames if request.extends else 0)
        shape = Shape("kinemo", frames, request.width, request.height, request.guidance, request.steps)
        baseline = max(process_rss() - held, 0)
        ram = None if free is None else free + held
        animates = self.animates(request)  # the camera model: int8 and ONNX do not apply, nothing more loads
        libraries = (
            0 if animates else accel_bytes(bool(self.options.quantize), self.options.uses_onnx, set(sys.modules))
        )
        mode = memory or self.options.memory
        render = 0
        if animates:
            render = picture_render_bytes(request.frames, request.width, request.height)
        elif self.upscale_side(request):  # every frame held at the output's size, a chunk of 8 upscaled at a time
            render = picture_render_bytes(request.frames, request.width, request.height, chunk=8)
        if request.extends:  # the clip being continued, as read and as handed on to the writer
            render += 2 * (request.frames + self._clip_length(request)) * request.width * request.height * 3
        return plan_bundled(
            self.folder, shape, mode, self.device, baseline, ram=ram, libraries=libraries, render=render
        )

    @staticmethod
    def _clip_length(request: GenerationRequest) -> int:
        from engine.util.videos import load_video

        return len(load_video(request.extends)[0])

    # -- generation ------------------------------------------------------------------------------
    def generate(
        self,
        request: GenerationRequest,
        should_stop: Callable[[], bool] | None = None,
        memory: str | None = None,
    ) -> Iterator[Event]:
        """Yield Loaded, MemoryNotice, Notice*, (Progress, Preview)*, Frames+, Finished; raise Cancelled if stopped."""
        from engine.backends.bundled_prompts import window_frame_to_request
        from engine.backends.bundled_windows import WindowRun, keep_proportions, sample_windows
        from engine.backends.checkpoints import window_checkpoint
        from engine.caches.bundled_step_cache import step_cache_for
        from engine.caches.conditioning_kv import conditioning_kv_cache

        # 1. check inputs, plan the memory, load the model
        self.check(request)
        plan = self.plan(request, memory)
        if request.extends:
            yield from self._extend(request, plan, should_stop)
            return
        image = load_image(request.image) if request.image else None
        if self.animates(request):
            yield from self._animate(request, image, plan, should_stop)
            return
        yield Loaded(self.model_id, self.load())
        yield MemoryNotice(plan.text(), plan)
        yield from self.notices(request)

        # 2. encode the conditioning once: prompt (each prompt of a clip whose prompt changes), negative, first frame
        cond = self._encode(request, image)
        long_clip = request.frames > self.max_frames
        prompts = self.prompt_plan(request, image, window_frame_to_request(request.frames, self.max_frames, long_clip))

        # 3. timesteps, then the windows: one for a clip the model's window holds, else rolling windows
        run = WindowRun(self.model, self.sampler, cond, request, self.timesteps(request), self.device, prompts)
        run.checkpoint = window_checkpoint(self, request, long_clip)  # a long clip is resumable in a checkpoint_dir
        if self.onnx is not None and run.long_clip:
            yield Notice(
                "ONNX covers clips the model's window holds (16 frames or fewer); this longer clip runs in torch"
            )

        # 4. denoise with the caches attached; finished frames leave window by window
        stats: dict = {}
        with ExitStack() as contexts:
            contexts.enter_context(conditioning_kv_cache(self.model, self.options.kv_cache))
            if self.onnx is not None and not run.long_clip:
                contexts.enter_context(self.onnx.attached(self.model))
            step_cache = step_cache_for(self.options.cache)  # refused for long clips in check()
            if step_cache is not None:
                contexts.enter_context(step_cache.attached(self.model))
            events = sample_windows(run, contexts, should_stop, stats)
            side = self.upscale_side(request)
            if side is not None:
                events = self._upscaled(events, side, stats)
            if image is None and request.width != request.height:  # square frames, shown unstretched
                yield Notice(
                    f"the bundled model draws square frames; at {request.width}x{request.height} their sides are "
                    "extended from their edges, so what it draws keeps its proportions"
                )
                events = keep_proportions(events, request.width, request.height)
            seconds = yield from events
        yield Finished(request.frames, seconds, stats | (step_cache.stats() if step_cache else {}))

    def timesteps(self, request: GenerationRequest) -> list[int]:
        from engine.kinemo.ddim import ddim_timesteps

        return self.fixed_timesteps or ddim_timesteps(request.steps, self.sampler.num_train_timesteps, TIMESTEP_SPACING)

    def prompt_plan(self, request: GenerationRequest, image, frame_of):
        """Each segment's prompt encoded (engine.backends.bundled_prompts), or None when the prompt never changes."""
        from engine.backends.bundled_prompts import PromptPlan, segment_prompts

        if not request.prompt_changes:
            return None
        segments = segment_prompts(request)
        conds = [self._encode(request.with_changes(prompt=text), image) for _, text in segments]
        return PromptPlan(conds, [first for first, _ in segments], frame_of)

    def _extend(self, request: GenerationRequest, plan, should_stop) -> Iterator[Event]:
        """The clip, then its continuation (engine.backends.bundled_extend): the camera model's move for a camera
        caption, else the pixel model's."""
        from engine.backends import bundled_extend as extend

        original = extend.clip_frames(request, MAX_FRAMES)
        stats: dict = {"extended_from": len(original)}
        camera = picture_move(request.prompt) is not None and self.camera_folder is not None
        started = time.perf_counter()
        if camera and self.animator is None:
            from engine.backends.picture_animation import PictureAnimator
            from engine.backends.threads import apply_thread_policy

            apply_thread_policy()
            self.animator = PictureAnimator(self.camera_folder)
        yield Loaded(self.model_id, time.perf_counter() - started if camera else self.load())
        yield MemoryNotice(plan.text(), plan)
        yield from self.notices(request)
        yield Frames(0, original)
        started = time.perf_counter()
        if camera:
            yield from extend.camera_continuation(self.animator, request, original, should_stop, stats)
        else:
            yield from extend.pixel_continuation(extend.Extension(self, request, original), should_stop, stats)
        yield Finished(len(original) + request.frames, time.perf_counter() - started, stats)

    def upscale_side(self, request: GenerationRequest) -> int | None:
        """The side the upscaler draws this request's square frames at (the output's shorter side, which the
        widened frame spans), or None: text-to-video no larger than the model draws, a picture, no upscaler."""
        side = min(request.width, request.height)
        if self.upscaler_folder is None or request.image or side <= int(read_config(self.folder).get("size", 64)):
            return None
        return side

    def _upscaled(self, events: Iterator[Event], side: int, stats: dict) -> Iterator[Event]:
        """events with every Frames drawn again at side x side by the upscaler (engine.kinemo.upscaler)."""
        from engine.backends.bundled_windows import map_frames
        from engine.kinemo.upscaler import load_upscaler, upscale_frames

        if self.upscaler is None:
            self.upscaler = load_upscaler(self.upscaler_folder)
        stats["upscaled_to"] = side
        return map_frames(events, lambda frames: upscale_frames(self.upscaler, frames, side, side))

    def _animate(self, request: GenerationRequest, image, plan, should_stop) -> Iterator[Event]:
        """A given picture moved as the caption says: the camera model draws the motion, the picture is rendered
        through it at the output's size (engine.backends.picture_animation)."""
        from engine.backends.picture_animation import PictureAnimator
        from engine.backends.threads import apply_thread_policy

        started = time.perf_counter()
        if self.animator is None:
            apply_thread_policy()
            self.animator = PictureAnimator(self.camera_folder)
        yield Loaded(self.model_id, time.perf_counter() - started)
        yield MemoryNotice(plan.text(), plan)
        yield from self.notices(request)
        stats: dict = {"camera_model": True}
        started = time.perf_counter()
        yield from self.animator.animate(request, image, should_stop, stats)
        yield Finished(request.frames, time.perf_counter() - started, stats)

    def _encode(self, request: GenerationRequest, image):
        """The conditioning of a request (engine.backends.bundled_encode)."""
        from engine.backends.bundled_encode import encode_request

        return encode_request(self.model, self.device, request, image)
