"""Sampling the bundled model window by window: one window for a clip its temporal window holds, else rolling
windows that read a K/V cache of frames already made (engine.caches.temporal_kv), so memory stays flat."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from engine.api.errors import Cancelled
from engine.api.events import Event, Frames, Notice, Preview, Progress
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
class Layout:
    """Windows laid out by the caller (an extension, engine.backends.bundled_extend): the frame ids each window
    makes, every frame's place in the model's window, and frames known before sampling whose keys and values
    prefill the rolling cache, so the new windows read them as a long clip's windows read earlier ones."""

    windows: list[list[int]]
    places: dict[int, float]
    known: object | None = None  # (1, 3, k, h, w) tensor in [-1, 1]: the frames of known_ids
    known_ids: list[int] = field(default_factory=list)


@dataclass
class WindowRun:
    """One request's sampling: the model, its conditioning, the timesteps and the windows to make."""

    model: object  # engine.kinemo.model.KinemoDiT
    sampler: object  # engine.kinemo.ddim.DDIMSampler
    cond: object  # engine.kinemo.model.Conditioning, batched [prompt, negative] when guided
    request: GenerationRequest
    timesteps: list[int]
    device: str
    prompts: object | None = None  # engine.backends.bundled_prompts.PromptPlan when the prompt changes
    layout: Layout | None = None
    checkpoint: object | None = None  # engine.backends.checkpoints.WindowCheckpoint: saved after every window

    @property
    def native_frames(self) -> int:
        return self.model.config.max_frames

    @property
    def long_clip(self) -> bool:
        """Whether the windows read the rolling cache (a laid-out run always does: it may start from known frames)."""
        return self.layout is not None or self.request.frames > self.native_frames

    def windows(self) -> list[list[int]]:
        from engine.caches.temporal_kv import plan_windows

        if self.layout is not None:
            return self.layout.windows
        if not self.long_clip:
            return [list(range(self.native_frames))]
        return plan_windows(self.request.frames, self.native_frames, ANCHORS, RECENT)

    def places(self, last: int) -> dict[int, float]:
        """Every frame's place in the model's window, up to frame id last."""
        from engine.caches.temporal_kv import window_position

        if self.layout is not None:
            return self.layout.places
        return {g: window_position(g, self.request.frames, self.native_frames) for g in range(last + 1)}

    def denoiser(self, rolling) -> Callable:
        """x_t, t, frame positions, frame ids -> the model's output, with classifier-free guidance when the request
        has it, each frame following its own prompt when the prompt changes (engine.backends.bundled_prompts)."""
        import torch

        model, request, device = self.model, self.request, self.device
        step_of = {t: i for i, t in enumerate(self.timesteps)}
        guided = request.guidance != 1.0

        def one_prompt(x: torch.Tensor, t: int, frame_indices, cond) -> torch.Tensor:
            batch = x.expand(len(cond.image_mask), -1, -1, -1, -1)
            out = model(batch, torch.tensor([t], device=device), cond, frame_indices)
            if not guided:
                return out
            positive, negative = out.chunk(2)
            return negative + request.guidance * (positive - negative)

        def denoise(x: torch.Tensor, t: int, frame_indices, ids: list[int]) -> torch.Tensor:
            if rolling is not None:
                rolling.step = step_of[t]
            if self.prompts is None:
                return one_prompt(x, t, frame_indices, self.cond)
            mixed = None
            for cond, weights in self.prompts.for_frames(ids):
                w = torch.tensor(weights, dtype=x.dtype, device=x.device)[None, None, :, None, None]
                part = one_prompt(x, t, frame_indices, cond) * w
                mixed = part if mixed is None else mixed + part
            return mixed

        return denoise


def sample_windows(
    run: WindowRun, contexts: ExitStack, should_stop: Callable[[], bool] | None, stats: dict
) -> Generator[Event, None, float]:
    """Yield (Progress, Preview) per step and Frames per finished window; raise Cancelled on should_stop();
    return the seconds sampling took (stats gets seconds_per_step, windows and the cache's size).

    contexts holds what the caller attached to the model (K/V caches, ONNX); the rolling cache joins it."""
    import torch

    from engine.caches.temporal_kv import RollingTemporalKV

    request, timesteps, size = run.request, run.timesteps, run.model.config.size
    rolling = RollingTemporalKV(ANCHORS, RECENT, store_dtype=torch.float16) if run.long_clip else None
    if rolling is not None:
        contexts.enter_context(rolling.attached(run.model))
        contexts.enter_context(large_blocks_out_of_the_heap())
    windows = run.windows()
    denoise = run.denoiser(rolling)
    generator = torch.Generator("cpu").manual_seed(request.seed)  # on the CPU: a seed means one clip everywhere
    total, started = len(windows) * len(timesteps), time.perf_counter()
    if run.layout is not None and run.layout.known is not None:
        prefill(run, rolling, denoise, generator, should_stop)
    # a checkpoint of this run: its frames again, then on from the window after them, cache and noise restored
    finished = (yield from resumed(run, windows, rolling, generator, stats)) if run.checkpoint is not None else []
    for number, ids in enumerate(windows):
        if number < len(finished):
            continue
        # (1, 3, f, h, w) noise for this window's new frames
        noise = torch.randn((1, 3, len(ids), size, size), generator=generator).to(run.device)
        frame_indices = None
        if rolling is not None:
            places = run.places(ids[-1])
            rolling.begin_window(ids, places)
            frame_indices = torch.tensor([places[g] for g in ids], dtype=torch.float32, device=run.device)
        estimate = noise
        steps = run.sampler.sample(
            lambda x, t, places=frame_indices, ids=ids: denoise(x, t, places, ids),
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
            frames = to_uint8_frames(estimate[0])
            if run.checkpoint is not None and number + 1 < len(windows):
                from engine.backends.checkpoints import capture_windows

                finished.append((ids[0], frames))
                yield from run.checkpoint.save(capture_windows(number + 1, finished, generator, rolling))
            yield Frames(ids[0], frames)
    if run.checkpoint is not None:
        run.checkpoint.remove()  # the run is done: nothing left to resume
    seconds = time.perf_counter() - started
    ran = (len(windows) - len(finished)) * len(timesteps)  # a resumed run makes only the windows after its checkpoint
    stats.update(seconds_per_step=seconds / max(ran, 1), windows=len(windows))
    if rolling is not None:
        stats["temporal_kv_cache_mb"] = rolling.peak_bytes / 2**20
    return seconds


def resumed(run: WindowRun, windows: list[list[int]], rolling, generator, stats: dict) -> Generator[Event, None, list]:
    """Yield the notices of run's checkpoint and the frames it holds, window by window as they first left, with
    the rolling cache and the generator put back as they were after them; return those (start, frames) chunks
    (none without a usable checkpoint)."""
    from engine.backends.checkpoints import restore_windows

    state = run.checkpoint.load()
    yield from run.checkpoint.notices
    if state is None:
        return []
    if not restore_windows(state, windows, rolling, generator, run.device):
        yield Notice(f"the checkpoint {run.checkpoint.path} does not fit this clip's windows; this run starts over")
        return []
    stats["resumed_frames"] = state.frames
    yield Notice(
        f"continuing from the checkpoint in {run.checkpoint.folder}: {state.frames} of {run.request.frames} frames "
        "were made before the run stopped"
    )
    for start, frames in state.chunks:
        yield Frames(start, frames)
    return list(state.chunks)


def prefill(run: WindowRun, rolling, denoise: Callable, generator, should_stop: Callable[[], bool] | None) -> None:
    """Run the known frames through the model at every step, noised to that step's timestep as the frames of a
    window are (one noise per frame, as DDIM carries it from step to step), so the rolling cache holds their keys
    and values as a long clip's cache holds those of the frames it made."""
    import torch

    layout = run.layout
    places = layout.places
    rolling.begin_window(layout.known_ids, places)
    frame_indices = torch.tensor([places[g] for g in layout.known_ids], dtype=torch.float32, device=run.device)
    known = layout.known.to(run.device)
    noise = torch.randn(known.shape, generator=generator).to(run.device)
    for t in run.timesteps:
        signal = run.sampler.alphas_cumprod[t].to(run.device)
        with torch.inference_mode():
            denoise(signal.sqrt() * known + (1 - signal).sqrt() * noise, t, frame_indices, layout.known_ids)
        if should_stop is not None and should_stop():
            raise Cancelled("generation cancelled")
    rolling.end_window()
