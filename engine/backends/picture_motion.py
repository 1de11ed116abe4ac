"""Rendering a picture through the camera model's motion fields, at the output's full size.

The picture is fit to the output (centre-cropped to its aspect, resized once, full detail); each frame samples
it where the frame's motion field says, the coarse field interpolated smoothly over the frame. Where a move
looks past the picture's edge (a pan, a zoom out), the picture is extended by mirroring it there, so the
revealed area continues the picture instead of going black; extends_beyond() tells when that happens.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image

CHUNK = 4  # frames warped at once: bounds the memory of a long clip at full size


def thumbnail(rgb: np.ndarray, side: int) -> torch.Tensor:
    """The picture as the camera model sees it: (1, 3, side, side) in [-1, 1]."""
    small = Image.fromarray(np.ascontiguousarray(rgb)).resize((side, side), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(small, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]


def frames_between(fields: torch.Tensor, count: int) -> torch.Tensor:
    """The key frames' fields (k, g, g, 2) at count evenly spaced moments of the same move: (count, g, g, 2)."""
    k = len(fields)
    if count == k:
        return fields
    where = torch.linspace(0, k - 1, count) if count > 1 else torch.zeros(1)
    low = where.floor().long().clamp(max=k - 1)
    high = (low + 1).clamp(max=k - 1)
    weight = (where - low.float())[:, None, None, None]
    return fields[low] * (1 - weight) + fields[high] * weight


def sampling_grid(fields: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Where each output pixel samples the picture, in grid_sample's -1..1 coordinates: (n, h, w, 2)."""
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
    coarse = rearrange(fields, "n gy gx two -> n two gy gx")
    dense = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    return base[None] + rearrange(dense, "n two h w -> n h w two")


def extends_beyond(fields: torch.Tensor, margin: float = 0.01) -> bool:
    """Whether any frame looks past the picture's edge (checked on the field's points and edges)."""
    grid = fields.shape[1]
    corners = torch.linspace(-1, 1, grid)
    base = torch.stack(torch.meshgrid(corners, corners, indexing="xy"), dim=-1)
    return bool(((base[None] + fields).abs() > 1 + margin).any())


def render(picture: np.ndarray, fields: torch.Tensor) -> np.ndarray:
    """The picture (h, w, 3) uint8 seen through fields (n, g, g, 2): (n, h, w, 3) uint8."""
    h, w = picture.shape[:2]
    source = torch.from_numpy(np.array(picture, dtype=np.float32)).permute(2, 0, 1)[None]  # (1, 3, h, w)
    out = np.empty((len(fields), h, w, 3), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, len(fields), CHUNK):
            grid = sampling_grid(fields[start : start + CHUNK].float(), h, w)
            warped = F.grid_sample(
                source.expand(len(grid), -1, -1, -1), grid, mode="bilinear", padding_mode="reflection",
                align_corners=False,
            )  # fmt: skip
            out[start : start + len(grid)] = warped.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out
