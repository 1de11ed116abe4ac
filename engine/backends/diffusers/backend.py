"""Diffusers video pipelines as a backend: the same request in, the same events out as the bundled model
(the Backend contract of engine.backends.base). What a family is comes from engine.registry.families; how to
call it from arguments.py, how to place it in memory from placement.py, the call itself from runner.py."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from engine.api.errors import InvalidRequest, KinemoError, ModelLoadError, OutOfMemory
from engine.api.events import Event, Finished, Frames, Loaded, MemoryNotice, Notice
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends import run_checks
from engine.backends.diffusers.loading import PipelineSource, load_pipeline
from engine.backends.diffusers.runner import PipelineOutOfMemory, first_line, run_pipeline
from engine.registry.catalog import family_defaults
from engine.registry.families import FAMILIES, Family
from engine.registry.layout import DiffusersFolder, inspect_folder
from engine.registry.resolve import ModelRef

log = logging.getLogger("kinemo.engine")


class DiffusersBackend:
    """One diffusers model (any supported family), loaded lazily on the chosen device."""

    def __init__(self, ref: ModelRef, options: RunOptions | None = None, progress_class=None):
        self.options = (options or RunOptions()).validate()
        run_checks.diffusers_speed(self.options)
        if self.options.quantize and self.options.onnx_temporal:
            raise InvalidRequest(
                "--onnx-temporal and --quantize int8 do not combine for diffusers models yet; pick one"
            )
        self.ref = ref
        self.model_id = ref.name
        self.progress_class = progress_class  # tqdm class for downloads (the studio passes its own)
        self.pipe = None
        self.pipe_task: str | None = None
        self.pipe_policy = None  # the engine.planning.policies.Policy the loaded pipeline runs under
        self.last_plan = None  # the last run's engine.planning.plan.MemoryPlan
        self.onnx = None  # the OnnxMotion sessions of the loaded pipeline
        self.device: str | None = None
        self._folder: DiffusersFolder | None = None
        self._adapter: Path | None = None
        self.cache_stats: dict = {}  # the last run's step-cache counts (its Finished.stats)
        self.int8_from_cache: bool | None = None  # after an int8 load: whether the weights came from the cache

    # -- what the model is -----------------------------------------------------------------------
    @property
    def family(self) -> str | None:
        if self.ref.entry is not None:
            return self.ref.entry.family
        folder = self.local_folder()
        return folder.family if folder else None

    @property
    def tasks(self) -> tuple[str, ...]:
        if self.ref.entry is not None:
            return self.ref.entry.tasks
        folder = self.local_folder()
        return folder.tasks if folder else ("t2v", "i2v")

    def defaults(self) -> dict:
        if self.ref.entry is not None:
            return self.ref.entry.defaults()
        return family_defaults(self.family) if self.family else {}

    def hub_model(self):
        from engine.registry.hub import HubModel

        if self.ref.entry is not None:
            return HubModel.from_entry(self.ref.entry)
        return HubModel(self.ref.name, self.ref.hub_id)

    def local_folder(self) -> DiffusersFolder | None:
        """The model's pipeline folder when it is on disk (inspected once)."""
        if self._folder is None:
            if self.ref.folder is not None:
                self._folder = inspect_folder(self.ref.folder)
            else:
                from engine.registry.hub import local_paths

                found = local_paths(self.hub_model())
                if found is not None:
                    self._folder, self._adapter = inspect_folder(found[0], self.hub_model().motion_base), found[1]
        return self._folder

    def is_on_disk(self) -> bool:
        return self.local_folder() is not None

    def _on_disk(self) -> DiffusersFolder:
        folder = self.local_folder()
        if folder is None:
            raise ModelLoadError(f"{self.model_id} is not on disk; run `kinemo models pull {self.model_id}`")
        return folder

    # -- checks ----------------------------------------------------------------------------------
    def check(self, request: GenerationRequest) -> None:
        """Validate the request against this model; never downloads."""
        request.validate()
        from engine.backends.diffusers.conditioning import check_controls

        folder = self.local_folder()
        family = FAMILIES[self.family] if self.family is not None else None
        # the request as the pipeline makes it: an extension's frames and size, its clip's last frame as a picture
        request = check_controls(family, self.tasks, folder.path if folder else None, request, self.model_id)
        task = "i2v" if request.image else "t2v"
        if task not in self.tasks:
            if task == "t2v":
                raise InvalidRequest(f"{self.model_id} animates a picture: add --image PATH (image-to-video)")
            raise InvalidRequest(
                f"{self.model_id} is text-to-video only: remove --image, or pick an image-to-video model"
            )
        if family is not None:
            run_checks.diffusers_cache(self.options, family)
            entry = self.ref.entry
            multiple = folder.pixels_per_token if folder else (entry.size_multiple if entry else None)
            family.check(request, self.model_id, multiple)
            from engine.backends.diffusers.loras import check_loras

            check_loras(request, family.pipeline_class(task), self.model_id, self.options.quantize)
            if self.options.onnx_temporal and not family.onnx_motion:
                raise InvalidRequest(
                    f"--onnx-temporal works with Kinemo models and AnimateDiff, not yet with "
                    f"{family.label} ({self.model_id})"
                )

    def notices(self, request: GenerationRequest) -> list[Notice]:
        family = FAMILIES.get(self.family or "")
        notices = []
        if family and request.negative_prompt and not family.negative_prompt:
            notices.append(Notice(f"{family.label} takes no negative prompt; it is ignored"))
        if family and family.audio and request.extends:
            notices.append(
                Notice(f"{family.label} makes sound, but an extension's is left out: the clip's own is not read")
            )
        return notices

    # -- loading ---------------------------------------------------------------------------------
    def fetch(self) -> Iterator[Event]:
        """Make sure the model is on disk, downloading it (resumably) when it is not."""
        if self.local_folder() is not None:
            return
        from engine.registry.hub import pull

        size = f" (about {self.ref.entry.disk_gb:g} GB)" if self.ref.entry else ""
        yield Notice(f"{self.model_id} is not on disk; downloading it from the hub{size}")
        model = self.hub_model()
        pipeline, adapter = pull(model, self.options.token, self.progress_class)
        self._folder, self._adapter = inspect_folder(pipeline, model.motion_base), adapter

    def load(self, task: str = "t2v", policy=None) -> float:
        """Load the pipeline for a task once, placed as policy says (engine.planning.policies.Policy; default: all
        on the device); returns the seconds it took (0 when it was loaded already and only the VAE's tiling changed)."""
        from engine.backends.diffusers.placement import set_vae_tiling
        from engine.planning.policies import BY_NAME

        policy = policy or BY_NAME["none"]
        if self.options.quantize:
            policy = replace(policy, fp8=False)  # the denoiser's weights are int8 already
        if self.pipe is not None and self.pipe_task == task:
            loaded = self.pipe_policy
            if loaded is not None and (loaded.placement, loaded.fp8) == (policy.placement, policy.fp8):
                set_vae_tiling(self.pipe, policy.vae_tiling)
                self.pipe_policy = policy
                return 0.0
        if self.pipe is not None:
            self.release()  # another task, or weights placed (or stored) otherwise: load afresh
        started = time.perf_counter()
        folder = self._on_disk()
        pipe, device = self._build(folder, task, policy)
        self.pipe, self.pipe_task, self.pipe_policy, self.device = pipe, task, policy, device
        log.info("loaded %s (%s) on %s with %s", self.model_id, type(pipe).__name__, device, policy.label)
        return time.perf_counter() - started

    def _build(self, folder: DiffusersFolder, task: str, policy):
        """(pipeline, device): loaded, placed as policy says, its motion modules in ONNX when asked."""
        from engine.backends.devices import pick_device, pick_dtype
        from engine.backends.diffusers.placement import apply_policy, is_out_of_memory
        from engine.backends.threads import apply_thread_policy

        apply_thread_policy()
        device = pick_device(self.options.device)
        dtype = pick_dtype(device)
        source = PipelineSource(folder, self.ref.entry, self._adapter)
        try:
            pipe, self.int8_from_cache = load_pipeline(
                source, FAMILIES[folder.family].pipeline_class(task), dtype, self.options.quantize
            )
            pipe.set_progress_bar_config(disable=True)
            apply_policy(pipe, policy, device, dtype)
            from engine.backends.diffusers.attention import apply_speed_options

            apply_speed_options(pipe, self.options, device)  # after placement: compilation sees the offload hooks
            if self.options.onnx_temporal:
                from engine.accel.onnx_motion import OnnxMotion

                self.onnx = OnnxMotion.prepare(pipe.unet, device)  # exported once per model, then reused
        except KinemoError:
            raise
        except BaseException as exc:
            if is_out_of_memory(exc):
                raise PipelineOutOfMemory(first_line(exc)) from None
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: not a loading problem
                raise
            raise ModelLoadError(f"cannot load {self.model_id} from {folder.path}: {first_line(exc)}") from exc
        return pipe, device

    def release(self) -> None:
        """Drop the pipeline and give its memory back (the GPU's too)."""
        from engine.backends.diffusers.placement import free_device_memory

        pipe, self.pipe, self.pipe_task, self.pipe_policy, self.onnx = self.pipe, None, None, None, None
        if pipe is not None and hasattr(pipe, "remove_all_hooks"):
            try:
                pipe.remove_all_hooks()
            except Exception:  # noqa: BLE001 - freeing must not fail
                pass
        del pipe
        free_device_memory(self.device)

    # -- memory ----------------------------------------------------------------------------------
    def plan(self, request: GenerationRequest, memory: str | None = None):
        """The memory plan for a request (engine.planning.plan.MemoryPlan): reads weight headers, never loads."""
        from engine.backends.diffusers.memory_plan import plan_request

        return plan_request(self, request, memory)

    # -- generation ------------------------------------------------------------------------------
    def generate(
        self,
        request: GenerationRequest,
        should_stop: Callable[[], bool] | None = None,
        memory: str | None = None,
    ) -> Iterator[Event]:
        """Yield Loaded, MemoryNotice, Notice*, (Progress, Preview)*, Frames, Finished; raise Cancelled if stopped.

        The plan is made before loading (the policy decides how to load); running out of memory retries once
        with the next heavier policy (a Notice says so), then raises OutOfMemory."""
        from PIL import Image

        from engine.backends.diffusers.arguments import pipeline_arguments
        from engine.backends.diffusers.conditioning import control_arguments, prepare
        from engine.util.images import load_image

        # 1. check inputs; make sure the weights are on disk; plan the memory
        self.check(request)
        image = Image.fromarray(load_image(request.image)) if request.image else None
        yield from self.fetch()
        self.check(request)  # a bare hub id's family is known only now
        folder = self._on_disk()
        family = FAMILIES[folder.family]
        controls = prepare(family, self.tasks, folder.path, request, self.model_id)  # the videos read, once
        plan = self.last_plan = self.plan(request, memory)
        extra = self.ref.entry.call if self.ref.entry else {}
        arguments = pipeline_arguments(family.name, controls.call, controls.image or image, extra)
        arguments = control_arguments(controls, arguments)

        # 2. load and run; out of memory, once more with the next heavier policy
        announce = [MemoryNotice(plan.text(), plan)]  # right after Loaded, or before a retry's notice
        policy, loaded, result = plan.policy, False, None
        for attempt in (1, 2):
            try:
                seconds = self.load(controls.load_task, policy)
                if not loaded:
                    yield Loaded(self.model_id, seconds)
                    yield from announce
                    announce.clear()
                    yield from self.notices(request)
                    loaded = True
                result = yield from self._run(family, arguments, controls.call, should_stop)
                break
            except PipelineOutOfMemory as oom:
                heavier = self._after_out_of_memory(plan, policy, attempt)
                yield from announce
                announce.clear()
                yield Notice(f"out of memory with {policy.label} ({oom}); retrying once with {heavier.label}")
                policy = heavier

        # 3. finished sound (before the frames, so a writer opens knowing it), then the frames
        frames, audio, seconds = result
        start = 0
        if controls.original is not None:  # an extension: the clip, then its new frames at the clip's size
            frames, audio, start = controls.continuation(frames), None, len(controls.original)
            yield Frames(0, controls.original)
        elif frames.shape[1:3] != (request.height, request.width):  # HunyuanVideo 1.5 sizes a picture's clip itself
            yield Notice(
                f"{self.model_id} made {frames.shape[2]}x{frames.shape[1]} frames (its size for this picture); they "
                f"are exported at the asked {request.width}x{request.height}"
            )
        if audio is not None and family.audio:
            from engine.backends.diffusers.sound import pipeline_sound

            yield pipeline_sound(self.pipe, audio)
        yield Frames(start, frames)
        stats = {"seconds_per_step": seconds / max(1, request.steps), "memory_policy": policy.name, **self.cache_stats}
        yield Finished(start + len(frames), seconds, stats)

    def _after_out_of_memory(self, plan, policy, attempt: int):
        """The policy to retry with, its way cleared; OutOfMemory when none is left or this was the retry."""
        from engine.backends.diffusers.placement import free_device_memory
        from engine.planning.plan import gb

        heavier = plan.next_policy(policy)
        if attempt == 2 or heavier is None:
            self.release()  # never leave the device full
            gpu = plan.accelerator
            raise OutOfMemory(
                f"{self.model_id} ran out of memory ({'GPU' if gpu else 'RAM'}) with {policy.label}"
                + (f" after retrying from {plan.policy.label}" if attempt == 2 else "")
                + f"; the plan estimated {gb(plan.estimate.vram) + ' VRAM + ' if gpu else ''}"
                f"{gb(plan.estimate.ram)} RAM: make fewer frames or a smaller size, or close what else uses the "
                f"{'GPU' if gpu else 'memory'}"
            ) from None
        if heavier.placement != policy.placement or heavier.fp8 != policy.fp8:
            self.release()
        else:
            free_device_memory(self.device)
        return heavier

    def _run(self, family: Family, arguments: dict, request: GenerationRequest, should_stop):
        """The pipeline call with the request's LoRAs and Kinemo's caches attached: yields events, returns
        (frames, audio, seconds)."""
        from engine.backends.diffusers.loras import apply_loras

        apply_loras(self.pipe, request.loras, self.model_id, self.options.token)
        self._context_windows(family, request)
        within_context = family.context_frames is None or request.frames <= family.context_frames
        if self.onnx is not None and not within_context:
            yield Notice(
                f"ONNX motion modules cover one {family.context_frames}-frame context; this longer clip "
                "runs its motion modules in torch"
            )
        from engine.backends.diffusers.arguments import denoising_calls

        grid = self._latent_grid(request) if family.latent_layout == "packed" else None
        if family.guider:  # guidance is set on the guider component, the way diffusers documents it
            self.pipe.guider = self.pipe.guider.new(guidance_scale=request.guidance)
        from engine.backends.diffusers.step_caches import step_cache
        from engine.backends.diffusers.step_checkpoints import step_checkpoint

        self.cache_stats = {}
        with ExitStack() as attached:
            cache = step_cache(
                self.pipe, family, self.options.cache, self.cache_stats, self.model_id, request.guidance > 1
            )
            attached.enter_context(cache)
            if self.options.kv_cache and family.unet:  # transformer families attend from all frames at once already
                from engine.caches.diffusers_kv import attach_conditioning_kv

                attached.callback(attach_conditioning_kv(self.pipe.unet).remove)
            if self.onnx is not None and within_context:
                attached.enter_context(self.onnx.attached(self.pipe.unet))
            checkpoint, notices = step_checkpoint(self, family, request, denoising_calls(family.name, request))
            yield from notices
            return (
                yield from run_pipeline(
                    self.pipe,
                    arguments,
                    request,
                    family.latent_layout,
                    grid,
                    should_stop,
                    self.model_id,
                    denoising_calls(family.name, request),
                    family.step_callback,
                    checkpoint,
                )
            )

    def _context_windows(self, family: Family, request: GenerationRequest) -> None:
        """A family whose motion modules were trained on short clips (AnimateDiff: 16 frames) denoises longer
        clips in overlapping context windows (FreeNoise, as diffusers provides it), so any length works."""
        if family.context_frames is None:
            return
        if request.frames > family.context_frames or request.prompt_changes:  # FreeNoise carries prompt changes
            self.pipe.enable_free_noise(context_length=min(family.context_frames, request.frames), context_stride=4)
        elif getattr(self.pipe, "free_noise_enabled", False):
            self.pipe.disable_free_noise()

    def _latent_grid(self, request: GenerationRequest) -> tuple[int, int, int]:
        """(frames, height, width) of LTX's packed latent tokens."""
        pipe = self.pipe
        t, s = pipe.vae_temporal_compression_ratio, pipe.vae_spatial_compression_ratio
        pt, ps = pipe.transformer_temporal_patch_size, pipe.transformer_spatial_patch_size
        return ((request.frames - 1) // t + 1) // pt, request.height // s // ps, request.width // s // ps
