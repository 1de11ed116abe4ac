"""Exact reuse of the conditioning K/V in diffusers video UNets (AnimateDiff, Stable Video Diffusion).

These UNets run every frame as its own batch row, so their cross-attention sees the conditioning
repeated once per frame: AnimateDiff's pipeline repeats the prompt embeddings num_frames times,
SVD's UNet repeats the image embedding per frame (and per pixel in its temporal blocks). Stock
attention then projects the same keys and values for every copy, at every step.

The processor here projects each distinct conditioning row once per generation, keeps the keys
and values, and lets every frame's queries attend to the one copy, by folding the repeats into the
query length instead of the batch ((B*r, n) queries -> (B, r*n)); nothing is copied or recomputed.
A forward pre-hook on the UNet tells the processors which conditioning a call carries and its true
batch size. Rows that turn out not to be exact repeats fall back to the stock computation.

    processors: attach_conditioning_kv(unet) -> handle; handle.remove() restores the stock ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange


class _Call:
    """What the UNet is being called with: set by the pre-hook, read by every processor."""

    conditioning: torch.Tensor | None = None
    batch: int = 0


class ConditioningKVProcessor:
    """Cross-attention with keys/values projected once per distinct conditioning.

    Supports the plain attention these UNets use (no masks, no spatial or group norm on the
    query side); anything else is passed to the stock processor it replaced.
    """

    def __init__(self, stock, call: _Call):
        self.stock = stock
        self.call = call
        self.key_of = None  # the UNet-level conditioning tensor the cache belongs to
        self.kv = None  # (k, v), each (B, heads, l, head_dim)
        self.repeats = 0
        self.projected_rows = 0  # rows of conditioning projected, for tests and benches

    def _unique_kv(self, attn, context: torch.Tensor, repeats: int):
        if self.key_of is self.call.conditioning and self.repeats == repeats:
            return self.kv
        unique = context[::repeats]  # (B, l, c): repeat_interleave puts copies next to each other
        if not torch.equal(unique.repeat_interleave(repeats, dim=0), context):
            return None
        if attn.norm_cross:
            unique = attn.norm_encoder_hidden_states(unique)
        self.projected_rows += unique.shape[0]
        k = rearrange(attn.to_k(unique), "b l (h d) -> b h l d", h=attn.heads)
        v = rearrange(attn.to_v(unique), "b l (h d) -> b h l d", h=attn.heads)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        self.key_of, self.repeats, self.kv = self.call.conditioning, repeats, (k, v)
        return self.kv

    def __call__(
        self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs
    ):
        plain = (
            encoder_hidden_states is None
            or attention_mask is not None
            or attn.spatial_norm is not None
            or attn.group_norm is not None
            or hidden_states.ndim != 3
            or self.call.batch <= 0
            or encoder_hidden_states.shape[0] % self.call.batch
            or attn.norm_q is not None
        )
        kv = None
        if not plain:
            repeats = encoder_hidden_states.shape[0] // self.call.batch
            kv = self._unique_kv(attn, encoder_hidden_states, repeats)
        if kv is None:
            self.projected_rows += 0 if encoder_hidden_states is None else encoder_hidden_states.shape[0]
            return self.stock(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)

        # queries of all r copies of a conditioning row attend to its one set of keys/values
        residual = hidden_states
        k, v = kv
        q = rearrange(attn.to_q(hidden_states), "(b r) n (h d) -> b h (r n) d", r=repeats, h=attn.heads)
        out = F.scaled_dot_product_attention(q, k, v)
        out = rearrange(out, "b h (r n) d -> (b r) n (h d)", r=repeats).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


class ConditioningKVHandle:
    def __init__(self, unet, stock: dict, processors: list[ConditioningKVProcessor], hook):
        self.unet, self.stock, self.processors, self.hook = unet, stock, processors, hook

    @property
    def projected_rows(self) -> int:
        return sum(p.projected_rows for p in self.processors)

    def remove(self) -> None:
        self.hook.remove()
        self.unet.set_attn_processor(self.stock)
        for p in self.processors:
            p.kv = p.key_of = None


def _conditioning_of(args, kwargs):
    return kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)


def attach_conditioning_kv(unet) -> ConditioningKVHandle:
    """Swap the UNet's cross-attention processors for caching ones; returns a handle to undo it."""
    call = _Call()

    def before_forward(module, args, kwargs):
        sample = kwargs.get("sample", args[0] if args else None)
        call.conditioning = _conditioning_of(args, kwargs)
        call.batch = int(sample.shape[0]) if sample is not None else 0

    stock = dict(unet.attn_processors)
    swapped, processors = {}, []
    for name, processor in stock.items():
        attn = unet.get_submodule(name.rsplit(".processor", 1)[0])
        if getattr(attn, "is_cross_attention", False):
            processor = ConditioningKVProcessor(processor, call)
            processors.append(processor)
        swapped[name] = processor
    unet.set_attn_processor(swapped)
    hook = unet.register_forward_pre_hook(before_forward, with_kwargs=True)
    return ConditioningKVHandle(unet, stock, processors, hook)
