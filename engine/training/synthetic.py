"""The synthetic world the bundled model learns from: procedural clips and their captions.

Two kinds of clip, both rendered analytically (anti-aliased, vectorised over the batch):

* object clips: one coloured shape on a plain background that moves, grows, shrinks or stays;
* camera clips: a smooth procedural picture seen through a camera that pans or zooms, so that
  image-to-video does something sensible with any picture an artist drops.

Clips are float tensors in [0, 1] shaped ``(b, 3, f, h, w)``. Motion is defined over normalised
clip time tau in [0, 1], so a clip of any length shows the whole move.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from itertools import product

import torch

from engine.kinemo.vocabulary import (
    BACKGROUNDS,
    CAMERA_MOVES,
    COLOURS,
    MOTIONS,
    SHAPES,
    camera_caption,
    is_visible,
    object_caption,
)

SIZE = 64
GROWTH = 1.8  # a growing object ends 1.8x its first size; a shrinking one 1/1.8x
HELD_OUT_COUNT = 64
HELD_OUT_SEED = 20261121
JITTER = 2.0  # pixels of random offset of an object's path from the frame centre


@dataclass(frozen=True)
class ObjectClip:
    colour: str
    shape: str
    motion: str
    background: str
    x0: float  # first-frame centre, pixels
    y0: float
    radius0: float  # first-frame half-extent, pixels
    distance: float  # pixels travelled over the clip (0 unless it moves)

    @property
    def caption(self) -> str:
        return object_caption(self.colour, self.shape, self.motion, self.background)


@dataclass(frozen=True)
class CameraClip:
    move: str
    texture_seed: int
    amount: float  # pan: pixels travelled; zoom: final magnification

    @property
    def caption(self) -> str:
        return camera_caption(self.move)


Combo = tuple[str, str, str, str]  # colour, shape, motion, background


def all_combos() -> list[Combo]:
    return [(c, s, m, b) for c, s, m, b in product(COLOURS, SHAPES, MOTIONS, BACKGROUNDS) if is_visible(c, b)]


def held_out_combos() -> frozenset[Combo]:
    """Combinations never shown in training; the evaluation prompts come from here."""
    combos = all_combos()
    return frozenset(random.Random(HELD_OUT_SEED).sample(combos, HELD_OUT_COUNT))


def training_combos() -> list[Combo]:
    held = held_out_combos()
    return [c for c in all_combos() if c not in held]


# ----------------------------------------------------------------------------------------------
# Sampling clip parameters
# ----------------------------------------------------------------------------------------------

_DIRECTIONS = {"moves left": (-1, 0), "moves right": (1, 0), "moves up": (0, -1), "moves down": (0, 1)}


def motion_scale(motion: str, tau: torch.Tensor) -> torch.Tensor:
    """Size multiplier over clip time tau."""
    if motion == "grows":
        return 1 + (GROWTH - 1) * tau
    if motion == "shrinks":
        return 1 + (1 / GROWTH - 1) * tau
    return torch.ones_like(tau)


def sample_object_clip(rng: random.Random, combo: Combo) -> ObjectClip:
    """Clip parameters for one combination.

    The world is deliberately simple: the move is centred in the frame, with a few pixels of
    jitter in position, size and distance. A small model then learns caption -> clip as a nearly
    deterministic map, and the seed varies the details.
    """
    colour, shape, motion, background = combo
    # As large as the frame allows (every object stays 2 px clear of the border): what tells a square from a
    # circle is its corners, and they grow with the square of the size
    if motion == "grows":
        radius0 = rng.uniform(8.0, 9.0)
    elif motion == "shrinks":
        radius0 = rng.uniform(15.0, 16.5)
    else:
        radius0 = rng.uniform(12.0, 13.5)
    centre_x = SIZE / 2 + rng.uniform(-JITTER, JITTER)
    centre_y = SIZE / 2 + rng.uniform(-JITTER, JITTER)
    x0, y0, distance = centre_x, centre_y, 0.0
    if motion in _DIRECTIONS:
        dx, dy = _DIRECTIONS[motion]
        distance = rng.uniform(20.0, 26.0)
        x0, y0 = centre_x - dx * distance / 2, centre_y - dy * distance / 2
    return ObjectClip(colour, shape, motion, background, x0, y0, radius0, distance)


def sample_camera_clip(rng: random.Random, move: str | None = None) -> CameraClip:
    move = move or rng.choice(CAMERA_MOVES)
    amount = rng.uniform(14.0, 22.0) if move.startswith("pans") else rng.uniform(1.4, 1.7)
    return CameraClip(move, rng.randrange(2**31), amount)


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def _pixel_grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    return xs, ys  # (h, w) each


def shape_signed_distance(shape: str, dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Signed distance in pixels, positive inside; the shape's half-extent is r."""
    if shape == "circle":
        return r - torch.sqrt(dx**2 + dy**2)
    if shape == "square":
        return r - torch.maximum(dx.abs(), dy.abs())
    if shape == "triangle":  # apex up, base 2r, height 2r
        root5 = math.sqrt(5.0)
        left = (2 * dx + dy + r) / root5
        right = (-2 * dx + dy + r) / root5
        return torch.minimum(torch.minimum(left, right), r - dy)
    raise ValueError(f"unknown shape {shape!r}")


def object_coverage(clip: ObjectClip, frames: int, size: int = SIZE) -> torch.Tensor:
    """How much of each pixel the object covers, anti-aliased: (f, h, w) in [0, 1]."""
    scale = size / SIZE
    tau = torch.linspace(0, 1, frames) if frames > 1 else torch.zeros(1)
    dx_dir, dy_dir = _DIRECTIONS.get(clip.motion, (0, 0))
    cx = (clip.x0 + dx_dir * clip.distance * tau) * scale  # (f,)
    cy = (clip.y0 + dy_dir * clip.distance * tau) * scale
    r = clip.radius0 * motion_scale(clip.motion, tau) * scale
    xs, ys = _pixel_grid(size)
    dx = xs[None] - cx[:, None, None]  # (f, h, w)
    dy = ys[None] - cy[:, None, None]
    return (shape_signed_distance(clip.shape, dx, dy, r[:, None, None]) + 0.5).clamp(0, 1)


def render_object_clip(clip: ObjectClip, frames: int, size: int = SIZE) -> torch.Tensor:
    """One object clip as (3, f, h, w) in [0, 1]."""
    return paint_object(clip, object_coverage(clip, frames, size))


def paint_object(clip: ObjectClip, alpha: torch.Tensor) -> torch.Tensor:
    """The clip's colours over its coverage alpha (f, h, w): (3, f, h, w) in [0, 1]."""
    colour = torch.tensor(COLOURS[clip.colour])[:, None, None, None]
    background = torch.tensor(BACKGROUNDS[clip.background])[:, None, None, None]
    return background * (1 - alpha[None]) + colour * alpha[None]


def texture(seed: int, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """A smooth procedural picture evaluated at world coordinates: (3, *xs.shape) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(2, 3, generator=g)
    angle = torch.rand(1, generator=g).item() * 2 * math.pi
    ramp = ((xs * math.cos(angle) + ys * math.sin(angle)) / 90.0 + 0.5).clamp(0, 1)
    as_colour = lambda rgb: rgb.view(3, *([1] * xs.ndim))  # noqa: E731
    picture = as_colour(base[0]) * (1 - ramp) + as_colour(base[1]) * ramp
    for _ in range(7):
        cx, cy = (torch.rand(2, generator=g) * 120 - 28).tolist()
        sigma = 5 + 9 * torch.rand(1, generator=g).item()
        colour = torch.rand(3, generator=g)
        weight = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
        picture = picture * (1 - weight) + as_colour(colour) * weight
    stripes = 0.5 + 0.5 * torch.sin(xs * 0.35 * torch.rand(1, generator=g).item() + ys * 0.2)
    return (picture * (0.85 + 0.15 * stripes)).clamp(0, 1)


def camera_coordinates(move: str, amount: float, tau: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """World coordinates seen by each pixel of each frame: (f, h, w) each, in model pixels."""
    xs, ys = _pixel_grid(size)
    xs, ys = xs * (SIZE / size), ys * (SIZE / size)
    xs, ys = xs[None].expand(len(tau), -1, -1), ys[None].expand(len(tau), -1, -1)
    t = tau[:, None, None]
    if move == "pans left":  # the camera moves left, so the picture slides right
        return xs - amount * t, ys
    if move == "pans right":
        return xs + amount * t, ys
    centre = SIZE / 2
    zoom = 1 + (amount - 1) * t if move == "zooms in" else amount + (1 - amount) * t
    return centre + (xs - centre) / zoom, centre + (ys - centre) / zoom


def render_camera_clip(clip: CameraClip, frames: int, size: int = SIZE) -> torch.Tensor:
    tau = torch.linspace(0, 1, frames) if frames > 1 else torch.zeros(1)
    xs, ys = camera_coordinates(clip.move, clip.amount, tau, size)
    return texture(clip.texture_seed, xs, ys)  # (3, f, h, w)


def render(clip: ObjectClip | CameraClip, frames: int, size: int = SIZE) -> torch.Tensor:
    if isinstance(clip, ObjectClip):
        return render_object_clip(clip, frames, size)
    return render_camera_clip(clip, frames, size)


# ----------------------------------------------------------------------------------------------
# Training batches
# ----------------------------------------------------------------------------------------------


@dataclass
class Batch:
    video: torch.Tensor  # (b, 3, f, h, w) in [0, 1]
    captions: list[str]
    image_mask: torch.Tensor  # (b,) 1 where the first frame is given as conditioning
    foreground: torch.Tensor  # (b, 1, f, h, w) the object's coverage; 0 everywhere in camera clips


def sample_clips(rng: random.Random, count: int, camera_fraction: float = 0.25, combos: list[Combo] | None = None):
    combos = combos if combos is not None else training_combos()
    return [
        sample_camera_clip(rng) if rng.random() < camera_fraction else sample_object_clip(rng, rng.choice(combos))
        for _ in range(count)
    ]


def make_batch(
    rng: random.Random,
    batch_size: int,
    frames: int = 16,
    camera_fraction: float = 0.25,
    image_probability: tuple[float, float] = (0.3, 0.6),
    combos: list[Combo] | None = None,
) -> Batch:
    """A batch of training clips; image_probability is (object clips, camera clips)."""
    clips = sample_clips(rng, batch_size, camera_fraction, combos)
    # each object's coverage is computed once: it draws the clip and weighs the loss
    coverage = [
        object_coverage(c, frames) if isinstance(c, ObjectClip) else torch.zeros(frames, SIZE, SIZE) for c in clips
    ]
    video = torch.stack(
        [
            paint_object(c, a) if isinstance(c, ObjectClip) else render_camera_clip(c, frames)
            for c, a in zip(clips, coverage)
        ]
    )
    mask = torch.tensor([float(rng.random() < image_probability[isinstance(c, CameraClip)]) for c in clips])
    return Batch(video, [c.caption for c in clips], mask, torch.stack(coverage)[:, None])
