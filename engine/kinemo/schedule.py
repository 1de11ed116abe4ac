"""Noise schedules: betas and cumulative alphas, computed exactly as diffusers computes them."""

from __future__ import annotations

import math

import torch

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


def betas_for_alpha_bar(num_train_timesteps: int, max_beta: float = 0.999) -> torch.Tensor:
    """The cosine schedule of Nichol & Dhariwal (2021), 'Improved DDPM'."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [
        min(1 - alpha_bar((i + 1) / num_train_timesteps) / alpha_bar(i / num_train_timesteps), max_beta)
        for i in range(num_train_timesteps)
    ]
    return torch.tensor(betas, dtype=torch.float32)


def shift_snr(betas: torch.Tensor, snr_scale: float) -> torch.Tensor:
    """Multiply the signal-to-noise ratio of every timestep by snr_scale (Hoogeboom et al. 2023,
    "simple diffusion"): a' = s * a / (1 - a + s * a). Returns the betas of the shifted schedule."""
    a = torch.cumprod(1.0 - betas.double(), dim=0)
    shifted = snr_scale * a / (1 - a + snr_scale * a)
    previous = torch.cat([torch.ones(1, dtype=torch.float64), shifted[:-1]])
    return (1 - shifted / previous).clamp(max=0.999).float()


def make_betas(
    beta_schedule: str = "squaredcos_cap_v2",
    num_train_timesteps: int = 1000,
    beta_start: float = 0.0001,
    beta_end: float = 0.02,
    snr_scale: float = 1.0,
) -> torch.Tensor:
    """Betas of a named schedule, optionally with every SNR scaled by snr_scale."""
    if snr_scale != 1.0:
        return shift_snr(make_betas(beta_schedule, num_train_timesteps, beta_start, beta_end), snr_scale)
    if beta_schedule == "linear":
        return torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
    if beta_schedule == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float32) ** 2
    if beta_schedule == "squaredcos_cap_v2":
        return betas_for_alpha_bar(num_train_timesteps)
    raise ValueError(f"unknown beta_schedule {beta_schedule!r}; choose one of {', '.join(BETA_SCHEDULES)}")


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    return torch.cumprod(1.0 - betas, dim=0)


def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, cumprod: torch.Tensor) -> torch.Tensor:
    """q(x_t | x_0) for a batch: x0, noise (b, ...), t (b,)."""
    a = cumprod[t].view(-1, *([1] * (x0.ndim - 1)))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def velocity(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, cumprod: torch.Tensor) -> torch.Tensor:
    """The v-prediction target of Salimans & Ho (2022): v = sqrt(a) * eps - sqrt(1 - a) * x0."""
    a = cumprod[t].view(-1, *([1] * (x0.ndim - 1)))
    return a.sqrt() * noise - (1 - a).sqrt() * x0
