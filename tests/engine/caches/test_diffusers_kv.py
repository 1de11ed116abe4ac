"""Conditioning K/V reuse in diffusers UNets: projected once per generation, output unchanged."""

import numpy as np
import pytest
import torch
from tiny_diffusers.animatediff import save_tiny_animatediff
from tiny_diffusers.direct import gradient_picture
from tiny_diffusers.svd import save_tiny_svd

from engine.caches.diffusers_kv import attach_conditioning_kv

STEPS, FRAMES = 3, 4


def _cross_attention_rows(unet):
    """Count conditioning rows the cross-attention layers project (to_k calls)."""
    rows = []
    for module in unet.modules():
        if getattr(module, "is_cross_attention", False):
            module.to_k.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
    return rows


def _call(pipe, family, image):
    kwargs = dict(
        height=32,
        width=32,
        num_frames=FRAMES,
        num_inference_steps=STEPS,
        output_type="np",
        generator=torch.Generator("cpu").manual_seed(0),
    )
    if family == "svd":
        return pipe(image=image, max_guidance_scale=2.5, decode_chunk_size=FRAMES, **kwargs).frames[0]
    return pipe(prompt="a fox in the snow", guidance_scale=7.5, **kwargs).frames[0]


@pytest.mark.parametrize("family", ["animatediff", "svd"])
def test_projected_once_per_generation_and_identical(family, tmp_path):
    from diffusers import DiffusionPipeline
    from PIL import Image

    folder = (save_tiny_svd if family == "svd" else save_tiny_animatediff)(tmp_path / family)
    image = Image.open(gradient_picture(tmp_path / "p.png")).convert("RGB")
    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    layers = sum(getattr(m, "is_cross_attention", False) for m in pipe.unet.modules())

    rows = _cross_attention_rows(pipe.unet)
    stock = _call(pipe, family, image)
    stock_rows = sum(rows)
    rows.clear()

    handle = attach_conditioning_kv(pipe.unet)
    cached = _call(pipe, family, image)
    cached_rows = sum(rows)
    assert handle.projected_rows == cached_rows
    handle.remove()
    again = _call(pipe, family, image)

    assert np.abs(cached - stock).max() <= 1e-5
    assert np.array_equal(again, stock)  # removing the processors restores the stock path
    # stock: every step projects every copy (2 guidance rows x frames, or x pixels in SVD's temporal
    # blocks); cached: each layer projects its 2 distinct rows once per generation
    assert cached_rows == 2 * layers
    assert stock_rows >= STEPS * 2 * FRAMES * layers
