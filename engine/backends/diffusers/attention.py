"""--attention and --compile for diffusers denoisers: the attention backend diffusers dispatches to, and regional
compilation of the denoiser's repeated blocks (`compile_repeated_blocks`).

Two halves, so a switch that cannot apply fails in one line before anything heavy happens:
- check_speed_options(options): the rule, before loading (engine.backends.run_checks.diffusers_speed calls it):
  the device and the packages a choice needs. Imports no torch unless the device is "auto" or CUDA and a choice
  needs CUDA.
- apply_speed_options(pipe, options, device): once the pipeline is loaded and placed; refuses (one line) a
  denoiser that does not route its attention through diffusers' dispatcher, or names no repeated blocks.

Kinemo's choices -> diffusers' AttentionBackendName values:
  auto   the denoiser's own default (torch's scaled_dot_product_attention); nothing is changed
  sdpa   "native": torch's scaled_dot_product_attention, torch picks the kernel (any device)
  flash  "flash": FlashAttention 2 (the flash-attn package, CUDA, bf16/fp16)
  sage   "sage": SageAttention (the sageattention package, CUDA, bf16/fp16)
  native "_native_math": torch's plain math attention, the reference to check a faster backend against (any device)
"""

from __future__ import annotations

import importlib.util

from engine.api.errors import InvalidRequest
from engine.api.run_options import RunOptions

DIFFUSERS_NAMES = {"sdpa": "native", "flash": "flash", "sage": "sage", "native": "_native_math"}
PACKAGES = {"flash": ("flash_attn", "flash-attn"), "sage": ("sageattention", "sageattention")}  # module, pip name
CUDA_ONLY = ("flash", "sage")
COMPILE_MODE = None  # torch.compile's default mode: no CUDA graphs, which group offloading and caches would break


def package_installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def on_cuda(device: str) -> bool:
    """Whether a run asked for `device` lands on a CUDA GPU (torch is imported only for "auto" and "cuda")."""
    kind = device.lower().split(":")[0]
    if kind in ("cpu", "mps"):
        return False
    from engine.backends.devices import pick_device

    try:
        return pick_device(device).startswith("cuda")
    except InvalidRequest:
        return False


def check_speed_options(options: RunOptions) -> None:
    """Refuse, in one line, an attention backend or --compile this machine cannot give a diffusers model."""
    choice = options.attention
    if choice in PACKAGES:
        module, pip_name = PACKAGES[choice]
        if not package_installed(module):
            raise InvalidRequest(
                f"--attention {choice}: the {pip_name} package is not installed (pip install {pip_name}); "
                "use --attention sdpa"
            )
    if choice in CUDA_ONLY and not on_cuda(options.device):
        raise InvalidRequest(f"--attention {choice} needs a CUDA GPU here; use --attention sdpa")
    if options.compile:
        if not on_cuda(options.device):
            raise InvalidRequest("--compile needs a CUDA GPU here")
        if not package_installed("triton"):
            raise InvalidRequest("--compile needs triton (it comes with torch's CUDA builds): pip install triton")


def denoisers(pipe) -> list:
    """The pipeline's denoiser modules (both experts of a Wan 2.2 A14B)."""
    from engine.accel.quantize_diffusers import denoiser_names

    return [getattr(pipe, name) for name in denoiser_names(pipe) if getattr(pipe, name, None) is not None]


def dispatches_attention(denoiser) -> bool:
    """Whether a denoiser's attention goes through diffusers' dispatcher (its processors carry a backend)."""
    return any(hasattr(getattr(m, "processor", None), "_attention_backend") for m in denoiser.modules())


def set_attention(denoiser, choice: str) -> None:
    """Pin a denoiser's attention processors to one backend, leaving diffusers' process-wide default as it was
    (another model loaded later in the same engine process keeps its own)."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    before = _AttentionBackendRegistry._active_backend
    try:
        denoiser.set_attention_backend(DIFFUSERS_NAMES[choice])
    except (RuntimeError, ValueError) as exc:  # a package too old, a kernel that cannot load
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidRequest(f"--attention {choice}: {message}") from None
    finally:
        _AttentionBackendRegistry.set_active_backend(before)


def apply_attention(pipe, choice: str) -> None:
    if choice == "auto":
        return
    for den in denoisers(pipe):
        if not dispatches_attention(den):
            if choice == "sdpa":
                continue  # its processors call torch's scaled_dot_product_attention already
            raise InvalidRequest(
                f"--attention {choice}: {type(den).__name__} does not route its attention through diffusers' "
                "attention backends; use --attention auto"
            )
        set_attention(den, choice)


def apply_compile(pipe) -> None:
    for den in denoisers(pipe):
        if not getattr(den, "_repeated_blocks", None):
            raise InvalidRequest(f"--compile: {type(den).__name__} names no repeated blocks to compile")
    for den in denoisers(pipe):
        den.compile_repeated_blocks(mode=COMPILE_MODE)  # each block compiles at its first call


def apply_speed_options(pipe, options: RunOptions, device: str) -> None:
    """Apply --attention and --compile to a loaded, placed pipeline (after engine.backends.diffusers.placement's
    apply_policy, so compilation sees the final hooks)."""
    if options.attention in CUDA_ONLY and not device.startswith("cuda"):
        raise InvalidRequest(f"--attention {options.attention} needs a CUDA GPU here; use --attention sdpa")
    if options.compile and not device.startswith("cuda"):
        raise InvalidRequest("--compile needs a CUDA GPU here")
    apply_attention(pipe, options.attention)
    if options.compile:
        apply_compile(pipe)
