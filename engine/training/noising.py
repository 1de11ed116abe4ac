"""What the model is shown in training: corrupted copies of clips, timesteps, and the loss's weights."""

from __future__ import annotations

import torch


def loss_weight(t: torch.Tensor, cumprod: torch.Tensor, gamma: float = 4.0) -> torch.Tensor:
    """Min-SNR-gamma weighting (Hang et al. 2023) of an x_0 loss, expressed as in v space: min(snr, gamma) + 1."""
    snr = cumprod[t] / (1 - cumprod[t])
    return snr.clamp(max=gamma) + 1


def pixel_weights(foreground: torch.Tensor, object_weight: float) -> torch.Tensor:
    """Loss weight per pixel: 1, plus object_weight on the object and 2 pixels around it.

    The object covers a few percent of each frame, and what tells a circle from a square or a
    triangle (corners, edges, the pixels just outside them) is a few percent of that; under a plain
    MSE the model can draw every shape as the same blob and lose almost nothing.
    foreground (b, 1, f, h, w) -> weights of the same shape.
    """
    near = torch.nn.functional.max_pool3d(foreground, (1, 5, 5), stride=1, padding=(0, 2, 2))
    return 1 + object_weight * near


def gaussian_blur(video: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur every frame of (b, c, f, h, w) with a Gaussian of sigma pixels (separable, reflect padding)."""
    radius = max(1, int(3 * sigma + 0.5))
    taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=video.dtype, device=video.device) ** 2) / (2 * sigma**2))
    taps = taps / taps.sum()
    b, c, f, h, w = video.shape
    x = video.permute(0, 2, 1, 3, 4).reshape(b * f * c, 1, h, w)
    x = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = torch.nn.functional.conv2d(x, taps.view(1, 1, 1, -1))
    x = torch.nn.functional.conv2d(x, taps.view(1, 1, -1, 1))
    return x.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def blurred_inputs(x0: torch.Tensor, rate: float, max_sigma: float, generator: torch.Generator) -> torch.Tensor:
    """x0 (b, c, f, h, w) with rate of its clips blurred by one random sigma in (0.5, max_sigma).

    A sampler's early estimates of x_0 are blurred (they average over what the prompt leaves open), and
    that blur is in x_t at the middle of the schedule. Noising a blurred clip while the target stays
    sharp teaches the model to draw the prompt's shape from such a blob instead of reading the blob's
    roundness as the shape.
    """
    chosen = (torch.rand(x0.shape[0], generator=generator) < rate).to(x0.device)  # (b,)
    sigma = 0.5 + (max_sigma - 0.5) * torch.rand((), generator=generator).item()
    if not chosen.any():
        return x0
    out = x0.clone()
    out[chosen] = gaussian_blur(x0[chosen], sigma)
    return out


def lumpy_inputs(
    x0: torch.Tensor, foreground: torch.Tensor, rate: float, strength: float, generator: torch.Generator
) -> torch.Tensor:
    """x0 (b, 3, f, h, w) with `rate` of its object clips redrawn with lumpy outlines.

    Along a sampler's path the model's estimates grow notches and bumps on the object's outline,
    and a model that reads them as shape turns a square into a blob. A chosen clip's object is
    redrawn, in its own colour on its own background, inside the outline moved by a smooth random
    field, by up to about 2 pixels; the target stays the clean clip. Colour and background are
    coverage-weighted means, which the anti-aliased edge tints by up to 0.1 (of the -1..1 range): a
    shift the noise of the middle timesteps hides; reproducing the shipped model needs it as it is.
    foreground (b, 1, f, h, w) is the object's coverage, 0 in camera clips (never chosen).
    """
    b, _, f, h, w = x0.shape
    chosen = (torch.rand(b, generator=generator) < rate).to(x0.device) & (foreground.flatten(1).amax(1) > 0)  # (b,)
    amount = strength * torch.rand(b, generator=generator).to(x0.device).view(b, 1, 1, 1, 1)
    field = gaussian_blur(torch.randn(b, 1, 1, h, w, generator=generator).to(x0.device), 1.5)  # one field per clip
    field = field / field.flatten(1).std(1).view(b, 1, 1, 1, 1)
    # the outline moves where the blurred coverage crosses 0.5; the clamp keeps the far background and the core as they are
    inside = (gaussian_blur(foreground, 1.5) + (amount * field).clamp(-0.45, 0.45) > 0.5).float()  # (b, 1, f, h, w)
    area = foreground.sum((3, 4), keepdim=True)  # (b, 1, f, 1, 1)
    colour = (x0 * foreground).sum((3, 4), keepdim=True) / area.clamp(min=1e-6)  # (b, 3, f, 1, 1)
    background = (x0 * (1 - foreground)).sum((3, 4), keepdim=True) / (h * w - area).clamp(min=1e-6)
    redrawn = background + inside * (colour - background)
    keep = ~chosen.view(b, 1, 1, 1, 1) | (area < 1)  # frames without the object stay as they are
    return torch.where(keep, x0, redrawn)


def sample_timesteps(
    count: int, total: int, mid_share: float, mid_range: tuple[int, int], generator: torch.Generator
) -> torch.Tensor:
    """count timesteps (count,): uniform over the schedule, except mid_share of them uniform over mid_range."""
    low, high = mid_range  # checked where the command line is read (recipe.check_train_flags)
    anywhere = torch.randint(0, total, (count,), generator=generator)
    middle = torch.randint(low, high, (count,), generator=generator)
    return torch.where(torch.rand(count, generator=generator) < mid_share, middle, anywhere)
