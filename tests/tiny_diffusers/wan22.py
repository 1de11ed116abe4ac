"""Tiny random-weight Wan 2.2 pipelines (TI2V 5B style and A14B two-expert style), saved in diffusers layout.

Configs follow diffusers' own fast tests (tests/pipelines/wan/test_wan_22.py, test_wan_22_image_to_video.py) and
the layout its conversion script gives the real checkpoints (scripts/convert_wan_to_diffusers.py): a UniPC flow
scheduler, ``expand_timesteps=True`` for TI2V 5B, ``boundary_ratio`` 0.875 (t2v) / 0.9 (i2v) for A14B. The text
encoder and tokenizer are the offline tiny UMT5 of t5_tokenizers; nothing is downloaded.

TI2V 5B (``save_tiny_wan22_ti2v``): the Wan 2.2 VAE (z_dim 48, ``is_residual``, pixel patch 2) compresses 16x
spatially and 4x temporally, the transformer patch is (1, 2, 2), so one latent token covers 32x32 pixels.
height and width must be multiples of 16 (else ValueError); one that is a multiple of 16 but not of 32 is changed,
with a warning, to the multiple of 32 below (48 -> 32). num_frames should be 4k+1 (9 -> 3 latent frames); other
counts are changed, with a warning, to num_frames // 4 * 4 + 1 (8 and 10 -> 9). model_index records
``WanPipeline``; the same folder loads as ``WanImageToVideoPipeline`` (``from_pretrained`` or ``from_pipe``), which
then puts the encoded image in the first latent frame (kept at timestep 0) instead of concatenating channels.

A14B (``save_tiny_wan22_a14b_t2v`` / ``_i2v``): the Wan 2.1 VAE (16 channels, 8x spatial, 4x temporal) and two
experts, ``transformer`` for timesteps >= boundary_ratio * 1000 and ``transformer_2`` below; height and width
multiples of 16 (else ValueError), num_frames 4k+1 as above. With 2 steps and flow_shift 3.0 the timesteps are
999 and 750: step 0 runs ``transformer``, step 1 ``transformer_2``. The i2v one has no image encoder: the image
is VAE-encoded and concatenated to the noise (16 + 4 mask + 16 = 36 input channels).

Wan needs accelerate and ftfy (both Kinemo dependencies).
"""

from __future__ import annotations

from pathlib import Path

from .t5_tokenizers import T5_D_MODEL

WAN22_CALL = {
    "height": 32,
    "width": 32,
    "num_frames": 9,
    "num_inference_steps": 2,
    "guidance_scale": 5.0,
    "max_sequence_length": 16,
}
WAN22_TI2V_CALL = dict(WAN22_CALL)  # TI2V 5B: 32 is its smallest size (one 2x2 patch of 16x latents)
WAN22_TI2V_I2V_CALL = dict(WAN22_CALL)  # plus image=<PIL image>, through WanImageToVideoPipeline
WAN22_A14B_CALL = dict(WAN22_CALL, guidance_scale_2=3.0)  # guidance_scale_2: the low-noise expert's scale
WAN22_A14B_I2V_CALL = dict(WAN22_A14B_CALL)  # plus image=<PIL image>; the image is resized to height x width

TEXT_DIM = T5_D_MODEL  # the transformers' text input width
A14B_T2V_BOUNDARY = 0.875  # Wan2.2-T2V-A14B-Diffusers
A14B_I2V_BOUNDARY = 0.9  # Wan2.2-I2V-A14B-Diffusers
TI2V_LATENT_CHANNELS = 48


def tiny_wan22_vae():
    """The Wan 2.2 VAE shape: 48 latent channels, 2x2 pixel patching (12 channels), 16x spatial, 4x temporal."""
    import torch
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=TI2V_LATENT_CHANNELS,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[0.0] * TI2V_LATENT_CHANNELS,
        latents_std=[1.0] * TI2V_LATENT_CHANNELS,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        temperal_downsample=[False, True, True],
    )


def tiny_wan22_transformer(in_channels: int, out_channels: int, seed: int = 0):
    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=in_channels,
        out_channels=out_channels,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )


def _text_and_scheduler(flow_shift: float) -> dict:
    from diffusers import UniPCMultistepScheduler

    from .t5_tokenizers import build_tiny_t5_tokenizer, tiny_t5_encoder

    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=flow_shift
    )
    return {"scheduler": scheduler, "text_encoder": tiny_t5_encoder(umt5=True), "tokenizer": build_tiny_t5_tokenizer()}


def save_tiny_wan22_ti2v(folder) -> Path:
    """A tiny Wan 2.2 TI2V-5B-style ``WanPipeline`` (expand_timesteps) saved at folder; returns folder.

    Loads as ``WanPipeline`` (text-to-video) and as ``WanImageToVideoPipeline`` (image-to-video).
    """
    from diffusers import WanPipeline

    folder = Path(folder)
    pipe = WanPipeline(
        transformer=tiny_wan22_transformer(TI2V_LATENT_CHANNELS, TI2V_LATENT_CHANNELS),
        transformer_2=None,
        vae=tiny_wan22_vae(),
        expand_timesteps=True,
        **_text_and_scheduler(flow_shift=5.0),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_wan22_a14b_t2v(folder) -> Path:
    """A tiny Wan 2.2 T2V-A14B-style ``WanPipeline``: two experts, boundary_ratio 0.875; returns folder."""
    from diffusers import WanPipeline

    from .wan import tiny_wan_vae

    folder = Path(folder)
    pipe = WanPipeline(
        transformer=tiny_wan22_transformer(16, 16, seed=0),
        transformer_2=tiny_wan22_transformer(16, 16, seed=1),
        vae=tiny_wan_vae(),
        boundary_ratio=A14B_T2V_BOUNDARY,
        **_text_and_scheduler(flow_shift=3.0),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_wan22_a14b_i2v(folder) -> Path:
    """A tiny Wan 2.2 I2V-A14B-style ``WanImageToVideoPipeline``: two experts, no image encoder; returns folder."""
    from diffusers import WanImageToVideoPipeline

    from .wan import tiny_wan_vae

    folder = Path(folder)
    pipe = WanImageToVideoPipeline(
        transformer=tiny_wan22_transformer(36, 16, seed=0),
        transformer_2=tiny_wan22_transformer(36, 16, seed=1),
        vae=tiny_wan_vae(),
        image_encoder=None,
        image_processor=None,
        boundary_ratio=A14B_I2V_BOUNDARY,
        **_text_and_scheduler(flow_shift=3.0),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
