"""Which run options (engine.api.run_options) each backend can apply, said in one line before anything loads.

A switch a backend cannot apply is refused here, never silently ignored. One function per backend and switch
group, so the code that applies a switch and the rule that admits it change together.
"""

from __future__ import annotations

from engine.api.errors import InvalidRequest
from engine.api.run_options import RunOptions


def _not_yet(flag: str, where: str) -> InvalidRequest:
    return InvalidRequest(f"{flag}: not available for {where} in this version of Kinemo yet")


def diffusers_cache(options: RunOptions, family=None) -> None:
    """Step caches on diffusers denoisers: those the family's denoiser takes (Family.step_caches; "auto" takes its
    measured default, off where it has none). family None: not known yet (a bare hub id before its download)."""
    if options.cache in ("off", "auto") or family is None:
        return
    if options.cache == "mag":
        raise InvalidRequest(
            f"--cache mag: MagCache needs magnitude ratios calibrated for each model and Kinemo has none for "
            f"{family.label} yet; use {' or '.join(family.step_caches) or '--cache off'}"
        )
    if options.cache not in family.step_caches:
        takes = f"takes {', '.join(family.step_caches)}" if family.step_caches else "takes no step cache"
        raise InvalidRequest(f"--cache {options.cache}: {family.label}'s denoiser {takes} (or off, auto)")


def diffusers_speed(options: RunOptions) -> None:
    """Attention backends and regional compilation on diffusers denoisers: the device and packages each needs
    (the rule lives with the code that applies it, engine.backends.diffusers.attention)."""
    from engine.backends.diffusers.attention import check_speed_options

    if options.onnx_denoiser:
        raise InvalidRequest(
            "--onnx runs the bundled Kinemo models' whole step in onnxruntime; for a diffusers model use "
            "--onnx-temporal (AnimateDiff's motion modules) or leave it off"
        )
    check_speed_options(options)


BUNDLED_CACHES = ("off", "auto", "first-block")  # engine.caches.bundled_step_cache


def bundled_cache(options: RunOptions, rolling: bool = False) -> None:
    """The bundled model's own step cache (engine.caches.bundled_step_cache). rolling: the request runs rolling
    windows (a clip longer than the model's window, an extension), whose temporal K/V cache a skipped block would
    leave without its keys and values."""
    if options.cache not in BUNDLED_CACHES:
        raise InvalidRequest(
            f"{_not_yet('--cache ' + options.cache, 'the bundled model')}: it takes {', '.join(BUNDLED_CACHES)} "
            "(its own first-block cache); the others apply to diffusers models"
        )
    if rolling and options.cache != "off":
        raise InvalidRequest(
            f"--cache {options.cache}: the bundled model's step cache covers clips its window holds "
            "(16 frames or fewer), not longer clips or extensions; use --cache off for them"
        )


def bundled_speed(options: RunOptions) -> None:
    """Attention backends and compilation on the bundled model. Its attention is torch's scaled_dot_product_attention
    (so auto and sdpa are what it runs); diffusers' other backends do not reach it. Compiling its blocks on the
    CPU is measured in the README ("Attention backends and compilation")."""
    if options.attention not in ("auto", "sdpa"):
        raise InvalidRequest(
            f"{_not_yet('--attention ' + options.attention, 'the bundled model')}: it runs torch's "
            "scaled_dot_product_attention (auto, sdpa); the others apply to diffusers models on CUDA"
        )
    if options.compile:
        raise InvalidRequest(f"{_not_yet('--compile', 'the bundled model')}: it applies to diffusers models on CUDA")
    if options.onnx_denoiser:
        bundled_onnx(options)


def bundled_onnx(options: RunOptions) -> None:
    """--onnx runs the bundled model's whole step as one fp32 graph on the CPU (engine.accel.onnx_denoiser): the
    hooks of the step cache and int8's quantised layers live inside the torch model the graph replaces."""
    if options.cache != "off":
        raise InvalidRequest(
            f"--onnx runs each step whole in one graph, which the step cache cannot skip parts of; "
            f"use --onnx or --cache {options.cache}, not both"
        )
    if options.quantize:
        raise InvalidRequest("--onnx runs fp32 weights in onnxruntime; use --onnx or --quantize int8, not both")
    if options.device.lower().startswith(("cuda", "mps")):
        raise InvalidRequest(
            f"--onnx speeds up the bundled model on the CPU; on {options.device} torch runs it, so leave --onnx off"
        )
