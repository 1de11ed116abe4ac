"""Sampling the bundled model window by window: one window for a clip its temporal window holds, else rolling
windows that read a K/V cache of frames already made (engine.caches.temporal_kv), so memory stays flat."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.api.errors import Cancelled
from engine.api.events import Event, Frames, Preview, Progress
from engine.api.request import GenerationRequest
from engine.util.frames import to_uint8

ANCHORS, RECENT = 2, 6  # context frames a long clip's later windows read: from the start, and the latest
GLIBC_MMAP_THRESHOLD = 128 * 1024  # glibc's default M_MMAP_THRESHOLD


def to_uint8_frames(video) -> np.ndarray:
    """(3, f, h, w) tensor in [-1, 1] -> (f, h, w, 3) uint8 array."""
    from einops import rearrange

    return to_uint8(rearrange(video.float(), "c f h w -> f h w c").cpu().numpy(), low=-1.0)


def resample_frames(frames: np.ndarray, count: int) -> np.ndarray:
    """Pick count evenly spaced frames, so a shorter clip still shows the whole move."""
    if count == len(frames):
        return frames
    index = np.round(np.linspace(0, len(frames) - 1, count)).astype(int)
    return frames[index]


def widened(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Square frames (n, s, s, 3) made width:height by extending their sides from the frames' own edges, so the
    export scales them evenly and what the model drew keeps its proportions (it would stretch otherwise)."""
    n, s = frames.shape[:2]
    if width == height:
        return frames
    if width > height:
        extra = max(0, round(s * width / height) - s)
        pad = ((0, 0), (0, 0), (extra // 2, extra - extra // 2), (0, 0))
    else:
        extra = max(0, round(s * height / width) - s)
        pad = ((0, 0), (extra // 2, extra - extra // 2), (0, 0), (0, 0))
    return np.pad(frames, pad, mode="edge")


def map_frames(events: Iterator, change: Callable[[np.ndarray], np.ndarray]):
    """events, with change applied to the frames of every Frames; returns what events returns."""
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            return stop.value
        yield Frames(event.start, change(event.frames)) if isinstance(event, Frames) else event


def keep_proportions(events: Iterator, width: int, height: int):
    """events, with every Frames widened to width:height; returns what events returns."""
    return map_frames(events, lambda frames: widened(frames, width, height))


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


@contextmanager
def large_blocks_out_of_the_heap(threshold: int = 1 << 20):
    """While a long clip runs, serve allocations of threshold bytes and more with mmap, so freeing them returns
    them at once: glibc raises its threshold each time a large block is freed, after which same-sized tensors
    come from the heap, which fragments over a long run. Afterwards the threshold is glibc's default again
    (fixed rather than adaptive: glibc has no call that turns its adaptation back on)."""
    libc = _libc()
    settable = libc is not None and hasattr(libc, "mallopt")
    if settable:
        libc.mallopt(-3, threshold)  # M_MMAP_THRESHOLD
    try:
        yield
    finally:
        if settable:
            libc.mallopt(-3, GLIBC_MMAP_THRESHOLD)


@dataclass
class WindowRun:
    """One request's sampling: the model, its conditioning, the timesteps and the windows to make."""

    model: object  # engine.kinemo.model.KinemoDiT
    sampler: object  # engine.kinemo.ddim.DDIMSampler
    cond: object  # engine.kinemo.model.Conditioning, batched [prompt, negative] when guided
    request: GenerationRequest
    timesteps: list[int]
    device: str

    @property
    def native_frames(self) -> int:
        return self.model.config.max_frames

    @property
    def long_clip(self) -> bool:
        return self.request.frames > self.native_frames

    def windows(self) -> list[list[int]]:
        from engine.caches.temporal_kv import plan_windows

        if not self.long_clip:
            return [list(range(self.native_frames))]
        return plan_windows(self.request.frames, self.native_frames, ANCHORS, RECENT)

    def denoiser(self, rolling) -> Callable:
        """x_t, t, frame positions -> the model's output, with classifier-free guidance when the request has it."""
        import torch

        model, cond, request, device = self.model, self.cond, self.request, self.device
        step_of = {t: i for i, t in enumerate(self.timesteps)}
        guided = request.guidance != 1.0

        def denoise(x: torch.Tensor, t: int, frame_indices) -> torch.Tensor:
            if rolling is not None:
                rolling.step = step_of[t]
            batch = x.expand(len(cond.image_mask), -1, -1, -1, -1)
            out = model(batch, torch.tensor([t], device=device), cond, frame_indices)
            if not guided:
                return out
            positive, negative = out.chunk(2)
            return negative + request.guidance * (positive - negative)

        return denoise


def sample_windows(
    run: WindowRun, contexts: ExitStack, should_stop: Callable[[], bool] | None, stats: dict
) -> Generator[Event, None, float]:
    """Yield (Progress, Preview) per step and Frames per finished window; raise Cancelled on should_stop();
    return the seconds sampling took (stats gets seconds_per_step, windows and the cache's size).

    contexts holds what the caller attached to the model (K/V caches, ONNX); the rolling cache joins it."""
    import torch

    from engine.caches.temporal_kv import RollingTemporalKV, window_position

    request, timesteps, size = run.request, run.timesteps, run.model.config.size
    rolling = RollingTemporalKV(ANCHORS, RECENT, store_dtype=torch.float16) if run.long_clip else None
    if rolling is not None:
        contexts.enter_context(rolling.attached(run.model))
        contexts.enter_context(large_blocks_out_of_the_heap())
    windows = run.windows()
    denoise = run.denoiser(rolling)
    generator = torch.Generator("cpu").manual_seed(request.seed)  # on the CPU: a seed means one clip everywhere
    total, started = len(windows) * len(timesteps), time.perf_counter()
    for number, ids in enumerate(windows):
        # (1, 3, f, h, w) noise for this window's new frames
        noise = torch.randn((1, 3, len(ids), size, size), generator=generator).to(run.device)
        frame_indices = None
        if rolling is not None:
            places = {g: window_position(g, request.frames, run.native_frames) for g in range(ids[-1] + 1)}
            rolling.begin_window(ids, places)
            frame_indices = torch.tensor([places[g] for g in ids], dtype=torch.float32, device=run.device)
        estimate = noise
        steps = run.sampler.sample(
            lambda x, t, places=frame_indices: denoise(x, t, places),
            noise,
            timesteps,
            eta=request.eta,
            generator=generator,
        )
        for index, t, out in steps:
            estimate = out.pred_original_sample if index + 1 < len(timesteps) else out.prev_sample
            done = number * len(timesteps) + index + 1
            yield Progress(done, total, t, time.perf_counter() - started)
            yield Preview(done, to_uint8_frames(estimate[0]))
            if should_stop is not None and should_stop():
                raise Cancelled("generation cancelled")
        # finished frames leave as each window completes
        if rolling is None:
            yield Frames(0, resample_frames(to_uint8_frames(estimate[0]), request.frames))
        else:
            rolling.end_window()
            release_freed_memory()  # a long run frees and reallocates a lot: keep the heap from growing
            yield Frames(ids[0], to_uint8_frames(estimate[0]))
    seconds = time.perf_counter() - started
    stats.update(seconds_per_step=seconds / total, windows=len(windows))
    if rolling is not None:
        stats["temporal_kv_cache_mb"] = rolling.peak_bytes / 2**20
    return seconds
