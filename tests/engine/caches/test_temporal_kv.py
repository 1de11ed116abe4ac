"""The rolling temporal K/V cache for clips longer than the model's window."""

import numpy as np
import pytest
import torch

from engine.api.events import Finished, Frames, Progress
from engine.api.request import GenerationRequest
from engine.backends.bundled import BundledBackend
from engine.caches.temporal_kv import ContextualTemporalAttention, RollingTemporalKV, plan_windows, window_position
from engine.kinemo.temporal_attention import TemporalAttention


def test_cached_context_gives_exactly_what_joint_attention_gives():
    torch.manual_seed(0)
    inner = TemporalAttention(16, 2)
    x = torch.randn(5, 8, 16)  # (n, f, d)
    joint = inner(x, torch.arange(8))

    cache = RollingTemporalKV(anchors=2, recent=2)
    wrapped = ContextualTemporalAttention(inner, cache, block=0)
    positions = {g: float(g) for g in range(8)}
    cache.begin_window([0, 1, 2, 3], positions)
    first = wrapped(x[:, :4])
    cache.end_window()  # keeps anchors 0, 1 and recent 2, 3
    cache.begin_window([4, 5, 6, 7], positions)
    later = wrapped(x[:, 4:])
    assert cache.context_ids == [0, 1, 2, 3]
    assert torch.allclose(later, joint[:, 4:], atol=1e-6)
    assert torch.allclose(first, inner(x[:, :4], torch.arange(4)), atol=1e-6)


def test_only_anchors_and_recent_frames_are_kept():
    cache = RollingTemporalKV(anchors=2, recent=3)
    wrapped = ContextualTemporalAttention(TemporalAttention(8, 2), cache, block=0)
    positions = {g: g / 4 for g in range(40)}
    for ids in plan_windows(40, 8, 2, 3):
        cache.begin_window(ids, positions)
        wrapped(torch.randn(3, len(ids), 8))
        cache.end_window()
        assert sorted(cache.kept[(0, 0)].slots) == [0, 1] + list(range(ids[-1] - 2, ids[-1] + 1))


def test_window_plan_and_positions():
    assert plan_windows(16, 16, 2, 6) == [list(range(16))]
    plan = plan_windows(40, 16, 2, 6)
    assert plan[0] == list(range(16)) and plan[1] == list(range(16, 24)) and plan[-1] == list(range(32, 40))
    assert [window_position(g, 128, 16) for g in (0, 127)] == [0.0, 15.0]
    with pytest.raises(ValueError, match="no room"):
        plan_windows(40, 8, 4, 4)


def _long_clip(folder, frames):
    events = list(
        BundledBackend(folder).generate(GenerationRequest("a red circle moves right", frames=frames, steps=2))
    )
    chunks = [e for e in events if isinstance(e, Frames)]
    return events, chunks, events[-1]


def test_long_clips_stream_window_by_window_at_flat_cache_size(tiny_model_dir):
    events, chunks, finished = _long_clip(tiny_model_dir, 40)
    assert [(c.start, len(c.frames)) for c in chunks] == [(0, 16), (16, 8), (24, 8), (32, 8)]
    assert isinstance(finished, Finished) and finished.frame_count == 40 and finished.stats["windows"] == 4
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.step for p in progress] == list(range(1, 9)) and progress[-1].total == 8
    _, longer, finished_longer = _long_clip(tiny_model_dir, 80)
    assert sum(len(c.frames) for c in longer) == 80
    assert finished_longer.stats["temporal_kv_cache_mb"] == pytest.approx(finished.stats["temporal_kv_cache_mb"])
    clip = np.concatenate([c.frames for c in longer])
    assert clip.shape == (80, 64, 64, 3) and clip.std() > 0


def test_long_clips_are_reproducible_and_the_model_is_left_as_it_was(tiny_model_dir):
    backend = BundledBackend(tiny_model_dir)
    runs = [
        np.concatenate(
            [
                e.frames
                for e in backend.generate(GenerationRequest("a red circle", frames=30, steps=2, seed=4))
                if isinstance(e, Frames)
            ]
        )
        for _ in range(2)
    ]
    assert np.array_equal(*runs)
    assert all(type(block.temporal) is TemporalAttention for block in backend.model.blocks)
