"""Prompts that change along a bundled-model clip (engine.api.controls.PromptChange).

Each prompt is encoded once. A window whose frames all follow one prompt is denoised with that prompt alone; a
window a change falls in is denoised once per prompt its frames follow, and each frame takes the prediction of
its own prompt (the model predicts clean frames, so mixing predictions frame by frame mixes pictures). The
model's temporal attention reads the whole window in every pass, so the frames on both sides of a change stay
one clip. Long clips carry the change on through the rolling K/V cache, as they carry everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.api.controls import prompt_segments
from engine.api.request import GenerationRequest


@dataclass
class PromptPlan:
    """The encoded prompt of every segment and which request frame each window frame shows."""

    conds: list  # engine.kinemo.model.Conditioning per segment, in segment order
    starts: list[int]  # first request frame of each segment
    frame_of: Callable[[int], int]  # window frame id -> request frame

    def segment(self, frame_id: int) -> int:
        frame = self.frame_of(frame_id)
        return max(i for i, start in enumerate(self.starts) if start <= frame)

    def for_frames(self, frame_ids: list[int]) -> list[tuple[object, list[float]]]:
        """(conditioning, weight per frame) for each prompt the frames follow; the latest prompt comes last, so
        the rolling cache keeps the keys and values the next window's prompt made."""
        chosen = [self.segment(fid) for fid in frame_ids]
        return [(self.conds[s], [float(c == s) for c in chosen]) for s in sorted(set(chosen))]


def segment_prompts(request: GenerationRequest) -> list[tuple[int, str]]:
    """(first frame, prompt) of each segment of the request's frames."""
    return [(first, text) for first, _, text in prompt_segments(request.prompt, request.prompt_changes, request.frames)]


def window_frame_to_request(frames: int, window: int, long_clip: bool, offset: int = 0) -> Callable[[int], int]:
    """Which request frame a window frame id shows: a one-window clip makes `window` frames and keeps `frames` of
    them evenly spaced (engine.backends.bundled_windows.resample_frames); a long clip's ids are request frames,
    shifted by offset where the window starts from frames that are not the request's (an extension)."""
    if long_clip or frames == window:
        return lambda fid: min(max(fid - offset, 0), frames - 1)
    return lambda fid: round(fid * (frames - 1) / max(1, window - 1))
