"""Where a model runs and in what precision: CUDA in bf16 (fp16 where bf16 is missing), Apple MPS
in fp16, else the CPU in fp32. Nothing is chosen at import time."""

from __future__ import annotations

from engine.api.errors import InvalidRequest

DEVICES = ("auto", "cuda", "mps", "cpu")


def pick_device(requested: str | None = "auto") -> str:
    """The device to run on; an explicit request that this machine cannot honour is an error."""
    import torch

    requested = (requested or "auto").lower()
    kind = requested.split(":")[0]
    if kind not in DEVICES:
        raise InvalidRequest(f"unknown device {requested!r}; choose one of {', '.join(DEVICES)} (or cuda:N)")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if kind == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if kind == "cuda" and not cuda:
        raise InvalidRequest("--device cuda was asked for, but this machine has no CUDA GPU that torch can use")
    if kind == "mps" and not mps:
        raise InvalidRequest("--device mps was asked for, but Apple's Metal backend is not available here")
    return requested


def pick_dtype(device: str):
    """The precision a diffusers model runs in on this device."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32
