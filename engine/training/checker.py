"""An analytic checker for object clips: what colour, shape and motion does a clip show?

Works on uint8 frames (f, h, w, 3) with numpy only. The background is estimated from each
frame's border; the object is every pixel far from it. Shape is the template (circle, square,
triangle) that best overlaps the object's mask inside its bounding box; motion comes from the
centroid track and the change of area between the start and the end of the clip.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from engine.kinemo.vocabulary import BACKGROUNDS, COLOURS, SHAPES

OBJECT_DISTANCE = 0.25  # RGB distance (0..1 scale) from the background that counts as object
FRAME_SIZE = 64  # the pixel thresholds below are for 64-pixel frames and scale with a frame's width
MIN_PIXELS = 6
GROW_AREA_RATIO = 1.6  # truth: 1.8^2 = 3.24 for grows, 0.31 for shrinks
STILL_PIXELS = 5.0  # truth: 18..26 px for moves


@dataclass
class FrameReading:
    found: bool
    colour: str | None = None
    shape: str | None = None
    centroid: tuple[float, float] | None = None  # (x, y) pixels
    area: float = 0.0


@dataclass
class ClipReading:
    colour: str | None
    shape: str | None
    motion: str | None
    background: str | None
    consistency: float  # share of frames whose colour and shape agree with the clip's verdict
    found_frames: int


def nearest(palette: dict[str, tuple[float, float, float]], rgb: np.ndarray) -> str:
    names = list(palette)
    distances = [np.sum((np.asarray(palette[n]) - rgb) ** 2) for n in names]
    return names[int(np.argmin(distances))]


def border_colour(frame: np.ndarray) -> np.ndarray:
    border = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
    return np.median(border, axis=0)


def template(shape: str, h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    dx, dy = xs - cx, ys - cy
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return np.maximum(abs(dx), abs(dy)) <= r
    root5 = np.sqrt(5.0)
    return ((2 * dx + dy + r) / root5 >= 0) & ((-2 * dx + dy + r) / root5 >= 0) & (dy <= r)


def classify_shape(mask: np.ndarray) -> str:
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    mask = mask[y0:y1, x0:x1]  # templates are compared inside the bounding box
    cx, cy, r = (x1 - x0) / 2, (y1 - y0) / 2, ((x1 - x0) + (y1 - y0)) / 4
    scores = {}
    for shape in SHAPES:
        t = template(shape, *mask.shape, cx, cy, r)
        scores[shape] = (t & mask).sum() / max(1, (t | mask).sum())
    return max(scores, key=scores.get)


def read_frame(frame: np.ndarray, min_pixels: float = MIN_PIXELS) -> FrameReading:
    """frame: (h, w, 3) float in [0, 1]."""
    background = border_colour(frame)
    mask = np.sqrt(((frame - background) ** 2).sum(-1)) > OBJECT_DISTANCE
    if mask.sum() < min_pixels:
        return FrameReading(False)
    ys, xs = np.nonzero(mask + 0)
    colour = nearest(COLOURS, np.median(frame[mask], axis=0))
    return FrameReading(True, colour, classify_shape(mask), (xs.mean() + 0.5, ys.mean() + 0.5), float(mask.sum()))


def classify_motion(readings: list[FrameReading], still_pixels: float = STILL_PIXELS) -> str | None:
    found = [r for r in readings if r.found]
    if len(found) < 2:
        return None
    quarter = max(1, len(found) // 4)
    head, tail = found[:quarter], found[-quarter:]
    area_ratio = np.mean([r.area for r in tail]) / max(1.0, np.mean([r.area for r in head]))
    if area_ratio > GROW_AREA_RATIO:
        return "grows"
    if area_ratio < 1 / GROW_AREA_RATIO:
        return "shrinks"
    start = np.mean([r.centroid for r in head], axis=0)
    end = np.mean([r.centroid for r in tail], axis=0)
    dx, dy = end - start
    if max(abs(dx), abs(dy)) < still_pixels:
        return "stays still"
    if abs(dx) >= abs(dy):
        return "moves right" if dx > 0 else "moves left"
    return "moves down" if dy > 0 else "moves up"


def majority(values: list) -> object:
    values = [v for v in values if v is not None]
    return Counter(values).most_common(1)[0][0] if values else None


def check_clip(frames: np.ndarray) -> ClipReading:
    """frames: (f, h, w, 3) uint8."""
    video = frames.astype(np.float64) / 255.0
    scale = frames.shape[2] / FRAME_SIZE
    readings = [read_frame(frame, MIN_PIXELS * scale**2) for frame in video]
    colour = majority([r.colour for r in readings])
    shape = majority([r.shape for r in readings])
    background = majority([nearest(BACKGROUNDS, border_colour(frame)) for frame in video])
    agreeing = sum(r.found and r.colour == colour and r.shape == shape for r in readings)
    return ClipReading(
        colour,
        shape,
        classify_motion(readings, STILL_PIXELS * scale),
        background,
        agreeing / len(readings),
        sum(r.found for r in readings),
    )
