"""The bundled model's own step cache: skip the later blocks while the first block's work barely changes.

First Block Cache (ParaAttention; diffusers' FirstBlockCacheConfig) for engine.kinemo.model.KinemoDiT. At every
denoising step the first block runs. Its residual (output - input) is compared with the one of the last step
that ran every block; when the mean absolute change relative to that residual is below the threshold, the
remaining blocks are not run and the residual they added at that step (their output - the first block's output)
is added instead. Otherwise every block runs and both residuals are kept for the steps after.

The decision covers the whole batch at once, so classifier-free guidance's prompt and negative go through
together. A clip whose prompt changes calls the model once per prompt and step: each conditioning keeps its own
residuals. Nothing is kept past the run: the stand-ins and their tensors go when the block closes.

    cache = BlockStepCache(threshold=0.2)
    with cache.attached(model):
        ...sample...
    cache.stats()   # steps and blocks computed and skipped

The rolling temporal K/V cache of long clips (engine.caches.temporal_kv) records each block's keys and values at
every step; a skipped block records none, so a long clip's later windows would miss context. The cache is
refused for long clips (engine.backends.run_checks.bundled_cache) rather than run wrong.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from engine.util.patching import patched

# what each choice of --cache means for the bundled model, from bench/bench_bundled_cache.py (25 steps, held-out
# clips; README, "The fast path"): 0.2 skips about half the steps (about 1.4x per clip), every evaluation figure
# within 0.2 points; 0.27 skips 62-63 % (1.57-1.65x), figures within 0.5 points on 10 clips and within 1.0 point on
# 18 others (0.25 and 0.3 each moved temporal consistency by 2.1 points on the 10: one clip moves it that much)
AUTO_THRESHOLD = 0.2
FIRST_BLOCK_THRESHOLD = 0.27
THRESHOLDS = {"first-block": FIRST_BLOCK_THRESHOLD, "auto": AUTO_THRESHOLD}


@dataclass
class _Kept:
    first_residual: torch.Tensor  # (b, f, s, d): the first block's output - its input, at the last full step
    rest_residual: torch.Tensor  # (b, f, s, d): what the remaining blocks added at that step


class BlockStepCache:
    def __init__(self, threshold: float):
        if threshold < 0:
            raise ValueError(f"a step cache threshold is 0 or more, got {threshold}")
        self.threshold = threshold
        self.blocks = 0
        self.steps_computed = self.steps_skipped = 0
        self.kept: dict[int, _Kept] = {}  # id of the conditioning -> its residuals
        # the step under way, between the first block and the last
        self.key = 0
        self.first: torch.Tensor | None = None  # (b, f, s, d): the first block's output
        self.first_residual: torch.Tensor | None = None  # (b, f, s, d)
        self.skipping: _Kept | None = None  # what the last block adds when the step is skipped

    def stats(self) -> dict:
        computed, skipped = self.steps_computed, self.steps_skipped
        return {
            "step_cache_threshold": self.threshold,
            "step_cache_steps_computed": computed,
            "step_cache_steps_skipped": skipped,
            "step_cache_blocks_computed": computed * self.blocks + skipped,  # a skipped step still runs block 0
            "step_cache_blocks_skipped": skipped * (self.blocks - 1),
        }

    def reusable(self, key: int, first_residual: torch.Tensor) -> _Kept | None:
        """The kept residuals when the first block's residual changed less than the threshold since they were kept."""
        kept = self.kept.get(key)
        if kept is None or kept.first_residual.shape != first_residual.shape:
            return None
        change = (first_residual - kept.first_residual).abs().mean() / kept.first_residual.abs().mean().clamp_min(1e-8)
        return kept if float(change) < self.threshold else None

    @contextmanager
    def attached(self, model):
        """Within the block, model's first block decides per step whether the others run. Each block's forward is
        stood in for, not the block itself, so what else attaches to the blocks (conditioning K/V, ONNX temporal
        attention) finds them as they are, in whatever order it attaches."""
        blocks = list(model.blocks)
        self.blocks = len(blocks)
        stand_ins = [(blocks[0], "forward", _First(blocks[0].forward, self))]
        stand_ins += [(block, "forward", _Later(block.forward, self)) for block in blocks[1:-1]]
        if len(blocks) > 1:
            stand_ins.append((blocks[-1], "forward", _Later(blocks[-1].forward, self, last=True)))
        try:
            with patched(stand_ins):
                yield self
        finally:
            self.kept.clear()
            self.skipping = None


class _First:
    """Stands in for the first block's forward: runs it, then decides for the step; x (b, f, s, d) -> (b, f, s, d)."""

    def __init__(self, forward, cache: BlockStepCache):
        self.forward, self.cache = forward, cache

    def __call__(self, x: torch.Tensor, c: torch.Tensor, cond, positions: torch.Tensor) -> torch.Tensor:
        cache = self.cache
        first = self.forward(x, c, cond, positions)
        cache.key, cache.first, cache.first_residual = id(cond), first, first - x
        cache.skipping = cache.reusable(cache.key, cache.first_residual)
        if cache.skipping is not None:
            cache.steps_skipped += 1
        elif cache.blocks == 1:  # nothing after it to skip
            cache.steps_computed += 1
        return first


class _Later:
    """Stands in for a later block's forward: passes x through on a skipped step (the last block adds the kept
    residual), runs the block otherwise (the last one keeps what the later blocks added)."""

    def __init__(self, forward, cache: BlockStepCache, last: bool = False):
        self.forward, self.cache, self.last = forward, cache, last

    def __call__(self, x: torch.Tensor, c: torch.Tensor, cond, positions: torch.Tensor) -> torch.Tensor:
        cache = self.cache
        if cache.skipping is not None:
            return x + cache.skipping.rest_residual if self.last else x
        out = self.forward(x, c, cond, positions)
        if self.last:
            cache.kept[cache.key] = _Kept(cache.first_residual, out - cache.first)
            cache.steps_computed += 1
            cache.first = cache.first_residual = None
        return out


def step_cache_for(choice: str) -> BlockStepCache | None:
    """The cache a --cache choice asks of the bundled model (engine.backends.run_checks admits the choice)."""
    threshold = THRESHOLDS.get(choice)
    return None if threshold is None else BlockStepCache(threshold)
