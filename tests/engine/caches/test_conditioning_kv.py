"""The conditioning K/V cache of the bundled model: once per generation, and exact."""

import numpy as np
import pytest

from engine.api.events import Frames
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.bundled import BundledBackend


def _run(folder, kv_cache: bool, guidance: float, steps: int = 4):
    backend = BundledBackend(folder, options=RunOptions(kv_cache=kv_cache))
    backend.load()
    calls = []
    handles = [block.cross.to_k.register_forward_hook(lambda *_: calls.append(1)) for block in backend.model.blocks]
    request = GenerationRequest(
        "a red circle moves right on a black background", steps=steps, guidance=guidance, seed=3
    )
    frames = next(e.frames for e in backend.generate(request) if isinstance(e, Frames))
    for h in handles:
        h.remove()
    return frames, len(calls), len(backend.model.blocks)


@pytest.mark.parametrize("guidance", [1.0, 4.0], ids=["prompt", "guided"])
def test_projected_once_per_generation_and_identical(tiny_model_dir, guidance):
    cached, cached_calls, depth = _run(tiny_model_dir, True, guidance)
    plain, plain_calls, _ = _run(tiny_model_dir, False, guidance)
    assert cached_calls == depth  # once per layer per generation (prompt and negative in one batch)
    assert plain_calls == 4 * depth  # once per layer per step
    assert np.array_equal(cached, plain)


def test_the_cache_is_gone_after_the_run(tiny_model_dir):
    backend = BundledBackend(tiny_model_dir)
    backend.load()
    list(backend.generate(GenerationRequest("a red circle", steps=2)))
    assert all("context_kv" not in vars(block.cross) for block in backend.model.blocks)


def test_a_new_prompt_is_projected_again(tiny_model_dir):
    backend = BundledBackend(tiny_model_dir)
    a = next(e.frames for e in backend.generate(GenerationRequest("a red circle", steps=2)) if isinstance(e, Frames))
    b = next(e.frames for e in backend.generate(GenerationRequest("a blue square", steps=2)) if isinstance(e, Frames))
    fresh = next(
        e.frames
        for e in BundledBackend(tiny_model_dir, options=RunOptions(kv_cache=False)).generate(
            GenerationRequest("a blue square", steps=2)
        )
        if isinstance(e, Frames)
    )
    assert not np.array_equal(a, b) and np.array_equal(b, fresh)
