"""Placing a loaded diffusers pipeline as a memory policy says, and recovering when memory runs out."""

from __future__ import annotations

import sys

from engine.planning.estimate import DENOISERS
from engine.planning.policies import Policy


def set_vae_tiling(pipe, on: bool) -> None:
    """VAE slicing (one frame at a time) and tiling (one tile at a time), where the VAE has them."""
    vae = getattr(pipe, "vae", None)
    for flag, enable, disable in (
        ("use_slicing", "enable_slicing", "disable_slicing"),
        ("use_tiling", "enable_tiling", "disable_tiling"),
    ):
        if vae is not None and hasattr(vae, flag):
            getattr(vae, enable if on else disable)()


def _top_level_blocks(module) -> bool:
    import torch

    return any(isinstance(child, (torch.nn.ModuleList, torch.nn.Sequential)) for child in module.children())


def apply_policy(pipe, policy: Policy, device: str, dtype) -> None:
    """Place a pipeline loaded on the CPU as policy says. Offloading policies need an accelerator device;
    on the CPU they are refused (ladder() never offers them there) unless device is given as "cpu" on
    purpose by a test, which exercises the same diffusers calls with the CPU standing in for the GPU."""
    import torch

    if policy.fp8:
        den = getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)
        if den is not None and getattr(type(den), "_skip_layerwise_casting_patterns", None) is not None:
            den.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
    if policy.placement == "device":
        pipe.to(device)
    elif policy.placement == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif policy.placement == "group":
        from diffusers.hooks import apply_group_offloading

        target = torch.device(device)
        stream = target.type == "cuda"
        for name, component in pipe.components.items():
            if not isinstance(component, torch.nn.Module):
                continue
            blocks = name in DENOISERS and _top_level_blocks(component)
            kwargs = dict(
                onload_device=target,
                offload_device=torch.device("cpu"),
                use_stream=stream,
                offload_type="block_level" if blocks else "leaf_level",
            )
            if blocks:
                kwargs["num_blocks_per_group"] = 1
            if hasattr(component, "enable_group_offload"):
                component.enable_group_offload(**kwargs)
            else:
                apply_group_offloading(component, **kwargs)
    elif policy.placement == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        raise ValueError(f"unknown placement {policy.placement!r}")
    set_vae_tiling(pipe, policy.vae_tiling)


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's OutOfMemoryError, Python's MemoryError, or a RuntimeError that says it ran out of memory."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        words in text for words in ("out of memory", "can't allocate memory", "cannot allocate memory")
    )


def free_device_memory(device: str | None) -> None:
    """Collect garbage and hand the GPU's cached blocks back to the driver."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and device and device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
