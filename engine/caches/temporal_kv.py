"""A rolling temporal K/V cache: clips longer than the model's window, at flat memory.

A long clip is made window by window. The first window makes `window` frames; every later window
makes only the frames that come next, and its temporal attention also reads the keys and values
of frames already made, a few anchors from the start of the clip and the most recent ones,
instead of running those frames through the model again. Keys and values are kept per denoising
step and per block, so a new frame at step j sees its context exactly as the context frames were
at step j, at the same noise level, as in one joint window. Only anchors + recent frames are ever
kept, so memory does not grow with the clip's length.

Keys are kept before rotary position embedding and rotated at use, with each frame's position in
the current window, so relative distances stay within what the model was trained on. A frame that
leaves the context is dropped as soon as each (step, block) has used it for the last time, so the
cache holds exactly anchors + recent frames per (step, block), in one preallocated pair of tensors
each (optionally float16).

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

from engine.kinemo.temporal_attention import TemporalAttention, apply_rotary, rotary_tables
from engine.util.patching import patched


def window_position(frame: int, frames: int, window: int) -> float:
    """Where frame `frame` of a long clip sits in the model's window: the clip spans one window's move."""
    return (window - 1) * frame / max(1, frames - 1)


def plan_windows(frames: int, window: int, anchors: int, recent: int) -> list[list[int]]:
    """Frame ids each window makes: a whole first window, then window - anchors - recent new ones each."""
    fresh = window - anchors - recent
    if fresh < 1:
        raise ValueError(
            f"a window of {window} frames leaves no room for new frames after {anchors} + {recent} context frames"
        )
    plan = [list(range(min(window, frames)))]
    for start in range(window, frames, fresh):
        plan.append(list(range(start, min(start + fresh, frames))))
    return plan


class SlotStore:
    """Raw keys and values of up to `capacity` frames for one (step, block), in one preallocated pair
    of tensors: (capacity, n, heads, head_dim) each. One allocation per pair, reused window after
    window, so the cache costs its size and nothing more (thousands of small tensors would not)."""

    def __init__(self, capacity: int, like: torch.Tensor, dtype: torch.dtype):
        n, h, e = like.shape
        self.k = torch.empty(capacity, n, h, e, dtype=dtype, device=like.device)
        self.v = torch.empty_like(self.k)
        self.slots: dict[int, int] = {}  # frame id -> slot

    def put(self, fid: int, k: torch.Tensor, v: torch.Tensor) -> None:
        slot = self.slots.get(fid)
        if slot is None:
            free = sorted(set(range(len(self.k))) - set(self.slots.values()))
            if not free:
                raise RuntimeError("the temporal K/V cache is full")
            slot = self.slots[fid] = free[0]
        self.k[slot].copy_(k)
        self.v[slot].copy_(v)

    def gather(self, fids: list[int], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of fids as (n, heads, len(fids), head_dim)."""
        index = torch.tensor([self.slots[fid] for fid in fids], device=self.k.device)
        pick = lambda t: t.index_select(0, index).to(dtype).permute(1, 2, 0, 3)  # noqa: E731
        return pick(self.k), pick(self.v)

    def drop_all_but(self, keep: set[int]) -> None:
        for fid in [fid for fid in self.slots if fid not in keep]:
            del self.slots[fid]

    @property
    def nbytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()


class RollingTemporalKV:
    def __init__(self, anchors: int = 2, recent: int = 6, store_dtype: torch.dtype | None = None):
        self.anchors, self.recent = anchors, recent
        self.store_dtype = store_dtype  # e.g. torch.float16 halves the cache; None keeps the model's dtype
        self.step = 0
        self.frame_ids: list[int] = []  # global ids of the frames the current window makes
        self.positions: dict[int, float] = {}  # global id -> window position, for new and context frames
        self.context_ids: list[int] = []  # frames whose keys/values the current window reads
        self.kept: dict[tuple[int, int], SlotStore] = {}  # (step, block) -> raw k, v of anchors + recent frames
        self.peak_bytes = 0  # the most the cache held at the end of any window

    # -- window bookkeeping -------------------------------------------------------------------------
    def begin_window(self, frame_ids: list[int], positions: dict[int, float]) -> None:
        """Start a window that makes frame_ids; positions gives every frame's place in this window."""
        self.frame_ids = list(frame_ids)
        self.context_ids = sorted({fid for store in self.kept.values() for fid in store.slots})
        missing = [fid for fid in self.context_ids + self.frame_ids if fid not in positions]
        if missing:
            raise ValueError(f"no window position for frames {missing}")
        self.positions = dict(positions)

    def keep_ids(self) -> set[int]:
        """Of all frames made so far and in this window: the anchors and the most recent ones."""
        made = sorted(set(self.context_ids) | set(self.frame_ids))
        return set(made[: self.anchors]) | set(made[len(made) - self.recent :] if self.recent else [])

    def store(self, block: int, like: torch.Tensor) -> SlotStore:
        key = (self.step, block)
        if key not in self.kept:
            self.kept[key] = SlotStore(self.anchors + self.recent, like, self.store_dtype or like.dtype)
        return self.kept[key]

    def end_window(self) -> None:
        """Forget the frames the next window will not read."""
        self.peak_bytes = max(self.peak_bytes, self.nbytes())
        keep = self.keep_ids()
        for store in self.kept.values():
            store.drop_all_but(keep)

    def nbytes(self) -> int:
        return sum(store.nbytes for store in self.kept.values())

    # -- attaching -------------------------------------------------------------------------------
    @contextmanager
    def attached(self, model):
        """Route every block's temporal attention through the cache while the block is open."""
        stand_ins = [
            (block, "temporal", ContextualTemporalAttention(block.temporal, self, index))
            for index, block in enumerate(model.blocks)
        ]
        try:
            with patched(stand_ins):
                yield self
        finally:
            self.kept.clear()


class ContextualTemporalAttention(nn.Module):
    """TemporalAttention whose keys/values also come from cached context frames: (n, f, d) -> (n, f, d)."""

    def __init__(self, inner: TemporalAttention, cache: RollingTemporalKV, block: int):
        super().__init__()
        self.inner, self.cache, self.block = inner, cache, block

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        cache, inner = self.cache, self.inner
        q, k, v = rearrange(inner.to_qkv(x), "n f (three h e) -> three n h f e", three=3, h=inner.heads)
        store = cache.store(self.block, k[:, :, 0])

        # 1. context frames first, then the new ones, each rotated to its place in this window
        context = [fid for fid in cache.context_ids if fid in store.slots and fid not in cache.frame_ids]
        new_k, new_v = k, v
        if context:
            context_k, context_v = store.gather(context, k.dtype)
            k, v = torch.cat([context_k, k], dim=2), torch.cat([context_v, v], dim=2)
        ids = context + cache.frame_ids
        key_positions = torch.tensor([cache.positions[fid] for fid in ids], dtype=torch.float32, device=x.device)
        cos, sin = rotary_tables(key_positions, inner.head_dim)
        k = apply_rotary(k, cos, sin)
        q = apply_rotary(q, cos[len(context) :], sin[len(context) :])
        out = F.scaled_dot_product_attention(q, k, v)  # (n, h, f_new, e)

        # 2. this step of this block is done with frames later windows will not read; keep the new
        #    frames they will read, in the slots just freed
        wanted = cache.keep_ids()
        store.drop_all_but(wanted)
        for slot, fid in enumerate(cache.frame_ids):
            if fid in wanted:
                store.put(fid, new_k[:, :, slot], new_v[:, :, slot])
        return inner.to_out(rearrange(out, "n h f e -> n f (h e)"))
