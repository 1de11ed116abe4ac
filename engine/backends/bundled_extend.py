"""Extending a clip with the bundled models: the clip's frames, then new ones that continue it without a seam.

The pixel model binds each move to its place in the model's window: frame place 0 is where a caption's move
starts, place window - 1 where it ends, whatever the clip's length. So it continues a clip in one of two ways,
both measured (tests/engine/backends/test_bundled_extend.py):

* the prompt's move from the clip's last frame: image-to-video with that frame as the first, at the clip's own
  pace (frame places spaced as the clip's were). It joins when the move starts where the clip ended ("moves
  left" after "moves right", "shrinks" after "grows", "stays still"); where it does not, the model's first
  frames jump to where the move starts;
* the clip's end held: the clip's last frames prefill the rolling K/V cache (noised to each step's timestep, at
  their own places), and the new frames sit at the end of the move, so they read the clip as a long clip's
  windows read earlier ones and keep its last moment ("moves right" once more: the object has reached the end
  of its path, and the model never draws one past it).

The move is tried first and kept when its join is no larger than JOIN_LIMIT times the clip's median change
between frames; else the end is held. A clip the camera model made (a camera caption) continues its camera move
from the last frame, at the clip's pace, move after move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from engine.api.errors import InvalidRequest
from engine.api.events import Event, Frames, Notice
from engine.api.request import GenerationRequest
from engine.backends.bundled_windows import ANCHORS, RECENT, Layout, map_frames, widened
from engine.util.images import fit_to_frame, fit_to_size

JOIN_LIMIT = 2.0  # the largest change at the join, in medians of the clip's changes between frames


def frame_changes(frames: np.ndarray) -> np.ndarray:
    """Mean absolute difference between consecutive frames (n - 1,), on the 0..255 scale."""
    f = frames.astype(np.float32)
    return np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))


def clip_frames(request: GenerationRequest, max_total: int) -> np.ndarray:
    """The clip to extend at the request's size (the CLI asks for the clip's own, evened); one line when it cannot
    be read or would make the result too long."""
    from engine.util.videos import load_video

    frames, _ = load_video(request.extends)
    if len(frames) + request.frames > max_total:
        raise InvalidRequest(
            f"{request.extends} has {len(frames)} frames; with {request.frames} more the clip would pass "
            f"{max_total}: ask for at most {max(0, max_total - len(frames))} (--frames)"
        )
    if frames.shape[1:3] != (request.height, request.width):
        frames = np.stack([fit_to_size(f, request.width, request.height) for f in frames])
    return frames


def spacing(clip_length: int, window: int) -> float:
    """How far apart in the model's window the clip's frames sit: a clip spans one window's move."""
    return (window - 1) / max(1, clip_length - 1)


def move_layout(new: int, step: float, window: int) -> Layout:
    """Frame 0 is the clip's last frame (the picture the move starts from), frames 1..new follow at the clip's
    pace and stay at the move's end once they reach it."""
    places = {k: min(window - 1.0, k * step) for k in range(new + 1)}
    fresh = window - ANCHORS - RECENT
    windows = [list(range(min(window, new + 1)))]
    windows += [list(range(a, min(a + fresh, new + 1))) for a in range(window, new + 1, fresh)]
    return Layout(windows, places)


def hold_layout(clip_length: int, new: int, step: float, window: int, known) -> Layout:
    """The clip's last frames at their places before the move's end, the new frames at its end."""
    known_ids = list(range(max(0, clip_length - ANCHORS - RECENT), clip_length))
    places = {g: max(0.0, window - 1 - (clip_length - 1 - g) * step) for g in known_ids}
    places.update({g: float(window - 1) for g in range(clip_length, clip_length + new)})
    fresh = window - ANCHORS - RECENT
    windows = [list(range(a, min(a + fresh, clip_length + new))) for a in range(clip_length, clip_length + new, fresh)]
    return Layout(windows, places, known[:, :, known_ids], known_ids)


def to_tensor(frames: np.ndarray):
    """(f, h, w, 3) uint8 -> (1, 3, f, h, w) float in [-1, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div(127.5).sub(1)[None]


def collect_frames(events: Iterator[Event], keep: Callable[[np.ndarray], None]):
    """events without their Frames, which go to keep; returns what events returns."""
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            return stop.value
        if isinstance(event, Frames):
            keep(event.frames)
        else:
            yield event


class Extension:
    """One extension with the pixel model: the clip at the model's size, and the runs that continue it."""

    def __init__(self, backend, request: GenerationRequest, original: np.ndarray):
        self.backend, self.request, self.original = backend, request, original
        self.size = backend.model.config.size
        self.window = backend.model.config.max_frames
        self.small = np.stack([fit_to_frame(f, 1.0, self.size) for f in original])  # the square the model drew
        self.step = spacing(len(original), self.window)
        changes = frame_changes(self.small)
        self.median = float(np.median(changes)) if len(changes) else 0.0

    def run(self, layout: Layout, image: np.ndarray | None, offset: int):
        from engine.backends.bundled_windows import WindowRun

        backend, request = self.backend, self.request
        square = request.with_changes(width=self.size, height=self.size)
        cond = backend._encode(square, image)
        prompts = backend.prompt_plan(square, image, lambda fid: min(max(fid - offset, 0), request.frames - 1))
        return WindowRun(
            backend.model, backend.sampler, cond, request, backend.timesteps(request), backend.device, prompts, layout
        )

    def joins(self, first_new: np.ndarray) -> bool:
        change = float(np.abs(first_new.astype(np.float32) - self.small[-1].astype(np.float32)).mean())
        return change <= JOIN_LIMIT * max(self.median, 1.0)

    def output(self, frames: np.ndarray) -> np.ndarray:
        """Square model frames at the clip's size: drawn again by the upscaler where there is one (as text-to-video
        is), widened from their edges to the clip's aspect."""
        request = self.request
        side = min(request.width, request.height)
        if side != self.size:
            if self.backend.upscaler_folder is not None and side > self.size:
                from engine.kinemo.upscaler import load_upscaler, upscale_frames

                if self.backend.upscaler is None:
                    self.backend.upscaler = load_upscaler(self.backend.upscaler_folder)
                frames = upscale_frames(self.backend.upscaler, frames, side, side)
            else:
                frames = np.stack([fit_to_size(f, side, side) for f in frames])
        return widened(frames, request.width, request.height)


def pixel_continuation(ext: Extension, should_stop: Callable[[], bool] | None, stats: dict):
    """Progress, Preview and the new Frames (numbered after the clip's); returns the seconds sampling took."""
    n = len(ext.original)
    move = ext.run(move_layout(ext.request.frames, ext.step, ext.window), ext.small[-1], offset=1)
    events = sampled(ext, move, should_stop, stats)
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            stats["extension"] = "move"
            return stop.value
        if not isinstance(event, Frames):
            yield event
            continue
        frames, start = event.frames, n + event.start - 1
        if event.start == 0:  # the window's first frame is the clip's last one again
            frames, start = frames[1:], n
            if not ext.joins(frames[0]):
                events.close()
                break
        yield Frames(start, ext.output(frames))
    yield Notice(
        f"the model cannot draw '{ext.request.prompt}' on from where the clip ends (that move starts elsewhere), "
        "so the new frames hold the clip's last moment"
    )
    stats["extension"] = "hold"
    hold = ext.run(hold_layout(n, ext.request.frames, ext.step, ext.window, to_tensor(ext.small)), None, offset=n)
    return (yield from map_frames(sampled(ext, hold, should_stop, stats), ext.output))


def sampled(ext: Extension, run, should_stop, stats):
    """sample_windows with the conditioning cache attached for this run alone (each run attaches its own rolling
    cache, which must not sit on top of another's)."""
    from contextlib import ExitStack

    from engine.backends.bundled_windows import sample_windows
    from engine.caches.conditioning_kv import conditioning_kv_cache

    with ExitStack() as contexts:
        contexts.enter_context(conditioning_kv_cache(ext.backend.model, ext.backend.options.kv_cache))
        return (yield from sample_windows(run, contexts, should_stop, stats))


def camera_continuation(animator, request: GenerationRequest, original: np.ndarray, should_stop, stats: dict):
    """The camera move continued from the clip's last frame, one move per clip length (so at the clip's pace),
    each move starting from the last frame of the one before."""
    pace = max(len(original) - 1, 1)
    picture, made = original[-1], 0
    while made < request.frames:
        part = request.with_changes(frames=pace + 1, extends=None, extends_sha256=None)
        drawn: list[np.ndarray] = []
        yield from collect_frames(animator.animate(part, picture, should_stop, stats), drawn.append)
        new = drawn[0][1 : 1 + request.frames - made]  # its first frame is the picture itself
        yield Frames(len(original) + made, new)
        made += len(new)
        picture = drawn[0][-1]
