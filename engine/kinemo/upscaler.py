"""The bundled upscaler: the pixel model's 64x64 frames drawn again 8x larger, with crisp outlines.

The pixel model draws the shapes world at 64x64; an export at 512x512 scaled by a resampling filter keeps
each 64-pixel edge's softness, 8x wider. This model is the second stage of a cascade (as Imagen Video's
upsamplers are), shaped for a world of flat shapes: a small U-Net reads each low-resolution frame with
enough context to see the whole object and predicts, per low-resolution pixel, a signed distance to the
object's outline (in pixels, positive inside), the background and object colours, and how much of the
pixel such a two-colour picture explains. A signed distance field is smooth, so interpolated it places the
outline to a fraction of a pixel at any size (as distance-field text rendering does); the large frame is
drawn from it with one anti-aliased pixel of edge, and where the two-colour picture does not fit (a
procedural picture) the frame stays the smooth upsampling of the small one. It is trained by
engine.training.upscaler_train on frames our own renderer draws, softened the way the pixel model's output
is; it sees no text.

Shapes: frames (n, 3, h, w) in [-1, 1], h and w multiples of 4 -> fields (n, 8, h, w)
-> frames (n, 3, H, W) at any larger size (by default factor times larger).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.api.errors import ModelLoadError
from engine.kinemo.files import save_model
from engine.registry.assets import CONFIG_NAME, WEIGHTS_NAME, read_config

MODEL_TYPE = "kinemo-upscaler"
FIELDS = 8  # per small pixel: signed distance, background RGB, object RGB, fit logit


@dataclass(frozen=True)
class UpscalerConfig:
    factor: int = 8  # the default scale; the fields draw the outline at any scale asked for
    channels: int = 32  # the full-resolution level's width; the two coarser levels have twice as many

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> UpscalerConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown upscaler config keys: {sorted(unknown)}")
        return cls(**data)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity, which trains stably without norms
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.gelu(self.conv1(F.gelu(x)), approximate="tanh"))


class KinemoUpscaler(nn.Module):
    def __init__(self, config: UpscalerConfig = UpscalerConfig()):
        super().__init__()
        self.config = config
        c, wide = config.channels, 2 * config.channels
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.fine = ResidualBlock(c)
        self.down1 = nn.Conv2d(c, wide, 3, stride=2, padding=1)
        self.middle = ResidualBlock(wide)
        self.down2 = nn.Conv2d(wide, wide, 3, stride=2, padding=1)
        self.coarse = nn.Sequential(ResidualBlock(wide), ResidualBlock(wide))
        self.up2 = nn.Conv2d(wide, wide, 3, padding=1)
        self.middle_up = ResidualBlock(wide)
        self.up1 = nn.Conv2d(wide, c, 3, padding=1)
        self.fine_up = ResidualBlock(c)
        self.head = nn.Conv2d(c, FIELDS, 3, padding=1)

    def fields(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (n, 3, h, w) -> (n, 8, h, w): signed distance (1), background (3), object (3), fit logit (1)."""
        x = frames.contiguous(memory_format=torch.channels_last)  # oneDNN's fast layout on CPU
        fine = self.fine(self.stem(x))  # (n, c, h, w)
        middle = self.middle(self.down1(fine))  # (n, 2c, h/2, w/2)
        coarse = self.coarse(self.down2(middle))  # (n, 2c, h/4, w/4)
        middle = self.middle_up(middle + self.up2(F.interpolate(coarse, scale_factor=2.0, mode="nearest")))
        fine = self.fine_up(fine + self.up1(F.interpolate(middle, scale_factor=2.0, mode="nearest")))
        return self.head(F.gelu(fine))

    def forward(self, frames: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """frames (n, 3, h, w) -> (n, 3, *size), by default factor times larger; the outline is drawn at the
        output's own resolution, whatever the scale."""
        h, w = frames.shape[-2:]
        size = size or (h * self.config.factor, w * self.config.factor)
        scale = size[0] / h  # large pixels per small pixel
        up = F.interpolate(self.fields(frames), size=size, mode="bilinear", align_corners=False)
        distance, background, colour, fit = up.split([1, 3, 3, 1], dim=1)
        # the renderer's own anti-aliasing: a large pixel's coverage is its distance in large pixels + 0.5, clipped
        alpha = (distance * scale + 0.5).clamp(0, 1)
        drawn = background + alpha * (colour - background)
        smooth = F.interpolate(frames, size=size, mode="bilinear", align_corners=False)
        return smooth + torch.sigmoid(fit) * (drawn - smooth)


MARGIN = 4  # small pixels each side extended from the frame's edges, so the U-Net's zero padding stays outside it


def upscale_frames(model: KinemoUpscaler, frames: np.ndarray, height: int, width: int, chunk: int = 8) -> np.ndarray:
    """uint8 frames (n, h, w, 3) -> (n, height, width, 3) uint8, drawn at that size, chunk frames at a time (memory
    stays flat). The frames are extended from their edges by MARGIN (and to multiples of 4) for the U-Net, and the
    drawing is cropped back to them."""
    n, h, w, _ = frames.shape
    sy, sx = height / h, width / w  # large pixels per small pixel
    pad_h, pad_w = -(h + 2 * MARGIN) % 4, -(w + 2 * MARGIN) % 4
    size = (round((h + 2 * MARGIN + pad_h) * sy), round((w + 2 * MARGIN + pad_w) * sx))
    top, left = round(MARGIN * sy), round(MARGIN * sx)
    out = np.empty((n, height, width, 3), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, n, chunk):
            x = torch.from_numpy(np.ascontiguousarray(frames[start : start + chunk])).permute(0, 3, 1, 2)
            x = F.pad(x.float().div(127.5).sub(1), (MARGIN, MARGIN + pad_w, MARGIN, MARGIN + pad_h), mode="replicate")
            y = model(x, size)[:, :, top : top + height, left : left + width]  # (k, 3, height, width)
            out[start : start + chunk] = y.add(1).mul(127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out


def save_upscaler(model: KinemoUpscaler, folder: Path, extra_config: dict | None = None) -> None:
    save_model(model, folder, extra_config, model_type=MODEL_TYPE)


def load_upscaler(folder: Path) -> KinemoUpscaler:
    """The upscaler saved in folder (fp32, eval mode); ModelLoadError when it is missing or does not fit."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        model = KinemoUpscaler(UpscalerConfig.from_dict(read_config(folder)))
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(f"unreadable upscaler config {folder / CONFIG_NAME}: {exc}") from exc
    try:
        model.load_state_dict(load_file(folder / WEIGHTS_NAME))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ModelLoadError(f"unreadable upscaler weights {folder / WEIGHTS_NAME}: {exc}") from exc
    return model.eval().requires_grad_(False)
