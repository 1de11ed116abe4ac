"""Temporal self-attention: each spatial position attends across the frames of the clip.

A standalone module with a plain tensor interface so that it can be exported to ONNX, given a
rolling K/V cache for long clips and quantised without touching the rest of the model::

    x: (n, f, d)  with n = batch * tokens, f = frames  ->  (n, f, d)

Frame order is encoded with rotary position embeddings (RoPE) over the frame index, so attention
depends on the distance between frames, not on where a window starts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def rotary_tables(positions: torch.Tensor, head_dim: int, base: float = 100.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables for RoPE: positions (f,) -> (f, head_dim) each."""
    half = head_dim // 2
    inv_freq = base ** (-torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    angles = positions.float()[:, None] * inv_freq[None, :]  # (f, half)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (n, heads, f, head_dim)."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return x * cos + rotated * sin


class TemporalAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.to_out = nn.Linear(dim, dim)

    def project_kv(self, x: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v, each (n, heads, f, head_dim), with RoPE applied to q and k."""
        q, k, v = rearrange(self.to_qkv(x), "n f (three h e) -> three n h f e", three=3, h=self.heads)
        cos, sin = rotary_tables(positions, self.head_dim)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        # x: (n, f, d); positions: (f,) frame indices, default 0..f-1
        if positions is None:
            positions = torch.arange(x.shape[1], device=x.device)
        q, k, v = self.project_kv(x, positions)
        out = F.scaled_dot_product_attention(q, k, v)  # (n, h, f, e)
        return self.to_out(rearrange(out, "n h f e -> n f (h e)"))
