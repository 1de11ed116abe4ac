"""Steps of a pipeline that offers no step callback (HunyuanVideo 1.5), seen from its denoiser's forward calls.

A diffusers ModelHook on the transformer sees every pass. The first pass at a new timestep starts a step: its
hidden_states begin with the latents (HunyuanVideo 1.5 concatenates condition channels and a mask after them),
so the hook reports the step with those latents and can stop the run there, within one step as the callback
would. The hook is attached for one call and removed after it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

HOOK_NAME = "kinemo_steps"


def _step_hook_class():
    from diffusers.hooks import ModelHook

    class StepHook(ModelHook):
        def __init__(self, on_step: Callable, channels: int):
            super().__init__()
            self.on_step, self.channels, self.last = on_step, channels, None

        def pre_forward(self, module, *args, **kwargs):
            hidden = kwargs.get("hidden_states", args[0] if args else None)
            timestep = kwargs.get("timestep")
            value = float(timestep.flatten()[0]) if getattr(timestep, "ndim", 0) else float(timestep)
            if value != self.last:  # the first pass of a step (guidance runs more passes at the same timestep)
                self.last = value
                self.on_step(value, hidden[:1, : self.channels])
            return args, kwargs

    return StepHook


@contextmanager
def step_hook(transformer, on_step: Callable):
    """on_step(timestep, latents "b c f h w") at the start of every step while the block runs."""
    from diffusers.hooks import HookRegistry

    channels = int(getattr(transformer.config, "out_channels", None) or transformer.config.in_channels)
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    registry.register_hook(_step_hook_class()(on_step, channels), HOOK_NAME)
    try:
        yield
    finally:
        registry.remove_hook(HOOK_NAME, recurse=False)
