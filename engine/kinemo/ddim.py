"""Gradient-free DDIM sampling (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models").

One step, in the paper's symbols (eq. 12):

    a_t      alphas_cumprod[t]            a_prev   alphas_cumprod[t_prev] (or the final alpha)
    x_0^     predicted original sample    e^       predicted noise
    sigma_t  eta * sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev)

    x_prev = sqrt(a_prev) * x_0^ + sqrt(1 - a_prev - sigma_t^2) * e^ + sigma_t * z

The step is written as diffusers writes ``DDIMScheduler.step`` so that the two agree step for step;
unlike it, the previous timestep is the next entry of an explicit timestep list, so distilled
few-step schedules with uneven spacing are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from engine.kinemo.schedule import alphas_cumprod, make_betas

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")


def ddim_timesteps(
    num_steps: int, num_train_timesteps: int = 1000, spacing: str = "trailing", steps_offset: int = 0
) -> list[int]:
    """Descending timesteps for num_steps sampling steps, spaced as diffusers spaces them."""
    if not 1 <= num_steps <= num_train_timesteps:
        raise ValueError(f"num_steps must be between 1 and {num_train_timesteps}, got {num_steps}")
    if spacing == "leading":
        ratio = num_train_timesteps // num_steps
        steps = (np.arange(0, num_steps) * ratio).round()[::-1] + steps_offset
    elif spacing == "trailing":
        steps = np.round(np.arange(num_train_timesteps, 0, -num_train_timesteps / num_steps)) - 1
    elif spacing == "linspace":
        steps = np.linspace(0, num_train_timesteps - 1, num_steps).round()[::-1]
    else:
        raise ValueError(f"unknown timestep spacing {spacing!r}; choose one of {', '.join(TIMESTEP_SPACINGS)}")
    return [int(t) for t in steps]


@dataclass
class StepOutput:
    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


@dataclass
class DDIMSampler:
    alphas_cumprod: torch.Tensor  # (num_train_timesteps,) float32
    prediction_type: str = "epsilon"
    clip_sample: bool = False
    clip_sample_range: float = 1.0
    set_alpha_to_one: bool = True
    use_clipped_model_output: bool = False  # re-derive the noise from the clipped x_0 (GLIDE)

    def __post_init__(self):
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"unknown prediction_type {self.prediction_type!r}; choose one of {', '.join(PREDICTION_TYPES)}"
            )
        self.final_alpha_cumprod = torch.tensor(1.0) if self.set_alpha_to_one else self.alphas_cumprod[0]

    @classmethod
    def from_schedule(
        cls, beta_schedule: str = "squaredcos_cap_v2", num_train_timesteps: int = 1000, **kwargs
    ) -> DDIMSampler:
        return cls(alphas_cumprod(make_betas(beta_schedule, num_train_timesteps)), **kwargs)

    @property
    def num_train_timesteps(self) -> int:
        return len(self.alphas_cumprod)

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int,
        prev_timestep: int,
        sample: torch.Tensor,
        eta: float = 0.0,
        noise: torch.Tensor | None = None,
    ) -> StepOutput:
        """One DDIM update from timestep to prev_timestep (< 0 means the end of sampling)."""
        # 1. alphas at t and t_prev
        a_t = self.alphas_cumprod[timestep]
        a_prev = self.alphas_cumprod[prev_timestep] if prev_timestep >= 0 else self.final_alpha_cumprod
        b_t = 1 - a_t

        # 2. predicted x_0 and predicted noise from the model output
        if self.prediction_type == "epsilon":
            x0 = (sample - b_t**0.5 * model_output) / a_t**0.5
            eps = model_output
        elif self.prediction_type == "sample":
            x0 = model_output
            eps = (sample - a_t**0.5 * x0) / b_t**0.5
        else:  # v_prediction
            x0 = a_t**0.5 * sample - b_t**0.5 * model_output
            eps = a_t**0.5 * model_output + b_t**0.5 * sample

        # 3. optional clipping of x_0
        if self.clip_sample:
            x0 = x0.clamp(-self.clip_sample_range, self.clip_sample_range)
        if self.use_clipped_model_output:
            eps = (sample - a_t**0.5 * x0) / b_t**0.5

        # 4. sigma_t from eta
        variance = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
        std = eta * variance**0.5

        # 5. direction pointing to x_t, then x_prev
        direction = (1 - a_prev - std**2) ** 0.5 * eps
        prev = a_prev**0.5 * x0 + direction
        if eta > 0:
            if noise is None:
                raise ValueError("eta > 0 needs a noise tensor")
            prev = prev + std * noise
        return StepOutput(prev, x0)

    def sample(
        self,
        denoise: Callable[[torch.Tensor, int], torch.Tensor],
        noise: torch.Tensor,
        timesteps: Sequence[int],
        eta: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> Iterator[tuple[int, int, StepOutput]]:
        """Run DDIM from pure noise along explicit descending timesteps.

        Yields (index, timestep, output) after every step, so the caller can report progress,
        show the current estimate, or stop by no longer iterating.
        """
        if any(b >= a for a, b in zip(timesteps, timesteps[1:])):
            raise ValueError(f"timesteps must strictly decrease, got {list(timesteps)}")
        if timesteps and not 0 <= timesteps[0] < self.num_train_timesteps:
            raise ValueError(f"timestep {timesteps[0]} outside 0..{self.num_train_timesteps - 1}")
        x = noise
        for i, t in enumerate(timesteps):
            prev_t = timesteps[i + 1] if i + 1 < len(timesteps) else -1
            # inference mode around the work only: a yield inside it would leave the caller's
            # thread in inference mode for as long as the generator stays suspended
            with torch.inference_mode():
                z = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device) if eta > 0 else None
                out = self.step(denoise(x, t), t, prev_t, x, eta, z)
            x = out.prev_sample
            yield i, t, out
