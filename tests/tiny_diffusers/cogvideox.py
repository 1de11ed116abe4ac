"""Tiny random-weight CogVideoX 1.0 pipelines (text-to-video and image-to-video), saved in diffusers layout.

Configs follow diffusers' fast tests (tests/pipelines/cogvideo/test_cogvideox.py, test_cogvideox_image2video.py),
with the sample size set to 32x32 pixels (4x4 latents), the text length to the real models' 226 tokens and the
real CogVideoXDDIMScheduler settings. The text encoder and tokenizer are built here, nothing is downloaded.

Rules inherited from the real models: the VAE compresses 8x spatially and 4x temporally, so height and width must be
multiples of 16 (8 for the VAE, 2 for the patch; 40 fails with a RuntimeError inside the transformer), and
num_frames 8k+1 (9 -> 3 latent frames -> 9 frames out; the VAE decodes latent frames in pairs, so other counts come
back changed: 5 and 8 -> 8 frames, 13 -> 16). The prompt must be padded to exactly ``max_sequence_length=226``
(== transformer ``max_text_seq_length``; 16 fails with a RuntimeError), which is the pipelines' default. The i2v
transformer has learned positional embeddings, so like CogVideoX-5b-I2V it only generates its sample size
(32x32 here).
"""

from __future__ import annotations

from pathlib import Path

from .t5_tokenizers import T5_D_MODEL

COGVIDEOX_CALL = {
    "height": 32,
    "width": 32,
    "num_frames": 9,
    "num_inference_steps": 2,
    "guidance_scale": 6.0,
    "max_sequence_length": 226,
}
COGVIDEOX_I2V_CALL = dict(COGVIDEOX_CALL)  # plus image=<PIL image>; only 32x32 works (learned positions)

TEXT_DIM = T5_D_MODEL  # the transformer's text input width
MAX_TEXT_SEQ_LENGTH = 226  # == the pipelines' default max_sequence_length, as in the real models
SAMPLE_SIZE = 32  # pixels; the transformer's sample_height/width are this // 8


def tiny_cogvideox_vae():
    import torch
    from diffusers import AutoencoderKLCogVideoX

    torch.manual_seed(0)
    return AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )


def tiny_cogvideox_transformer(*, image_to_video: bool = False):
    import torch
    from diffusers import CogVideoXTransformer3DModel

    if image_to_video:
        # attention_head_dim must be divisible by 16 for the 3D RoPE; in_channels = noise + image latents
        extra = {
            "num_attention_heads": 2,
            "attention_head_dim": 16,
            "in_channels": 8,
            "use_rotary_positional_embeddings": True,
            "use_learned_positional_embeddings": True,
        }
    else:
        extra = {"num_attention_heads": 4, "attention_head_dim": 8, "in_channels": 4}
    torch.manual_seed(0)
    return CogVideoXTransformer3DModel(
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=TEXT_DIM,
        num_layers=1,
        sample_width=SAMPLE_SIZE // 8,
        sample_height=SAMPLE_SIZE // 8,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=MAX_TEXT_SEQ_LENGTH,
        **extra,
    )


def tiny_cogvideox_scheduler():
    """CogVideoXDDIMScheduler configured like THUDM/CogVideoX-2b's."""
    import torch
    from diffusers import CogVideoXDDIMScheduler

    torch.manual_seed(0)
    return CogVideoXDDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        set_alpha_to_one=True,
        snr_shift_scale=3.0,
        timestep_spacing="trailing",
    )


def _save(pipeline_class, folder, *, image_to_video: bool) -> Path:
    from .t5_tokenizers import build_tiny_t5_tokenizer, tiny_t5_encoder

    folder = Path(folder)
    pipe = pipeline_class(
        transformer=tiny_cogvideox_transformer(image_to_video=image_to_video),
        vae=tiny_cogvideox_vae(),
        scheduler=tiny_cogvideox_scheduler(),
        text_encoder=tiny_t5_encoder(),
        tokenizer=build_tiny_t5_tokenizer(),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_cogvideox_t2v(folder) -> Path:
    """A tiny CogVideoXPipeline saved at folder with safetensors; returns folder."""
    from diffusers import CogVideoXPipeline

    return _save(CogVideoXPipeline, folder, image_to_video=False)


def save_tiny_cogvideox_i2v(folder) -> Path:
    """A tiny CogVideoXImageToVideoPipeline saved at folder with safetensors; returns folder."""
    from diffusers import CogVideoXImageToVideoPipeline

    return _save(CogVideoXImageToVideoPipeline, folder, image_to_video=True)
