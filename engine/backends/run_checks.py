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
    """Attention backends and regional compilation on diffusers denoisers."""
    if options.attention != "auto":
        raise _not_yet("--attention", "diffusers models")
    if options.compile:
        raise _not_yet("--compile", "diffusers models")


def bundled_cache(options: RunOptions) -> None:
    """The bundled model's own step cache."""
    if options.cache != "off":
        raise _not_yet("--cache", "the bundled model")


def bundled_speed(options: RunOptions) -> None:
    """Attention backends and compilation on the bundled model."""
    if options.attention != "auto":
        raise _not_yet("--attention", "the bundled model")
    if options.compile:
        raise _not_yet("--compile", "the bundled model")
