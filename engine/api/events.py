"""Plain events a backend yields while it generates; the studio and the CLI render them.

Frames are uint8 numpy arrays shaped (n, h, w, 3) at the model's native resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Loaded:
    model: str
    seconds: float


@dataclass
class Notice:
    """Something the user should know that does not stop the run (e.g. unknown words)."""

    message: str


@dataclass
class MemoryNotice(Notice):
    """The memory plan of the run that starts: a Notice whose message is the plan's one line (every consumer of
    Notice shows it), carrying the plan itself (an engine.planning.plan.MemoryPlan) for those who want more."""

    plan: object | None = None


@dataclass
class Progress:
    step: int  # steps done, 1-based
    total: int
    timestep: int
    elapsed: float  # seconds since sampling started


@dataclass
class Preview:
    step: int
    frames: np.ndarray  # (f, h, w, 3) uint8: the current estimate of the clean clip


@dataclass
class Frames:
    start: int  # index of the first frame in this chunk
    frames: np.ndarray  # (n, h, w, 3) uint8, finished


@dataclass
class Sound:
    """The clip's soundtrack, from models that make one (LTX-2); yielded before the first Frames, so a writer
    knows it has sound when it opens."""

    samples: np.ndarray  # (n, channels) float32 in [-1, 1]
    sample_rate: int  # samples per second

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass
class Finished:
    frame_count: int
    seconds: float
    stats: dict = field(default_factory=dict)


Event = Loaded | Notice | MemoryNotice | Progress | Preview | Sound | Frames | Finished
