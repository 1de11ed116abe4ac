"""The bundled model's step cache: skips at a loose threshold, exact at 0, gone after the run, refused where wrong."""

import numpy as np
import pytest

from engine.api.errors import Cancelled, InvalidRequest
from engine.api.events import Finished, Frames, Preview, Progress
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.bundled import BundledBackend
from engine.caches import bundled_step_cache
from engine.caches.bundled_step_cache import BlockStepCache

PROMPT = "a red circle moves right on a black background"


@pytest.fixture(scope="module")
def deep_model_dir(tmp_path_factory):
    """A tiny KinemoDiT with three blocks: one block leaves nothing to skip."""
    import torch

    from engine.kinemo.files import save_model
    from engine.kinemo.model import KinemoConfig, KinemoDiT

    torch.manual_seed(0)
    model = KinemoDiT(KinemoConfig(dim=16, depth=3, heads=2, text_dim=16, text_depth=1))
    for p in model.parameters():  # zero-initialised output layers would make every clip flat
        torch.nn.init.normal_(p, std=0.05)
    folder = tmp_path_factory.mktemp("deep") / "model"
    save_model(model, folder)
    return folder


def _run(folder, cache: str = "off", threshold: float | None = None, guidance: float = 1.0, backend=None, **kw):
    backend = backend or BundledBackend(folder, options=RunOptions(cache=cache), camera_folder=None)
    if threshold is not None:
        backend.options = RunOptions(cache="first-block")
        kw_threshold = dict(bundled_step_cache.THRESHOLDS)
        bundled_step_cache.THRESHOLDS["first-block"] = threshold
    try:
        request = GenerationRequest(PROMPT, steps=6, guidance=guidance, seed=3, **kw)
        events = list(backend.generate(request))
    finally:
        if threshold is not None:
            bundled_step_cache.THRESHOLDS.update(kw_threshold)
    frames = next(e.frames for e in events if isinstance(e, Frames))
    stats = next(e.stats for e in events if isinstance(e, Finished))
    return frames, stats, events, backend


@pytest.mark.parametrize("guidance", [1.0, 4.0], ids=["prompt", "guided"])
def test_a_loose_threshold_skips_blocks(deep_model_dir, guidance):
    frames, stats, _, _ = _run(deep_model_dir, threshold=10.0, guidance=guidance)
    assert stats["step_cache_steps_skipped"] > 0 and stats["step_cache_blocks_skipped"] > 0
    # the first step has nothing to reuse; every later one reuses it at this threshold
    assert stats["step_cache_steps_computed"] == 1 and stats["step_cache_steps_skipped"] == 5
    assert stats["step_cache_blocks_skipped"] == 5 * 2
    plain, _, _, _ = _run(deep_model_dir, guidance=guidance)
    assert frames.shape == plain.shape and not np.array_equal(frames, plain)


def test_threshold_zero_is_exact(deep_model_dir):
    cached, stats, _, _ = _run(deep_model_dir, threshold=0.0)
    plain, plain_stats, _, _ = _run(deep_model_dir)
    assert np.array_equal(cached, plain)
    assert stats["step_cache_steps_skipped"] == 0 and stats["step_cache_steps_computed"] == 6
    assert "step_cache_steps_skipped" not in plain_stats


def test_progress_and_previews_per_step_unchanged(deep_model_dir):
    _, _, cached, _ = _run(deep_model_dir, threshold=10.0)
    _, _, plain, _ = _run(deep_model_dir)
    kinds = lambda events: [(type(e).__name__, getattr(e, "step", None)) for e in events]  # noqa: E731
    assert kinds(cached) == kinds(plain)
    assert sum(isinstance(e, Progress) for e in cached) == 6 and sum(isinstance(e, Preview) for e in cached) == 6


def test_cancel_stops_and_detaches(deep_model_dir):
    backend = BundledBackend(deep_model_dir, options=RunOptions(cache="first-block"), camera_folder=None)
    steps = []

    def stop():
        steps.append(1)
        return len(steps) >= 2

    with pytest.raises(Cancelled):
        list(backend.generate(GenerationRequest(PROMPT, steps=6, seed=3), should_stop=stop))
    assert len(steps) == 2
    assert all("forward" not in vars(block) for block in backend.model.blocks)


def test_the_cache_is_gone_after_the_run(deep_model_dir):
    _, _, _, backend = _run(deep_model_dir, threshold=10.0)
    assert all("forward" not in vars(block) for block in backend.model.blocks)
    backend.options = RunOptions()
    after, stats, _, _ = _run(deep_model_dir, backend=backend)
    fresh, _, _, _ = _run(deep_model_dir)
    assert np.array_equal(after, fresh) and "step_cache_steps_skipped" not in stats


def test_auto_and_first_block_are_taken(deep_model_dir):
    for choice in ("auto", "first-block"):
        _, stats, _, _ = _run(deep_model_dir, cache=choice)
        assert stats["step_cache_threshold"] == bundled_step_cache.THRESHOLDS[choice]


@pytest.mark.parametrize("choice", ["mag", "taylorseer", "faster", "pab"])
def test_other_caches_are_refused_in_one_line(deep_model_dir, choice):
    with pytest.raises(InvalidRequest) as refused:
        BundledBackend(deep_model_dir, options=RunOptions(cache=choice))
    assert "off, auto, first-block" in str(refused.value) and "\n" not in str(refused.value)


def test_long_clips_are_refused_in_one_line(deep_model_dir):
    backend = BundledBackend(deep_model_dir, options=RunOptions(cache="auto"), camera_folder=None)
    with pytest.raises(InvalidRequest) as refused:
        list(backend.generate(GenerationRequest(PROMPT, frames=40, steps=2)))
    assert "longer clips" in str(refused.value) and "\n" not in str(refused.value)
    assert backend.model is None  # refused before any work


def test_each_prompt_of_a_changing_prompt_keeps_its_own_residuals():
    import torch

    from engine.kinemo.model import KinemoConfig, KinemoDiT

    torch.manual_seed(0)
    model = KinemoDiT(KinemoConfig(dim=16, depth=2, heads=2, text_dim=16, text_depth=1)).eval()
    conds = [model.encode(torch.tensor([[i + 1, 2, 3]])) for i in range(2)]
    x = torch.randn(1, 3, 4, 64, 64)
    cache = BlockStepCache(threshold=10.0)
    with torch.inference_mode(), cache.attached(model):
        for t in (900, 800):
            for cond in conds:
                model(x, torch.tensor([t]), cond)
    assert len(cache.kept) == 0  # cleared when the block closes
    assert cache.steps_computed == 2 and cache.steps_skipped == 2  # each prompt computed once, then reused
