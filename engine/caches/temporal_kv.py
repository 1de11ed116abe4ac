"""A rolling temporal K/V cache: clips longer than the model's window, at flat memory.

A long clip is made window by window. The first window makes `window` frames; every later window
makes only the frames that come next, and its temporal attention also reads the keys and values
of frames already made, a few anchors from the start of the clip and the most recent ones,
instead of running those frames through the model again. Keys and values are kept per denoising
step and per block, so a new frame at step j sees its context exactly as the context frames were
at step j, at the same noise level, as in one joint window. Only anchors + recent frames are ever
kept, so memory does not grow with the clip's length.

Keys are kept before rotary position embedding and rotated at use, with each frame's position in
the current window, so relative distances stay within what the model was trained on.

    cache = RollingTemporalKV(anchors=2, recent=6)
    with cache.attached(model):
        cache.begin_window(frame_ids, positions)   # the new frames' global ids and window positions
        for each step j: cache.step = j; model(...)  # reads the context, records what to keep
        cache.end_window()
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from engine.models.temporal_attention import TemporalAttention, apply_rotary, rotary_tables


def window_position(frame: int, frames: int, window: int) -> float:
    """Where frame `frame` of a long clip sits in the model's window: the clip spans one window's move."""
    return (window - 1) * frame / max(1, frames - 1)


def plan_windows(frames: int, window: int, anchors: int, recent: int) -> list[list[int]]:
    """Frame ids each window makes: a whole first window, then window - anchors - recent new ones each."""
    fresh = window - anchors - recent
    if fresh < 1:
        raise ValueError(f"a window of {window} frames leaves no room for new frames after {anchors} + {recent} context frames")
    plan = [list(range(min(window, frames)))]
    for start in range(window, frames, fresh):
        plan.append(list(range(start, min(start + fresh, frames))))
    return plan


class RollingTemporalKV:
    def __init__(self, anchors: int = 2, recent: int = 6, store_dtype: torch.dtype | None = None):
        self.anchors, self.recent = anchors, recent
        self.store_dtype = store_dtype  # e.g. torch.float16 halves the cache; None keeps the model's dtype
        self.step = 0
        self.frame_ids: list[int] = []  # global ids of the frames the current window makes
        self.positions: dict[int, float] = {}  # global id -> window position, for new and context frames
        self.context_ids: list[int] = []  # frames whose keys/values the current window reads
        self.kept: dict[tuple[int, int], dict[int, tuple[torch.Tensor, torch.Tensor]]] = {}  # (step, block) -> id -> raw k, v
        self.peak_bytes = 0  # the most the cache held at the end of any window

    # -- window bookkeeping -------------------------------------------------------------------------
    def begin_window(self, frame_ids: list[int], positions: dict[int, float]) -> None:
        """Start a window that makes frame_ids; positions gives every frame's place in this window."""
        self.frame_ids = list(frame_ids)
        self.context_ids = sorted({fid for per_step in self.kept.values() for fid in per_step})
        missing = [fid for fid in self.context_ids + self.frame_ids if fid not in positions]
        if missing:
            raise ValueError(f"no window position for frames {missing}")
        self.positions = dict(positions)

    def keep_ids(self) -> set[int]:
        """Of all frames made so far and in this window: the anchors and the most recent ones."""
        made = sorted(set(self.context_ids) | set(self.frame_ids))
        return set(made[: self.anchors]) | set(made[-self.recent :])

    def end_window(self) -> None:
        """Forget the frames the next window will not read."""
        self.peak_bytes = max(self.peak_bytes, self.nbytes())
        keep = self.keep_ids()
        for per_step in self.kept.values():
            for fid in [fid for fid in per_step if fid not in keep]:
                del per_step[fid]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for per in self.kept.values() for kv in per.values() for t in kv)

    # -- attaching -------------------------------------------------------------------------------
    @contextmanager
    def attached(self, model):
        """Route every block's temporal attention through the cache while the block is open."""
        originals = [block.temporal for block in model.blocks]
        for index, block in enumerate(model.blocks):
            block.temporal = ContextualTemporalAttention(block.temporal, self, index)
        try:
            yield self
        finally:
            for block, original in zip(model.blocks, originals):
                block.temporal = original
            self.kept.clear()


class ContextualTemporalAttention(nn.Module):
    """TemporalAttention whose keys/values also come from cached context frames: (n, f, d) -> (n, f, d)."""

    def __init__(self, inner: TemporalAttention, cache: RollingTemporalKV, block: int):
        super().__init__()
        self.inner, self.cache, self.block = inner, cache, block

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        cache, inner = self.cache, self.inner
        q, k, v = rearrange(inner.to_qkv(x), "n f (three h e) -> three n h f e", three=3, h=inner.heads)

        # 1. keep the raw keys/values of new frames that later windows will read
        kept = cache.kept.setdefault((cache.step, self.block), {})
        wanted = cache.keep_ids()
        for slot, fid in enumerate(cache.frame_ids):
            if fid in wanted:
                pair = (k[:, :, slot], v[:, :, slot])
                kept[fid] = tuple(t.to(cache.store_dtype) if cache.store_dtype else t.clone() for t in pair)

        # 2. context frames first, then the new ones, each rotated to its place in this window
        context = [fid for fid in cache.context_ids if fid in kept and fid not in cache.frame_ids]
        if context:
            k = torch.cat([torch.stack([kept[fid][0] for fid in context], dim=2).to(k.dtype), k], dim=2)
            v = torch.cat([torch.stack([kept[fid][1] for fid in context], dim=2).to(v.dtype), v], dim=2)
        ids = context + cache.frame_ids
        key_positions = torch.tensor([cache.positions[fid] for fid in ids], dtype=torch.float32, device=x.device)
        cos, sin = rotary_tables(key_positions, inner.head_dim)
        k = apply_rotary(k, cos, sin)
        q = apply_rotary(q, cos[len(context) :], sin[len(context) :])
        out = F.scaled_dot_product_attention(q, k, v)  # (n, h, f_new, e)
        return inner.to_out(rearrange(out, "n h f e -> n f (h e)"))
