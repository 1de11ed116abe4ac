"""Fused attention for the exported denoiser: onnxruntime's MultiHeadAttention in place of the decomposed kind.

torch.onnx exports scaled_dot_product_attention as its parts (MatMul, Softmax, MatMul), and the model's
`rearrange`s splitting heads as Transposes around them: on the CPU those copies were 13 % of a step. ORT's
contrib MultiHeadAttention takes q, k and v as (n, s, heads * e) and does the split, the scaling, the mask and
the softmax inside one kernel, so the graph keeps tokens in their own layout. Nothing in ONNX's own opsets (up
to 22) exports to it, hence the three steps here, each applied only while exporting:

1. a torch custom op, kinemo::mha, computing what the attention modules compute (SDPA), which the exporter
   sees as one node;
2. its translation to com.microsoft.MultiHeadAttention (onnxscript needs the op's schema: ORT's contrib ops
   have none in onnx's registry, so the part Kinemo uses is registered once);
3. stand-in forwards for the bundled model's spatial, temporal and cross attention that call kinemo::mha
   (the temporal one applies RoPE in the (n, f, h, e) layout, without moving heads in front of frames).

    with patched(attention_stand_ins(model)):
        torch.onnx.export(..., custom_translation_table=translation_table())
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from einops import rearrange

from engine.kinemo.temporal_attention import rotary_tables

DOMAIN = "com.microsoft"


@functools.cache
def mha_op():
    """kinemo::mha(q (n, s, h*e), k (n, l, h*e), v (n, l, h*e), mask (n, l) bool or None, heads) -> (n, s, h*e);
    defined on first use, so importing this module registers nothing."""

    @torch.library.custom_op("kinemo::mha", mutates_args=())
    def mha(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, heads: int) -> torch.Tensor:
        qh, kh, vh = (rearrange(t, "n s (h e) -> n h s e", h=heads) for t in (q, k, v))
        keep = None if mask is None else mask[:, None, None, :]
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=keep)
        return rearrange(out, "n h s e -> n s (h e)")

    @mha.register_fake
    def _(q, k, v, mask, heads):
        return torch.empty_like(q)

    return torch.ops.kinemo.mha.default


@functools.cache
def _register_schema() -> None:
    """The inputs of com.microsoft.MultiHeadAttention that Kinemo uses, in onnx's schema registry."""
    import onnx
    from onnx.defs import OpSchema

    if onnx.defs.has(op_type="MultiHeadAttention", domain=DOMAIN):
        return
    param, optional = OpSchema.FormalParameter, OpSchema.FormalParameterOption.Optional
    onnx.defs.register_schema(
        OpSchema(
            "MultiHeadAttention",
            DOMAIN,
            1,
            inputs=[
                param("query", "T"),
                param("key", "T", param_option=optional),
                param("value", "T", param_option=optional),
                param("bias", "T", param_option=optional),
                param("key_padding_mask", "M", param_option=optional),
            ],
            outputs=[param("output", "T")],
            type_constraints=[("T", ["tensor(float)"], ""), ("M", ["tensor(int32)"], "")],
            attributes=[OpSchema.Attribute("num_heads", OpSchema.AttrType.INT, "attention heads")],
        )
    )


def translation_table() -> dict:
    """torch.onnx.export's custom_translation_table entry: kinemo::mha -> com.microsoft.MultiHeadAttention."""
    import onnxscript
    from onnxscript import opset18 as op

    _register_schema()
    contrib = onnxscript.values.Opset(DOMAIN, 1)

    def mha(q, k, v, mask, heads: int):
        if mask is None:
            return contrib.MultiHeadAttention(q, k, v, num_heads=heads)
        keep = op.Cast(mask, to=onnxscript.INT32.dtype)  # 1 for a key to attend to
        return contrib.MultiHeadAttention(q, k, v, None, keep, num_heads=heads)

    return {mha_op(): mha}


def _spatial(module):
    def forward(x: torch.Tensor) -> torch.Tensor:  # (n, s, d)
        q, k, v = module.to_qkv(x).chunk(3, dim=-1)
        return module.to_out(mha_op()(q, k, v, None, module.heads))

    return forward


def _temporal(module):
    def rotate(t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        t = rearrange(t, "n f (h e) -> n f h e", h=module.heads)
        t1, t2 = t.chunk(2, dim=-1)
        t = t * cos[:, None] + torch.cat([-t2, t1], dim=-1) * sin[:, None]  # cos, sin: (f, e) -> (f, 1, e)
        return rearrange(t, "n f h e -> n f (h e)")

    def forward(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:  # (n, f, d), (f,)
        q, k, v = module.to_qkv(x).chunk(3, dim=-1)
        cos, sin = rotary_tables(positions, module.head_dim)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        return module.to_out(mha_op()(q, k, v, None, module.heads))

    return forward


def _cross(module):
    def forward(x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        q, k, v = module.to_q(x), module.to_k(context), module.to_v(context)  # (b, n, d), (b, l, d), (b, l, d)
        return module.to_out(mha_op()(q, k, v, context_mask, module.heads))

    return forward


def attention_stand_ins(model) -> list[tuple]:
    """(module, "forward", stand-in) for every block's attention, for engine.util.patching.patched."""
    found = []
    for block in model.blocks:
        found += [
            (block.spatial, "forward", _spatial(block.spatial)),
            (block.temporal, "forward", _temporal(block.temporal)),
            (block.cross, "forward", _cross(block.cross)),
        ]
    return found
