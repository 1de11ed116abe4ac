"""How soft an object's outline is: the width, in pixels, of the band where a frame passes from its background
to its object.

Every pixel gets an opacity alpha, its colour's position on the line from the background colour (the frame's
border) to the object colour (the pixels farthest from it), clipped to [0, 1]. The band is the pixels with
alpha between 0.1 and 0.9; its width is their count divided by the outline's length. The length is measured
on the alpha > 0.5 mask by the Cauchy-Crofton formula over four directions (the crossings of every row,
column and diagonal), within a few percent for circles, squares and triangles alike. A crisp anti-aliased
edge measures under 1 px; an 8x upscale of it by a resampling filter about 6-7 px.
"""

from __future__ import annotations

import math

import numpy as np

from engine.training.checker import border_colour

LOW, HIGH = 0.1, 0.9
MIN_CONTRAST = 0.25  # object and background closer than this (RGB, 0..1) have no outline to measure


def opacity(frame: np.ndarray) -> np.ndarray | None:
    """(h, w, 3) uint8 -> alpha (h, w) in [0, 1], or None when no object stands out of the background."""
    video = frame.astype(np.float64) / 255.0
    background = border_colour(video)
    distance = np.sqrt(((video - background) ** 2).sum(-1))  # (h, w)
    if distance.max() < MIN_CONTRAST:
        return None
    colour = np.median(video[distance >= 0.8 * distance.max()], axis=0)
    axis = colour - background
    return np.clip(((video - background) @ axis) / (axis @ axis), 0.0, 1.0)


def outline_length(mask: np.ndarray) -> float:
    """Length in pixels of the boundary of a boolean mask (h, w), by Cauchy-Crofton over four directions."""
    m = mask.astype(np.int8)
    rows = np.abs(np.diff(m, axis=1)).sum()  # crossings of horizontal lines, 1 px apart
    cols = np.abs(np.diff(m, axis=0)).sum()
    diagonal = np.abs(m[1:, 1:] - m[:-1, :-1]).sum() + np.abs(m[1:, :-1] - m[:-1, 1:]).sum()  # lines 1/sqrt(2) apart
    return float(math.pi / 8 * (rows + cols + diagonal / math.sqrt(2)))


def outline_band(frame: np.ndarray) -> float | None:
    """The band's mean width in pixels, or None for a frame without an object to measure."""
    alpha = opacity(frame)
    if alpha is None:
        return None
    length = outline_length(alpha > 0.5)
    if length < 8:
        return None
    return float(((alpha > LOW) & (alpha < HIGH)).sum() / length)


def clip_band(frames: np.ndarray) -> float | None:
    """The median band width over a clip's frames (f, h, w, 3), None when no frame has an object."""
    widths = [w for w in (outline_band(frame) for frame in frames) if w is not None]
    return float(np.median(widths)) if widths else None
