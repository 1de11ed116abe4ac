"""The bundled starter model as a backend: request in, events out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from engine.backends import STARTER_ID
from engine.errors import Cancelled, InvalidRequest
from engine.events import Event, Finished, Frames, Loaded, Notice, Preview, Progress
from engine.images import fit_to_frame, load_image
from engine.model_files import STARTER_DIR, read_config
from engine.request import GenerationRequest
from engine.vocabulary import tokenize

log = logging.getLogger("kinemo.engine")

TIMESTEP_SPACING = "trailing"
ANCHORS, RECENT = 2, 6  # context frames a long clip's later windows read: from the start, and the latest
MAX_FRAMES = 1024


def to_uint8_frames(video) -> np.ndarray:
    """(3, f, h, w) tensor in [-1, 1] -> (f, h, w, 3) uint8 array."""
    from einops import rearrange

    frames = ((video.float().clamp(-1, 1) + 1) * 127.5).round().byte()
    return rearrange(frames, "c f h w -> f h w c").cpu().numpy()


def resample_frames(frames: np.ndarray, count: int) -> np.ndarray:
    """Pick count evenly spaced frames, so a shorter clip still shows the whole move."""
    if count == len(frames):
        return frames
    index = np.round(np.linspace(0, len(frames) - 1, count)).astype(int)
    return frames[index]


@lru_cache(maxsize=1)
def _libc():
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def release_freed_memory() -> None:
    """Hand memory freed by torch back to the system (glibc keeps it otherwise, and RSS creeps up)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def keep_large_blocks_out_of_the_heap(threshold: int = 1 << 20) -> None:
    """Serve allocations of threshold bytes and more with mmap, so freeing them returns them at once.

    glibc raises its mmap threshold each time a large block is freed, after which same-sized tensors
    come from the heap, which fragments over a long run; a fixed threshold stops that.
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(-3, threshold)  # M_MMAP_THRESHOLD


def unknown_words_notice(label: str, text: str) -> Notice | None:
    words = tokenize(text).unknown_words
    if not words:
        return None
    listed = ", ".join(f"'{w}'" for w in dict.fromkeys(words))
    return Notice(f"the bundled model does not know these words in the {label} and cannot follow them: {listed}")


class BundledBackend:
    """Kinemo's own small model, trained by engine.train and shipped in assets/."""

    def __init__(
        self,
        folder: str | Path = STARTER_DIR,
        device: str = "cpu",
        model_id: str = STARTER_ID,
        kv_cache: bool = True,
        quantize: str | None = None,
        onnx_temporal: bool = False,
    ):
        from engine.quantize import check_choice

        check_choice(quantize)
        self.folder = Path(folder)
        self.device = device
        self.model_id = model_id
        self.kv_cache = kv_cache  # reuse the conditioning's cross-attention K/V across steps (exact)
        self.quantize = quantize  # "int8": the denoiser's weights in int8 (engine.quantize), cached
        self.onnx_temporal = onnx_temporal  # temporal attention in onnxruntime (engine.onnx_temporal)
        self.model = None
        self.sampler = None
        self.onnx = None

    # -- loading ---------------------------------------------------------------------------------
    def load(self) -> float:
        """Load weights once; returns the seconds it took (0 when already loaded)."""
        if self.model is not None:
            return 0.0
        started = time.perf_counter()
        from engine.model_files import load_model
        from engine.sampling.ddim import DDIMSampler
        from engine.sampling.schedule import alphas_cumprod, make_betas

        if self.quantize:
            from engine.quantize import load_quantized

            model = load_quantized(self.folder, self.quantize, self.device).model
        else:
            model = load_model(self.folder).to(self.device)
        if self.onnx_temporal:
            from engine.onnx_temporal import OnnxTemporal

            self.onnx = OnnxTemporal.prepare(model, self.device)  # exported once per model, then reused
        config = model.config
        betas = make_betas(config.beta_schedule, config.num_train_timesteps, snr_scale=config.snr_scale)
        self.sampler = DDIMSampler(alphas_cumprod(betas), prediction_type=config.prediction_type, clip_sample=True)
        self.model = model
        return time.perf_counter() - started

    @property
    def max_frames(self) -> int:
        """The model's temporal window, known before its weights are loaded."""
        if self.model is not None:
            return self.model.config.max_frames
        return int(read_config(self.folder).get("max_frames", 16))

    def defaults(self) -> dict:
        """Sizes, steps and guidance a request gets when the user gives none."""
        d = GenerationRequest(prompt="-")
        defaults = {k: getattr(d, k) for k in ("steps", "guidance", "width", "height", "frames", "fps")}
        if self.fixed_timesteps:
            defaults["steps"] = len(self.fixed_timesteps)
        return defaults

    @cached_property
    def fixed_timesteps(self) -> list[int] | None:
        """The timesteps a distilled model was trained for; None for a model that takes any step count."""
        from engine.model_files import read_sampling

        return read_sampling(self.folder)

    def check(self, request: GenerationRequest) -> None:
        """Validate what this backend needs beyond the request's own ranges."""
        request.validate()
        fixed = self.fixed_timesteps
        if fixed and request.steps != len(fixed):
            raise InvalidRequest(f"{self.model_id} is distilled for {len(fixed)} steps; use --steps {len(fixed)}")
        low, high = 1, MAX_FRAMES  # beyond the model's window, clips are made window by window
        if not low <= request.frames <= high:
            raise InvalidRequest(f"frames must be between {low} and {high} for {self.model_id}, got {request.frames}")

    def notices(self, request: GenerationRequest) -> list[Notice]:
        found = [
            unknown_words_notice("prompt", request.prompt),
            unknown_words_notice("negative prompt", request.negative_prompt),
        ]
        return [n for n in found if n]

    # -- generation ------------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
        """Yield Loaded, Notice*, (Progress, Preview)*, Frames, Finished; raise Cancelled if stopped."""
        import torch

        from engine.caches.conditioning_kv import conditioning_kv_cache
        from engine.caches.temporal_kv import RollingTemporalKV, plan_windows, window_position
        from engine.models.kinemo_dit import Conditioning
        from engine.models.text_encoder import token_batch
        from engine.sampling.ddim import ddim_timesteps

        # 1. check inputs and load the model
        self.check(request)
        image = load_image(request.image) if request.image else None
        yield Loaded(self.model_id, self.load())
        yield from self.notices(request)
        model, sampler, device = self.model, self.sampler, self.device
        size, native_frames = model.config.size, model.config.max_frames

        # 2. encode the conditioning once: prompt, negative prompt, first frame
        guided = request.guidance != 1.0  # 1 = the prompt alone; otherwise prompt and negative, batched
        prompts = [request.prompt, request.negative_prompt] if guided else [request.prompt]
        with torch.inference_mode():  # never around a yield: the caller's thread would stay in it
            ids = token_batch([tokenize(p).ids for p in prompts]).to(device)
            first = None
            if image is not None:
                fitted = fit_to_frame(image, request.width / request.height, size)  # (h, w, 3) uint8
                first = torch.from_numpy(fitted).permute(2, 0, 1).float().div(127.5).sub(1)[None].to(device)
                first = first.expand(len(prompts), -1, -1, -1)
            cond: Conditioning = model.encode(ids, first)

        # 3. timesteps
        timesteps = self.fixed_timesteps or ddim_timesteps(request.steps, sampler.num_train_timesteps, TIMESTEP_SPACING)

        # 4. windows: one for a clip the model's window holds, else rolling windows over a K/V cache
        long_clip = request.frames > native_frames
        windows = (
            plan_windows(request.frames, native_frames, ANCHORS, RECENT) if long_clip else [list(range(native_frames))]
        )
        rolling = RollingTemporalKV(ANCHORS, RECENT, store_dtype=torch.float16) if long_clip else None
        generator = torch.Generator("cpu").manual_seed(request.seed)  # on the CPU: a seed means one clip everywhere
        step_of = {t: i for i, t in enumerate(timesteps)}
        total = len(windows) * len(timesteps)

        # 5. denoising loop with classifier-free guidance (the sampler runs it in inference mode)
        def denoise(x: torch.Tensor, t: int, frame_indices) -> torch.Tensor:
            if rolling is not None:
                rolling.step = step_of[t]
            batch = x.expand(len(cond.image_mask), -1, -1, -1, -1)
            out = model(batch, torch.tensor([t], device=device), cond, frame_indices)
            if not guided:
                return out
            positive, negative = out.chunk(2)
            return negative + request.guidance * (positive - negative)

        onnx = self.onnx.attached(model) if self.onnx is not None and rolling is None else nullcontext()
        if self.onnx is not None and rolling is not None:
            yield Notice(
                "ONNX temporal attention covers one window; this longer clip runs its temporal attention in torch"
            )

        started = time.perf_counter()
        if rolling is not None:
            keep_large_blocks_out_of_the_heap()
        with conditioning_kv_cache(model, self.kv_cache), rolling.attached(model) if rolling else nullcontext(), onnx:
            for number, ids in enumerate(windows):
                # (1, 3, f, h, w) noise for this window's new frames
                noise = torch.randn((1, 3, len(ids), size, size), generator=generator).to(device)
                frame_indices = None
                if rolling is not None:
                    places = {g: window_position(g, request.frames, native_frames) for g in range(ids[-1] + 1)}
                    rolling.begin_window(ids, places)
                    frame_indices = torch.tensor([places[g] for g in ids], dtype=torch.float32, device=device)
                estimate = noise
                steps = sampler.sample(
                    lambda x, t, places=frame_indices: denoise(x, t, places),
                    noise,
                    timesteps,
                    eta=request.eta,
                    generator=generator,
                )
                for index, t, out in steps:
                    estimate = out.pred_original_sample if index + 1 < len(timesteps) else out.prev_sample
                    yield Progress(number * len(timesteps) + index + 1, total, t, time.perf_counter() - started)
                    yield Preview(number * len(timesteps) + index + 1, to_uint8_frames(estimate[0]))
                    if should_stop is not None and should_stop():
                        raise Cancelled("generation cancelled")

                # 6. finished frames leave as each window completes
                if rolling is None:
                    frames = resample_frames(to_uint8_frames(estimate[0]), request.frames)
                    yield Frames(0, frames)
                else:
                    rolling.end_window()
                    release_freed_memory()  # a long run frees and reallocates a lot: keep the heap from growing
                    yield Frames(ids[0], to_uint8_frames(estimate[0]))
        seconds = time.perf_counter() - started
        stats = {"seconds_per_step": seconds / total, "windows": len(windows)}
        if rolling is not None:
            stats["temporal_kv_cache_mb"] = rolling.peak_bytes / 2**20
        yield Finished(request.frames, seconds, stats)
