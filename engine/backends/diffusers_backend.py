"""Diffusers video pipelines as a backend: the same request in, the same events out as the bundled model.

A pipeline call is one blocking function, while a backend yields events as it goes; so the call
runs on a worker thread whose step callback posts progress and previews to a queue, and raises
Cancelled when the consumer asks to stop or walks away.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.catalog import CatalogEntry, catalog
from engine.diffusers_layout import DiffusersFolder, inspect_folder
from engine.errors import Cancelled, InvalidRequest, KinemoError, ModelLoadError
from engine.events import Event, Finished, Frames, Loaded, Notice, Preview, Progress
from engine.request import GenerationRequest

log = logging.getLogger("kinemo.engine")

PREVIEW_SIZE = 96  # longest side of live previews, pixels
ANIMATEDIFF_CONTEXT = 16  # frames AnimateDiff's motion modules see at once


@dataclass(frozen=True)
class Source:
    """Where a diffusers model comes from: a local folder, a catalog entry or a bare hub id."""

    name: str
    folder: Path | None = None
    entry: CatalogEntry | None = None
    hub_id: str | None = None


def family_defaults(family: str) -> dict:
    """Defaults for a folder that carries none: those of the family's first catalog entry."""
    entry = next((e for e in catalog().values() if e.family == family), None)
    return entry.defaults() if entry else {}


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Pipeline output (f, h, w, 3) float in [0, 1] -> uint8, rounded as diffusers' numpy_to_pil does."""
    return (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)


def latent_preview(latents, layout: str, shape_hint: tuple[int, int, int] | None = None) -> np.ndarray:
    """A rough picture of the latents for live preview: (f, h, w, 3) uint8, no decoder involved.

    The first three latent channels, each standardised, stand in for colour. It shows where things
    are and how they move; the finished frames come from the pipeline's own decoder.
    """
    import torch
    import torch.nn.functional as F
    from einops import rearrange

    x = latents[:1].detach().float().cpu()
    if layout == "packed":  # LTX: (b, s, c) tokens of a (f, h, w) latent grid
        f, h, w = shape_hint
        x = rearrange(x[0, : f * h * w], "(f h w) c -> f c h w", f=f, h=h, w=w)
    else:
        x = rearrange(x, f"{layout} -> (b f) c h w")
    channels = x[:, :3] if x.shape[1] >= 3 else x[:, :1].expand(-1, 3, -1, -1)
    mean = channels.mean(dim=(0, 2, 3), keepdim=True)
    std = channels.std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-6)
    rgb = torch.sigmoid((channels - mean) / std)
    scale = PREVIEW_SIZE / max(rgb.shape[-2:])
    rgb = F.interpolate(rgb, scale_factor=max(1.0, scale), mode="nearest")
    return (rgb * 255).round().byte().permute(0, 2, 3, 1).numpy()


class _OutOfMemory(Exception):
    """Internal: the pipeline (or loading it) ran out of memory; generate() retries or raises OutOfMemory."""


class DiffusersBackend:
    """One diffusers model (any supported family), loaded lazily on the chosen device."""

    def __init__(
        self,
        source: Source,
        device: str = "auto",
        token: str | None = None,
        progress_class=None,
        kv_cache: bool = True,
        memory: str = "auto",
        quantize: str | None = None,
        onnx_temporal: bool = False,
    ):
        from engine.memory_plan import check_mode
        from engine.quantize import check_choice

        check_choice(quantize)
        if quantize and onnx_temporal:
            raise InvalidRequest(
                "--onnx-temporal and --quantize int8 do not combine for diffusers models yet; pick one"
            )
        self.source = source
        self.quantize = quantize  # "int8": the denoiser's weights in int8 (engine.quantize_diffusers), cached
        self.onnx_temporal = onnx_temporal  # AnimateDiff's motion modules in onnxruntime (engine.onnx_motion)
        self.onnx = None  # the OnnxMotion sessions of the loaded pipeline
        self.kv_cache = kv_cache  # reuse the conditioning's cross-attention K/V (UNet families; exact)
        self.memory = check_mode(memory)  # auto, high, low or minimal (engine.memory_plan)
        self.model_id = source.name
        self.requested_device = device
        self.token = token
        self.progress_class = progress_class  # tqdm class for downloads (the studio passes its own)
        self.pipe = None
        self.pipe_task: str | None = None
        self.pipe_policy = None  # the engine.memory_plan.Policy the loaded pipeline runs under
        self.plan = None  # the last run's engine.memory_plan.MemoryPlan
        self.device: str | None = None
        self._folder: DiffusersFolder | None = None
        self._adapter: Path | None = None
        self.int8_from_cache: bool | None = None  # after an int8 load: whether the weights came from the cache

    # -- what the model is -----------------------------------------------------------------------
    @property
    def family(self) -> str | None:
        if self.source.entry is not None:
            return self.source.entry.family
        folder = self.local_folder()
        return folder.family if folder else None

    @property
    def tasks(self) -> tuple[str, ...]:
        if self.source.entry is not None:
            return self.source.entry.tasks
        folder = self.local_folder()
        return folder.tasks if folder else ("t2v", "i2v")

    def defaults(self) -> dict:
        if self.source.entry is not None:
            return self.source.entry.defaults()
        return family_defaults(self.family) if self.family else {}

    def hub_model(self):
        from engine.hub import HubModel

        if self.source.entry is not None:
            return HubModel.from_entry(self.source.entry)
        return HubModel(self.source.name, self.source.hub_id)

    def local_folder(self) -> DiffusersFolder | None:
        """The model's pipeline folder when it is on disk (inspected once)."""
        if self._folder is None:
            if self.source.folder is not None:
                self._folder = inspect_folder(self.source.folder)
            else:
                from engine.hub import local_paths

                found = local_paths(self.hub_model())
                if found is not None:
                    self._folder, self._adapter = inspect_folder(found[0], self.hub_model().motion_base), found[1]
        return self._folder

    def is_on_disk(self) -> bool:
        return self.local_folder() is not None

    # -- checks ----------------------------------------------------------------------------------
    def check(self, request: GenerationRequest) -> None:
        """Validate the request against this model; never downloads."""
        from engine.backends.families import FAMILIES

        request.validate()
        task = "i2v" if request.image else "t2v"
        if task not in self.tasks:
            if task == "t2v":
                raise InvalidRequest(f"{self.model_id} animates a picture: add --image PATH (image-to-video)")
            raise InvalidRequest(
                f"{self.model_id} is text-to-video only: remove --image, or pick an image-to-video model"
            )
        if self.family is not None:
            FAMILIES[self.family].check(request, self.model_id)
            if self.onnx_temporal and self.family != "animatediff":
                raise InvalidRequest(
                    f"--onnx-temporal works with Kinemo models and AnimateDiff, not yet with "
                    f"{FAMILIES[self.family].label} ({self.model_id})"
                )

    def notices(self, request: GenerationRequest) -> list[Notice]:
        from engine.backends.families import FAMILIES

        if self.family and request.negative_prompt and not FAMILIES[self.family].negative_prompt:
            return [Notice(f"{FAMILIES[self.family].label} takes no negative prompt; it is ignored")]
        return []

    # -- loading ---------------------------------------------------------------------------------
    def fetch(self) -> Iterator[Event]:
        """Make sure the model is on disk, downloading it (resumably) when it is not."""
        if self.local_folder() is not None:
            return
        from engine.hub import pull

        size = f" (about {self.source.entry.disk_gb:g} GB)" if self.source.entry else ""
        yield Notice(f"{self.model_id} is not on disk; downloading it from the hub{size}")
        model = self.hub_model()
        pipeline, adapter = pull(model, self.token, self.progress_class)
        self._folder, self._adapter = inspect_folder(pipeline, model.motion_base), adapter

    def load(self, task: str = "t2v", policy=None) -> float:
        """Load the pipeline for a task once, placed as policy says (engine.memory_plan.Policy; default: all on
        the device); returns the seconds it took (0 when it was loaded already and only the VAE's tiling changed)."""
        from engine.memory_plan import BY_NAME, set_vae_tiling

        policy = policy or BY_NAME["none"]
        if self.quantize:
            policy = replace(policy, fp8=False)  # the denoiser's weights are int8 already
        if self.pipe is not None and self.pipe_task == task:
            same = self.pipe_policy is not None and (self.pipe_policy.placement, self.pipe_policy.fp8) == (
                policy.placement,
                policy.fp8,
            )
            if same:
                set_vae_tiling(self.pipe, policy.vae_tiling)
                self.pipe_policy = policy
                return 0.0
        if self.pipe is not None:
            self.release()  # another task, or weights placed (or stored) otherwise: load afresh
        started = time.perf_counter()
        folder = self.local_folder()
        if folder is None:
            raise ModelLoadError(f"{self.model_id} is not on disk; run `kinemo models pull {self.model_id}`")
        from engine.backends.families import FAMILIES
        from engine.devices import pick_device, pick_dtype
        from engine.memory_plan import apply_policy, is_out_of_memory

        device = pick_device(self.requested_device)
        dtype = pick_dtype(device)
        family = FAMILIES[folder.family]
        try:
            pipe = self._load_pipeline(folder, family.pipeline_class(task), dtype)
            pipe.set_progress_bar_config(disable=True)
            apply_policy(pipe, policy, device, dtype)
            if self.onnx_temporal:
                from engine.onnx_motion import OnnxMotion

                self.onnx = OnnxMotion.prepare(pipe.unet, device)  # exported once per model, then reused
        except KinemoError:
            raise
        except BaseException as exc:
            if is_out_of_memory(exc):
                raise _OutOfMemory(
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                ) from None
            if not isinstance(exc, (OSError, ValueError, KeyError, TypeError, RuntimeError)):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"cannot load {self.model_id} from {folder.path}: {first}") from exc
        self.pipe, self.pipe_task, self.pipe_policy, self.device = pipe, task, policy, device
        log.info("loaded %s (%s) on %s in %s with %s", self.model_id, type(pipe).__name__, device, dtype, policy.label)
        return time.perf_counter() - started

    def release(self) -> None:
        """Drop the pipeline and give its memory back (the GPU's too)."""
        from engine.memory_plan import free_device_memory

        pipe, self.pipe, self.pipe_task, self.pipe_policy, self.onnx = self.pipe, None, None, None, None
        if pipe is not None and hasattr(pipe, "remove_all_hooks"):
            try:
                pipe.remove_all_hooks()
            except Exception:  # noqa: BLE001 - freeing must not fail
                pass
        del pipe
        free_device_memory(self.device)

    # -- memory ----------------------------------------------------------------------------------
    def plan_memory(self, request: GenerationRequest, task: str | None = None):
        """The memory plan for a request (engine.memory_plan.MemoryPlan): reads weight headers, never loads."""
        import diffusers

        from engine.backends.families import FAMILIES
        from engine.devices import pick_device, pick_dtype
        from engine.memory_plan import Shape, free_ram, free_vram, plan_diffusers, process_rss, read_pipeline

        folder = self.local_folder()
        if folder is None:
            raise ModelLoadError(f"{self.model_id} is not on disk; run `kinemo models pull {self.model_id}`")
        task = task or ("i2v" if request.image else "t2v")
        getattr(diffusers, FAMILIES[folder.family].pipeline_class(task))  # the run imports it anyway: count it in
        device = pick_device(self.requested_device)
        entry = self.source.entry
        components = read_pipeline(folder.path, entry.variant if entry else None, self._adapter)
        held = self._host_bytes()  # a pipeline kept loaded from an earlier run is part of the plan, not the baseline
        baseline = max(process_rss() - held, 0)
        ram = free_ram()
        vram = free_vram(device) if device.startswith("cuda") else None
        size = pick_dtype(device).itemsize
        return plan_diffusers(
            components,
            Shape.of(folder.family, request),
            self.memory,
            device,
            baseline,
            vram=vram,
            ram=None if ram is None else ram + held,
            dtype_bytes=size,
        )

    def _host_bytes(self) -> int:
        """Bytes of the loaded pipeline's weights that sit in this process's RAM."""
        if self.pipe is None:
            return 0
        total = 0
        for component in self.pipe.components.values():
            if hasattr(component, "parameters"):
                for tensor in [*component.parameters(), *component.buffers()]:
                    if tensor.device.type == "cpu":
                        total += tensor.numel() * tensor.element_size()
        return total

    def _load_pipeline(self, folder: DiffusersFolder, class_name: str, dtype):
        """The pipeline, with its denoiser in int8 when asked (from the cache, or quantised now and cached)."""
        if not self.quantize:
            return self._from_pretrained(folder, class_name, dtype)
        from engine.quantize_diffusers import cached_denoiser, denoiser_name, source_sha256, store_denoiser

        name = denoiser_name(folder.components)
        key = source_sha256(folder.path, name, self._adapter, dtype)
        denoiser = cached_denoiser(key)
        self.int8_from_cache = denoiser is not None
        if denoiser is not None:
            return self._from_pretrained(folder, class_name, dtype, **{name: denoiser})
        pipe = self._from_pretrained(folder, class_name, dtype)
        store_denoiser(getattr(pipe, name), key)
        return pipe

    def _from_pretrained(self, folder: DiffusersFolder, class_name: str, dtype, **components):
        import diffusers

        cls = getattr(diffusers, class_name)
        entry = self.source.entry
        kwargs = dict(dtype=dtype, use_safetensors=True, **components)
        if entry is not None and entry.variant:
            kwargs["variant"] = entry.variant
        if self._adapter is not None:  # AnimateDiff from the catalog: base model + motion adapter
            # (none needed when the int8 UNetMotionModel, adapter included, comes from the cache)
            kwargs["motion_adapter"] = None if "unet" in components else self._load_adapter(dtype)
        pipe = cls.from_pretrained(folder.path, **kwargs)
        if entry is not None and entry.scheduler:
            overrides = dict(entry.scheduler)
            scheduler_cls = getattr(diffusers, overrides.pop("class", type(pipe.scheduler).__name__))
            pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config, **overrides)
        return pipe

    def _load_adapter(self, dtype):
        from diffusers import MotionAdapter

        if self._adapter.is_dir():
            return MotionAdapter.from_pretrained(self._adapter, dtype=dtype, use_safetensors=True)
        from safetensors.torch import load_file  # a single-file adapter such as AnimateDiff-Lightning

        entry = self.source.entry
        adapter = MotionAdapter(**(entry.adapter.config if entry and entry.adapter else {}))
        adapter.load_state_dict(load_file(str(self._adapter)))
        return adapter.to(dtype)

    # -- generation ------------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
        """Yield Loaded, Notice*, (Progress, Preview)*, Frames, Finished; raise Cancelled if stopped.

        The first Notice is the memory plan (engine.memory_plan.MemoryNotice), made before loading; running
        out of memory retries once with the next heavier policy (a Notice says so), then raises OutOfMemory."""
        from PIL import Image

        from engine.backends.families import FAMILIES, pipeline_arguments
        from engine.images import load_image

        # 1. check inputs; make sure the weights are on disk; plan the memory; load
        self.check(request)
        image = Image.fromarray(load_image(request.image)) if request.image else None
        yield from self.fetch()
        self.check(request)  # a bare hub id's family is known only now
        task = "i2v" if image is not None else "t2v"
        from engine.memory_plan import MemoryNotice, OutOfMemory, gb

        plan = self.plan = self.plan_memory(request, task)  # before loading: the policy decides how to load
        announce = [MemoryNotice(plan.text(), plan)]  # yielded right after Loaded (or before a retry's notice)
        family = FAMILIES[self.local_folder().family]
        extra = self.source.entry.call if self.source.entry else {}
        arguments = pipeline_arguments(family.name, request, image, extra)

        # 2. load and run; out of memory, once more with the next heavier policy
        policy, loaded, frames = plan.policy, False, None
        for attempt in (1, 2):
            try:
                seconds = self.load(task, policy)
                if not loaded:
                    yield Loaded(self.model_id, seconds)
                    yield from announce
                    announce.clear()
                    yield from self.notices(request)
                    loaded = True
                self._context_windows(family.name, request)
                if self.onnx is not None and request.frames > ANIMATEDIFF_CONTEXT:
                    yield Notice(
                        f"ONNX motion modules cover one {ANIMATEDIFF_CONTEXT}-frame context; this longer clip "
                        "runs its motion modules in torch"
                    )
                frames, seconds = yield from self._run_pipeline(family, arguments, request, should_stop)
                break
            except _OutOfMemory as oom:
                heavier = plan.next_policy(policy)
                if attempt == 2 or heavier is None:
                    self.release()  # never leave the device full
                    where = "GPU" if plan.accelerator else "RAM"
                    raise OutOfMemory(
                        f"{self.model_id} ran out of memory ({where}) with {policy.label}"
                        + (f" after retrying from {plan.policy.label}" if attempt == 2 else "")
                        + f"; the plan estimated {gb(plan.estimate.vram) + ' VRAM + ' if plan.accelerator else ''}"
                        f"{gb(plan.estimate.ram)} RAM: make fewer frames or a smaller size, or close what else uses the "
                        f"{'GPU' if plan.accelerator else 'memory'}"
                    ) from None
                if heavier.placement != policy.placement or heavier.fp8 != policy.fp8:
                    self.release()
                else:
                    from engine.memory_plan import free_device_memory

                    free_device_memory(self.device)
                yield from announce
                announce.clear()
                yield Notice(f"out of memory with {policy.label} ({oom}); retrying once with {heavier.label}")
                policy = heavier

        # 3. finished frames
        yield Frames(0, frames)
        yield Finished(
            len(frames), seconds, {"seconds_per_step": seconds / max(1, request.steps), "memory_policy": policy.name}
        )

    def _run_pipeline(self, family, arguments: dict, request: GenerationRequest, should_stop):
        """Run the pipeline on a worker thread, yielding Progress and Preview; return (frames, seconds)."""
        from engine.memory_plan import is_out_of_memory

        latent_grid = self._latent_grid(request) if family.latent_layout == "packed" else None
        events: queue.Queue = queue.Queue()
        stop = threading.Event()

        def on_step(pipe, index, timestep, tensors):
            events.put(
                ("step", index, float(timestep), latent_preview(tensors["latents"], family.latent_layout, latent_grid))
            )
            if stop.is_set():
                raise Cancelled("generation cancelled")
            return {}

        def work():
            import torch

            try:
                generator = torch.Generator("cpu").manual_seed(request.seed)
                result = self.pipe(
                    **arguments,
                    generator=generator,
                    callback_on_step_end=on_step,
                    callback_on_step_end_tensor_inputs=["latents"],
                )
                events.put(("done", result.frames))
            except (ValueError, TypeError) as exc:  # the pipeline's own input checks
                if isinstance(exc, KinemoError):
                    events.put(("error", exc))
                else:
                    events.put(("error", InvalidRequest(f"{self.model_id}: {str(exc).strip().splitlines()[0]}")))
            except BaseException as exc:  # handed to the consumer's thread, raised there
                if is_out_of_memory(exc):  # only the message: the traceback would keep the run's tensors alive
                    events.put(("oom", str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__))
                else:
                    events.put(("error", exc))

        started = time.perf_counter()
        cache = self._attach_kv_cache(family.name)
        onnx = ExitStack()
        if self.onnx is not None and request.frames <= ANIMATEDIFF_CONTEXT:
            onnx.enter_context(self.onnx.attached(self.pipe.unet))
        worker = threading.Thread(target=work, name="kinemo-diffusers", daemon=True)
        worker.start()
        try:
            while True:
                kind, *payload = events.get()
                if kind == "error":
                    raise payload[0]
                if kind == "oom":
                    raise _OutOfMemory(payload[0])
                if kind == "done":
                    frames = to_uint8(np.asarray(payload[0])[0])
                    break
                index, timestep, preview = payload
                yield Progress(index + 1, request.steps, int(timestep), time.perf_counter() - started)
                yield Preview(index + 1, preview)
                if should_stop is not None and should_stop():
                    stop.set()
        finally:
            stop.set()  # the consumer may have walked away: the callback ends the run at the next step
            worker.join()
            onnx.close()
            if cache is not None:
                cache.remove()
        return frames, time.perf_counter() - started

    def _context_windows(self, family: str, request: GenerationRequest) -> None:
        """AnimateDiff's motion modules were trained on 16-frame clips: longer clips are denoised in
        overlapping 16-frame context windows (FreeNoise, as diffusers provides it), so any length works."""
        if family != "animatediff":
            return
        if request.frames > ANIMATEDIFF_CONTEXT:
            self.pipe.enable_free_noise(context_length=ANIMATEDIFF_CONTEXT, context_stride=4)
        elif getattr(self.pipe, "free_noise_enabled", False):
            self.pipe.disable_free_noise()

    def _attach_kv_cache(self, family: str):
        """Conditioning K/V reuse for the UNet families, whose cross-attention sees one copy per frame."""
        if not self.kv_cache or family not in ("animatediff", "svd"):
            return None  # the transformer families attend from all frames at once already
        from engine.caches.diffusers_kv import attach_conditioning_kv

        return attach_conditioning_kv(self.pipe.unet)

    def _latent_grid(self, request: GenerationRequest) -> tuple[int, int, int]:
        """(frames, height, width) of LTX's packed latent tokens."""
        pipe = self.pipe
        t, s = pipe.vae_temporal_compression_ratio, pipe.vae_spatial_compression_ratio
        pt, ps = pipe.transformer_temporal_patch_size, pipe.transformer_spatial_patch_size
        return ((request.frames - 1) // t + 1) // pt, request.height // s // ps, request.width // s // ps
