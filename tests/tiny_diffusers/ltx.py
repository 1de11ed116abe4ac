"""A tiny random-weight LTX-Video pipeline, saved in diffusers layout.

The transformer config follows diffusers' fast test (tests/pipelines/ltx/test_ltx.py). The VAE keeps the real
LTX-Video 0.9.1+ compression (patch_size 4, three spatio-temporal downsamplings: 32x spatially, 8x temporally,
decoder conditioned on a decode timestep), so the real model's size rules hold: height and width multiples of 32,
num_frames 8k+1 (9 -> 2 latent frames; other counts silently give (num_frames - 1) // 8 * 8 + 1 frames: 13 -> 9,
8 -> 1). The text encoder and tokenizer are built here, nothing is downloaded.

Latents inside the pipeline (callback_on_step_end, output_type="latent") are packed: (batch, tokens, channels).

``LTXPipeline`` and ``LTXImageToVideoPipeline`` take the same components, so the folder saved by ``save_tiny_ltx``
loads as either: ``LTXImageToVideoPipeline.from_pretrained(folder)`` (``DiffusionPipeline.from_pretrained`` gives
the ``LTXPipeline`` recorded in model_index.json).
"""

from __future__ import annotations

from pathlib import Path

from .t5_tokenizers import T5_D_MODEL

LTX_CALL = {
    "height": 32,
    "width": 32,
    "num_frames": 9,
    "num_inference_steps": 2,
    "guidance_scale": 3.0,
    "decode_timestep": 0.05,
    "decode_noise_scale": 0.025,
    "max_sequence_length": 16,
}
LTX_I2V_CALL = dict(LTX_CALL)  # plus image=<PIL image>; the image is resized to height x width

TEXT_DIM = T5_D_MODEL  # the transformer's text input width


def tiny_ltx_vae():
    import torch
    from diffusers import AutoencoderKLLTXVideo

    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=True,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return vae


def tiny_ltx_transformer():
    import torch
    from diffusers import LTXVideoTransformer3DModel

    torch.manual_seed(0)
    return LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=TEXT_DIM,
    )


def save_tiny_ltx(folder) -> Path:
    """A tiny LTXPipeline saved at folder with safetensors (also loads as LTXImageToVideoPipeline); returns folder."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, LTXPipeline

    from .t5_tokenizers import build_tiny_t5_tokenizer, tiny_t5_encoder

    folder = Path(folder)
    transformer = tiny_ltx_transformer()
    vae = tiny_ltx_vae()
    torch.manual_seed(0)
    scheduler = FlowMatchEulerDiscreteScheduler()
    pipe = LTXPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        text_encoder=tiny_t5_encoder(),
        tokenizer=build_tiny_t5_tokenizer(),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
