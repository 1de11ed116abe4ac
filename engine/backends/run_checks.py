"""Which run options (engine.api.run_options) each backend can apply, said in one line before anything loads.

A switch a backend cannot apply is refused here, never silently ignored. One function per backend and switch
group, so the code that applies a switch and the rule that admits it change together.
"""

from __future__ import annotations

from engine.api.errors import InvalidRequest
from engine.api.run_options import RunOptions


def _not_yet(flag: str, where: str) -> InvalidRequest:
    return InvalidRequest(f"{flag}: not available for {where} in this version of Kinemo yet")


def diffusers_cache(options: RunOptions) -> None:
    """Step caches on diffusers denoisers."""
    if options.cache != "off":
        raise _not_yet("--cache", "diffusers models")


def diffusers_speed(options: RunOptions) -> None:
    """Attention backends and regional compilation on diffusers denoisers: the device and packages each needs
    (the rule lives with the code that applies it, engine.backends.diffusers.attention)."""
    from engine.backends.diffusers.attention import check_speed_options

    check_speed_options(options)


def bundled_cache(options: RunOptions) -> None:
    """The bundled model's own step cache."""
    if options.cache != "off":
        raise _not_yet("--cache", "the bundled model")


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
