"""Tiny random-weight AnimateDiff pieces, built from configs like diffusers' own get_dummy_components().

Three layouts, all safetensors:
- save_tiny_animatediff(folder): a whole AnimateDiffPipeline (unet is the UNetMotionModel, plus motion_adapter).
- save_tiny_sd_base(folder): a StableDiffusionPipeline-layout base model (no safety checker, no feature extractor).
- save_tiny_motion_adapter(folder): a MotionAdapter on its own.
The base and the adapter fit each other, as hub models are used:
    adapter = MotionAdapter.from_pretrained(adapter_folder)
    pipe = AnimateDiffPipeline.from_pretrained(base_folder, motion_adapter=adapter)
"""

import tempfile
from pathlib import Path

from .tokenizers import CLIP_BOS_ID, CLIP_EOS_ID, CLIP_MODEL_MAX_LENGTH, CLIP_VOCAB_SIZE, save_tiny_clip_tokenizer

# The UNet's channels, shared by the MotionAdapter (its block_out_channels must match the UNet's).
BLOCK_OUT_CHANNELS = (32, 64)
TEXT_DIM = 32  # CLIP text hidden size == the UNet's cross_attention_dim

# 32x32 pixels -> 4x4 latents (the tiny VAE downsamples by 8, as SD's does) -> 2x2 in the UNet's lower block,
# so height and width must be multiples of 16.
# num_frames may be anything up to the adapter's motion_max_seq_length (32).
ANIMATEDIFF_CALL = dict(height=32, width=32, num_frames=8, num_inference_steps=2, guidance_scale=7.5)


def _tiny_sd_components() -> dict:
    """unet (a plain UNet2DConditionModel), vae, text_encoder, tokenizer, scheduler; seeded, so reproducible."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=BLOCK_OUT_CHANNELS,
        layers_per_block=2,
        sample_size=4,  # the pipeline's default size: 4 latents * 8 = 32 pixels
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        norm_num_groups=2,
    )
    # AnimateDiff's scheduler: SD's betas, linear (not scaled_linear) schedule, no sample clipping.
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="linear",
        clip_sample=False,
        steps_offset=1,
        timestep_spacing="linspace",
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(32, 32, 64, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,  # downsamples by 8, like SD's VAE
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        sample_size=32,
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=CLIP_VOCAB_SIZE,
            bos_token_id=CLIP_BOS_ID,
            eos_token_id=CLIP_EOS_ID,  # pooling takes the first eos position, as with the real CLIP
            pad_token_id=CLIP_EOS_ID,
            hidden_size=TEXT_DIM,
            intermediate_size=37,
            projection_dim=TEXT_DIM,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=CLIP_MODEL_MAX_LENGTH,
        )
    )
    text_encoder.eval()
    with tempfile.TemporaryDirectory() as tmp:
        save_tiny_clip_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer.from_pretrained(tmp)
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)


def _tiny_motion_adapter():
    import torch
    from diffusers import MotionAdapter

    torch.manual_seed(0)
    adapter = MotionAdapter(
        block_out_channels=BLOCK_OUT_CHANNELS,
        motion_layers_per_block=2,  # the UNet's layers_per_block
        motion_norm_num_groups=2,
        motion_num_attention_heads=4,
        motion_max_seq_length=32,
    )
    return adapter


def save_tiny_motion_adapter(folder: Path) -> Path:
    """A tiny MotionAdapter (config.json + diffusion_pytorch_model.safetensors) at folder; returns folder."""
    folder = Path(folder)
    _tiny_motion_adapter().save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_sd_base(folder: Path) -> Path:
    """A tiny StableDiffusionPipeline-layout base model at folder (fits save_tiny_motion_adapter); returns folder."""
    from diffusers import StableDiffusionPipeline

    folder = Path(folder)
    pipe = StableDiffusionPipeline(
        **_tiny_sd_components(), safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_animatediff(folder: Path) -> Path:
    """A tiny AnimateDiffPipeline at folder, in diffusers layout with safetensors weights; returns folder."""
    from diffusers import AnimateDiffPipeline

    folder = Path(folder)
    pipe = AnimateDiffPipeline(
        **_tiny_sd_components(), motion_adapter=_tiny_motion_adapter(), feature_extractor=None, image_encoder=None
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
