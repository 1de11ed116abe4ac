"""Live previews of a diffusers pipeline's latents, without running its decoder."""

from __future__ import annotations

import numpy as np

PREVIEW_SIZE = 96  # longest side of live previews, pixels


def latent_preview(latents, layout: str, shape_hint: tuple[int, int, int] | None = None) -> np.ndarray:
    """A rough picture of the latents for live preview: (f, h, w, 3) uint8, no decoder involved.

    The first three latent channels, each standardised, stand in for colour. It shows where things
    are and how they move; the finished frames come from the pipeline's own decoder.
    """
    import torch
    import torch.nn.functional as F
    from einops import rearrange

    x = latents[:1].detach().float().cpu()
    if layout == "packed":  # LTX: (b, s, c) tokens of a (f, h, w) latent grid
        f, h, w = shape_hint
        x = rearrange(x[0, : f * h * w], "(f h w) c -> f c h w", f=f, h=h, w=w)
    else:
        x = rearrange(x, f"{layout} -> (b f) c h w")
    channels = x[:, :3] if x.shape[1] >= 3 else x[:, :1].expand(-1, 3, -1, -1)
    mean = channels.mean(dim=(0, 2, 3), keepdim=True)
    std = channels.std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-6)
    rgb = torch.sigmoid((channels - mean) / std)
    scale = PREVIEW_SIZE / max(rgb.shape[-2:])
    rgb = F.interpolate(rgb, scale_factor=max(1.0, scale), mode="nearest")
    return (rgb * 255).round().byte().permute(0, 2, 3, 1).numpy()
