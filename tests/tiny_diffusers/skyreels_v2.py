"""Tiny random-weight SkyReels-V2 diffusion-forcing pipelines (text-to-video and image-to-video), diffusers layout.

Configs follow diffusers' fast tests (tests/pipelines/skyreels_v2/test_skyreels_v2_df*.py) and the layout of the
real Skywork/SkyReels-V2-DF-*-Diffusers folders (scripts/convert_skyreelsv2_to_diffusers.py): a UniPC flow
scheduler (flow_shift 8.0 for t2v, 5.0 for i2v, as diffusers' examples set), and, like DF-1.3B-540P,
``inject_sample_info=True`` (an fps embedding: ``fps=16`` and any other fps give two different conditionings).
The text encoder and tokenizer are the offline tiny UMT5 of t5_tokenizers; nothing is downloaded.

The VAE is Wan 2.1's (8x spatial, 4x temporal), the transformer patch is (1, 2, 2), so one latent token covers
16x16 pixels: height and width must be multiples of 16 (else ValueError); num_frames should be 4k+1 (9 -> 3 latent
frames); other counts are changed, with a warning, to num_frames // 4 * 4 + 1 (8 and 10 -> 9).

The two diffusion-forcing pipelines take the same components (tokenizer, text_encoder, transformer, vae,
scheduler; no image encoder: i2v VAE-encodes the image into the first latent frame, which is then never denoised),
so either folder loads as either class, and as ``SkyReelsV2DiffusionForcingVideoToVideoPipeline``.

Diffusion-forcing call options, with the defaults a user gets:
- ``base_num_frames=97``: the window, in pixel frames, the model denoises at once. num_frames <= base_num_frames
  is one window; num_frames > base_num_frames needs ``overlap_history`` (else ValueError) and runs several windows.
- ``overlap_history=None``: pixel frames each later window re-uses from the previous one (17 or 37 recommended).
- ``ar_step=0``: synchronous, every latent frame at the same timestep, so one transformer pass (two with
  guidance) per inference step. ar_step > 0: each causal block lags the one before by ar_step steps, so a window
  of B blocks takes num_inference_steps + (B - 1) * ar_step passes (and callbacks).
- ``causal_block_size=None``: the transformer's ``num_frame_per_block`` (1 here and in the real configs); a given
  value is written into the transformer's config and stays there for later calls.
- ``addnoise_condition=0``: noise (x 0.001) put on the re-used history frames of later windows; 20 recommended.
"""

from __future__ import annotations

from pathlib import Path

from .t5_tokenizers import T5_D_MODEL

SKYREELS_V2_DF_CALL = {
    "height": 32,
    "width": 32,
    "num_frames": 9,
    "num_inference_steps": 2,
    "guidance_scale": 6.0,
    "max_sequence_length": 16,
    "fps": 24,
}
SKYREELS_V2_DF_I2V_CALL = dict(SKYREELS_V2_DF_CALL, guidance_scale=5.0)  # plus image=<PIL image>, resized

TEXT_DIM = T5_D_MODEL  # the transformer's text input width


def tiny_skyreels_v2_transformer():
    import torch
    from diffusers import SkyReelsV2Transformer3DModel

    torch.manual_seed(0)
    return SkyReelsV2Transformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        inject_sample_info=True,
        num_frame_per_block=1,
    )


def _components(flow_shift: float) -> dict:
    from diffusers import UniPCMultistepScheduler

    from .t5_tokenizers import build_tiny_t5_tokenizer, tiny_t5_encoder
    from .wan import tiny_wan_vae

    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=flow_shift
    )
    return {
        "transformer": tiny_skyreels_v2_transformer(),
        "vae": tiny_wan_vae(),
        "scheduler": scheduler,
        "text_encoder": tiny_t5_encoder(umt5=True),
        "tokenizer": build_tiny_t5_tokenizer(),
    }


def save_tiny_skyreels_v2_df_t2v(folder) -> Path:
    """A tiny ``SkyReelsV2DiffusionForcingPipeline`` saved at folder with safetensors; returns folder."""
    from diffusers import SkyReelsV2DiffusionForcingPipeline

    folder = Path(folder)
    SkyReelsV2DiffusionForcingPipeline(**_components(flow_shift=8.0)).save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_skyreels_v2_df_i2v(folder) -> Path:
    """A tiny ``SkyReelsV2DiffusionForcingImageToVideoPipeline`` saved at folder with safetensors; returns folder."""
    from diffusers import SkyReelsV2DiffusionForcingImageToVideoPipeline

    folder = Path(folder)
    pipe = SkyReelsV2DiffusionForcingImageToVideoPipeline(**_components(flow_shift=5.0))
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
