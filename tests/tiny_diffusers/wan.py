"""Tiny random-weight Wan 2.1 pipelines (text-to-video and image-to-video), saved in diffusers layout.

Configs follow diffusers' own fast tests (tests/pipelines/wan/test_wan.py, test_wan_image_to_video.py); the text
encoder and tokenizer are built here instead of downloaded from hf-internal-testing/tiny-random-t5.

The VAE compresses 8x spatially and 4x temporally like the real one, the transformer patch is (1, 2, 2), so, as
with the real models: height and width must be multiples of 16 (else ValueError), num_frames should be 4k+1
(9 -> 3 latent frames); other counts are changed, with a warning, to num_frames // 4 * 4 + 1 (8 and 10 -> 9).

Wan needs accelerate (to load a model with fp32-kept modules) and ftfy (its image-to-video pipeline
cleans prompts with it); both are Kinemo dependencies.
"""

from __future__ import annotations

from pathlib import Path

from .t5_tokenizers import T5_D_MODEL

WAN_CALL = {
    "height": 32,
    "width": 32,
    "num_frames": 9,
    "num_inference_steps": 2,
    "guidance_scale": 5.0,
    "max_sequence_length": 16,
}
WAN_I2V_CALL = dict(WAN_CALL)  # plus image=<PIL image>; the image is resized to height x width

TEXT_DIM = T5_D_MODEL  # the transformer's text input width
IMAGE_DIM = 4  # CLIP vision hidden_size == transformer image_dim (Wan 2.1 i2v uses hidden_states[-2])


def tiny_wan_vae():
    import torch
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )


def tiny_wan_transformer(*, image_to_video: bool = False):
    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    extra = {"in_channels": 36, "image_dim": IMAGE_DIM} if image_to_video else {"in_channels": 16}
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        **extra,
    )


def tiny_clip_image_encoder():
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=IMAGE_DIM,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        intermediate_size=16,
        patch_size=4,
    )
    image_encoder = CLIPVisionModel(config).eval()
    torch.manual_seed(0)
    image_processor = CLIPImageProcessor(crop_size=32, size=32)
    return image_encoder, image_processor


def _common_components() -> dict:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    from .t5_tokenizers import build_tiny_t5_tokenizer, tiny_t5_encoder

    vae = tiny_wan_vae()
    torch.manual_seed(0)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)
    return {
        "vae": vae,
        "scheduler": scheduler,
        "text_encoder": tiny_t5_encoder(umt5=True),
        "tokenizer": build_tiny_t5_tokenizer(),
    }


def save_tiny_wan_t2v(folder) -> Path:
    """A tiny WanPipeline (Wan 2.1 text-to-video) saved at folder with safetensors; returns folder."""
    from diffusers import WanPipeline

    folder = Path(folder)
    pipe = WanPipeline(transformer=tiny_wan_transformer(), transformer_2=None, **_common_components())
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_wan_i2v(folder) -> Path:
    """A tiny WanImageToVideoPipeline (Wan 2.1 i2v, with a CLIP image encoder) saved at folder; returns folder."""
    from diffusers import WanImageToVideoPipeline

    folder = Path(folder)
    image_encoder, image_processor = tiny_clip_image_encoder()
    pipe = WanImageToVideoPipeline(
        transformer=tiny_wan_transformer(image_to_video=True),
        transformer_2=None,
        image_encoder=image_encoder,
        image_processor=image_processor,
        **_common_components(),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
