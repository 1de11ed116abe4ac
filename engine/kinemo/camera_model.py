"""The camera model: a small diffusion transformer that draws how a picture moves, not its pixels.

It denoises a coarse motion field per frame: for each of grid x grid points, where in the picture that point of
the frame looks, as a displacement from frame 0 in the picture's normalised coordinates (-1..1 across). The
renderer (engine.backends.picture_motion) warps the full-resolution picture through the field, so every pixel
of detail survives at any size and aspect; frame 0 is the picture itself. The text (a camera caption, through
the bundled vocabulary) and a thumbnail of the picture condition every step. Frames mix through the same
standalone TemporalAttention module the pixel model uses.

Shapes: x (b, f, grid * grid * 2) motion fields; ids (b, l) token ids; picture (b, 3, p, p) in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from engine.kinemo.temporal_attention import TemporalAttention
from engine.kinemo.vocabulary import PAD, VOCABULARY


@dataclass(frozen=True)
class CameraConfig:
    grid: int = 4  # motion field points per side
    frames: int = 16  # key frames the model draws; the renderer interpolates any frame count between them
    dim: int = 96
    heads: int = 4
    depth: int = 3
    picture: int = 32  # side of the thumbnail the model sees
    vocab_size: int = len(VOCABULARY)
    beta_schedule: str = "squaredcos_cap_v2"
    num_train_timesteps: int = 1000

    @property
    def channels(self) -> int:
        return self.grid * self.grid * 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CameraConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown camera model config keys: {sorted(unknown)}")
        return cls(**data)


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of diffusion timesteps: (b,) -> (b, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class PictureEncoder(nn.Module):
    """A thumbnail of the picture -> one vector: (b, 3, p, p) -> (b, dim)."""

    def __init__(self, dim: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(3, 24, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(24, 48, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(48, dim, 3, stride=2, padding=1),
        )

    def forward(self, picture: torch.Tensor) -> torch.Tensor:
        return self.convs(picture).mean(dim=(2, 3))


class MotionBlock(nn.Module):
    """Temporal attention across the key frames, then an MLP, both modulated by the conditioning."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.temporal = TemporalAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.modulation = nn.Linear(dim, 6 * dim)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        # x: (b, f, d); c: (b, d)
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(c))[:, None].chunk(6, dim=-1)
        x = x + gate1 * self.temporal(self.norm1(x) * (1 + scale1) + shift1, positions)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class CameraMotionModel(nn.Module):
    """x_t, t, caption ids, picture thumbnail -> the clean motion fields (sample prediction)."""

    def __init__(self, config: CameraConfig):
        super().__init__()
        self.config = config
        d = config.dim
        self.words = nn.Embedding(config.vocab_size, d, padding_idx=PAD)
        self.picture = PictureEncoder(d)
        self.time = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.field_in = nn.Linear(config.channels, d)
        self.frame_pos = nn.Parameter(torch.zeros(config.frames, d))
        self.blocks = nn.ModuleList(MotionBlock(d, config.heads) for _ in range(config.depth))
        self.norm_out = nn.LayerNorm(d)
        self.field_out = nn.Linear(d, config.channels)

    def condition(self, ids: torch.Tensor, picture: torch.Tensor) -> torch.Tensor:
        """The caption (mean of its word vectors) and the picture: (b, d)."""
        mask = (ids != PAD).float()[..., None]  # (b, l, 1)
        text = (self.words(ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return text + self.picture(picture)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        # x: (b, f, c); t: (b,) or (1,); cond: (b, d) from condition()
        c = cond + self.time(timestep_features(t.expand(len(x)), self.config.dim))
        h = self.field_in(x) + self.frame_pos[: x.shape[1]]
        positions = torch.arange(x.shape[1], device=x.device)
        for block in self.blocks:
            h = block(h, c, positions)
        out = self.field_out(self.norm_out(h))
        return torch.cat([torch.zeros_like(out[:, :1]), out[:, 1:]], dim=1)  # frame 0 is the picture: no motion


def fields_to_grid(x: torch.Tensor, grid: int) -> torch.Tensor:
    """(b, f, grid * grid * 2) -> (b, f, grid, grid, 2): each point's (dx, dy)."""
    return rearrange(x, "b f (gy gx two) -> b f gy gx two", gy=grid, gx=grid, two=2)


def grid_to_fields(g: torch.Tensor) -> torch.Tensor:
    """(b, f, grid, grid, 2) -> (b, f, grid * grid * 2)."""
    return rearrange(g, "b f gy gx two -> b f (gy gx two)")
