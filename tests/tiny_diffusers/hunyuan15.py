"""Tiny random-weight HunyuanVideo 1.5 pipelines (text-to-video and image-to-video), saved in diffusers layout.

Configs follow diffusers' fast tests (tests/pipelines/hunyuan_video1_5/test_hunyuan_1_5.py), with a VAE that
compresses like the real one (16x spatially, 4x temporally, latent patch 1: 16 pixels per token). Nothing is
downloaded: the Qwen2.5-VL tokenizer and text model come from qwen_tokenizers, the glyph (ByT5) tokenizer is
transformers' ``ByT5Tokenizer``, which needs no files, and the i2v image encoder is a tiny SigLIP.

Guidance is not a call argument: it is the ``guider`` component (a ``ClassifierFreeGuidance``, scale 6.0 here);
change it with ``pipe.guider = pipe.guider.new(guidance_scale=...)``; 1.0 turns the negative pass off. With CFG
on, the transformer runs twice per step, conditional then unconditional, one after the other.

Rules, as with the real models: num_frames should be 4k+1 (9 -> 3 latent frames); other counts give
(num_frames - 1) // 4 * 4 + 1 frames without a warning. height and width should be multiples of 16 (they are
floored to one). The i2v pipeline takes no height / width: it picks the bucket nearest the image's aspect ratio
whose area is about ``transformer.config.target_size`` squared (48 here: 32x48, 48x32, 48x48 ...) and
center-crops the image to it. The t2v default size (no height / width) is the 16:9 bucket, 32x48 here.
Neither pipeline takes callback_on_step_end (TypeError); latents are (b, c, f, h, w).
"""

from __future__ import annotations

from pathlib import Path

HUNYUAN15_CALL = {"height": 32, "width": 32, "num_frames": 9, "num_inference_steps": 2}
HUNYUAN15_I2V_CALL = {"num_frames": 9, "num_inference_steps": 2}  # plus image=<PIL image>; no height / width

LATENT_CHANNELS = 4
TEXT_DIM = 16  # Qwen2.5-VL hidden size == transformer text_embed_dim
GLYPH_DIM = 32  # ByT5 encoder d_model == transformer text_embed_2_dim
IMAGE_DIM = 12  # SigLIP hidden size == transformer image_embed_dim
TARGET_SIZE = 48  # pixels; the transformer's target_size (640 for the 480p models)
GUIDANCE_SCALE = 6.0


def tiny_hunyuan15_vae():
    import torch
    from diffusers import AutoencoderKLHunyuanVideo15

    torch.manual_seed(0)
    return AutoencoderKLHunyuanVideo15(
        in_channels=3,
        out_channels=3,
        latent_channels=LATENT_CHANNELS,
        block_out_channels=(
            16,
            16,
            16,
            16,
            16,
        ),  # five blocks: four 2x spatial downsamples, the last two also 2x in time
        layers_per_block=1,
        spatial_compression_ratio=16,
        temporal_compression_ratio=4,
    ).eval()


def tiny_hunyuan15_transformer(*, image_to_video: bool = False):
    import torch
    from diffusers import HunyuanVideo15Transformer3DModel

    torch.manual_seed(0)
    return HunyuanVideo15Transformer3DModel(
        in_channels=2 * LATENT_CHANNELS + 1,  # noisy latents + condition latents + condition mask
        out_channels=LATENT_CHANNELS,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=1,
        num_refiner_layers=1,
        mlp_ratio=2.0,
        patch_size=1,
        patch_size_t=1,
        text_embed_dim=TEXT_DIM,
        text_embed_2_dim=GLYPH_DIM,
        image_embed_dim=IMAGE_DIM,
        rope_axes_dim=(2, 2, 4),
        target_size=TARGET_SIZE,
        task_type="i2v" if image_to_video else "t2v",
    ).eval()


def tiny_glyph_encoder():
    """ByT5Tokenizer (no files needed) and a seeded tiny T5 encoder over its 384 ids, like Glyph-SDXL's ByT5."""
    import torch
    from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

    tokenizer = ByT5Tokenizer()
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=GLYPH_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=1,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return T5EncoderModel(config).eval(), tokenizer


def tiny_siglip_image_encoder():
    """A seeded tiny SiglipVisionModel and its image processor (32x32 input, 4x4 patches -> 64 image tokens)."""
    import torch
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(0)
    config = SiglipVisionConfig(
        hidden_size=IMAGE_DIM,
        intermediate_size=24,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=4,
    )
    processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    return SiglipVisionModel(config).eval(), processor


def _components(*, image_to_video: bool) -> dict:
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.guiders import ClassifierFreeGuidance

    from .qwen_tokenizers import build_tiny_qwen_tokenizer, tiny_qwen25_vl_text_model

    text_encoder_2, tokenizer_2 = tiny_glyph_encoder()
    return {
        "transformer": tiny_hunyuan15_transformer(image_to_video=image_to_video),
        "vae": tiny_hunyuan15_vae(),
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0),
        "text_encoder": tiny_qwen25_vl_text_model(hidden_size=TEXT_DIM),
        "tokenizer": build_tiny_qwen_tokenizer(),
        "text_encoder_2": text_encoder_2,
        "tokenizer_2": tokenizer_2,
        "guider": ClassifierFreeGuidance(guidance_scale=GUIDANCE_SCALE),
    }


def save_tiny_hunyuan15_t2v(folder) -> Path:
    """A tiny HunyuanVideo15Pipeline saved at folder with safetensors; returns folder."""
    from diffusers import HunyuanVideo15Pipeline

    folder = Path(folder)
    HunyuanVideo15Pipeline(**_components(image_to_video=False)).save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_hunyuan15_i2v(folder) -> Path:
    """A tiny HunyuanVideo15ImageToVideoPipeline (with a SigLIP image encoder) saved at folder; returns folder."""
    from diffusers import HunyuanVideo15ImageToVideoPipeline

    folder = Path(folder)
    image_encoder, feature_extractor = tiny_siglip_image_encoder()
    pipe = HunyuanVideo15ImageToVideoPipeline(
        **_components(image_to_video=True), image_encoder=image_encoder, feature_extractor=feature_extractor
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
