"""Exact reuse of the conditioning's cross-attention keys and values (the bundled model).

The prompt (and negative prompt) are the same at every denoising step, so the keys and values the
cross-attention layers project from them are too. This cache computes them once per generation
and hands the same tensors to every later step. Cross-attention in the bundled model attends from
all frames' tokens at once, (b, f * s) queries against (b, l) keys, so nothing is repeated per
frame in the first place.
"""

from __future__ import annotations

from contextlib import contextmanager

from engine.util.patching import patched


class _CachedContextKV:
    """Stands in for CrossAttention.context_kv: projects a conditioning tensor once, then reuses it."""

    def __init__(self, project):
        self.project = project
        self.context = None  # the conditioning tensor the cached keys/values belong to
        self.kv = None

    def __call__(self, context):
        if context is not self.context:  # a new conditioning (a new generation): project it
            self.context, self.kv = context, self.project(context)
        return self.kv


@contextmanager
def conditioning_kv_cache(model, enabled: bool = True):
    """Within the block, every cross-attention layer of model reuses its conditioning K/V."""
    layers = [block.cross for block in model.blocks] if enabled else []
    with patched((layer, "context_kv", _CachedContextKV(layer.context_kv)) for layer in layers):
        yield  # afterwards the class's method again; the cached tensors go with the stand-ins
