"""Tiny random-weight Kandinsky 5 video pipelines (text-to-video and image-to-video), saved in diffusers layout.

Configs follow diffusers' fast tests (tests/pipelines/kandinsky5/test_kandinsky5.py, test_kandinsky5_i2v.py), with
a HunyuanVideo VAE that compresses like the real one (8x spatially, 4x temporally) and ``visual_cond=True`` in both
transformers, as in the released Lite checkpoints (the t2v pipeline then feeds zero condition channels). Nothing
is downloaded: the Qwen2.5-VL tokenizer and model come from qwen_tokenizers, the CLIP tokenizer from tokenizers.

The real checkpoints ship a ``Qwen2VLProcessor`` as ``tokenizer``; transformers 5 cannot build one without
torchvision (its video processor needs it), so the tiny folders carry the processor's tokenizer, a
``Qwen2Tokenizer``, which answers the pipelines' ``tokenizer(text=..., images=None, videos=None, ...)`` the same.

Rules, as with the real models: height and width must be multiples of 16 (else ValueError: 8x VAE, 2x2 patches);
num_frames should be 4k+1, other counts are changed, with a warning, to num_frames // 4 * 4 + 1 (8 and 10 -> 9).
The i2v pipeline needs at least 17 frames (5 latent frames): it renormalizes the first four latent frames against
the ones after them, and with fewer frames that reference is empty and the whole clip comes out NaN.
callback_on_step_end works, once per step; its latents are channels-last (b, f, h, w, 2 * 16 + 1): the latents
(for i2v, frame 0 holds the image's latents and is never stepped), 16 zero condition channels and the condition
mask (1 on frame 0 for i2v).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

KANDINSKY5_CALL = {"height": 32, "width": 32, "num_frames": 9, "num_inference_steps": 2, "guidance_scale": 5.0}
KANDINSKY5_I2V_CALL = dict(KANDINSKY5_CALL, num_frames=17)  # plus image=<PIL image>, resized to height x width

LATENT_CHANNELS = 16  # the HunyuanVideo VAE's, == transformer in_visual_dim
QWEN_DIM = 32  # Qwen2.5-VL hidden size == transformer in_text_dim
CLIP_DIM = 16  # CLIP text hidden size (its pooled output) == transformer in_text_dim2


def tiny_hunyuan_video_vae():
    """A seeded tiny AutoencoderKLHunyuanVideo: four blocks, 8x spatial and 4x temporal compression."""
    import torch
    from diffusers import AutoencoderKLHunyuanVideo

    torch.manual_seed(0)
    return AutoencoderKLHunyuanVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=LATENT_CHANNELS,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        norm_num_groups=4,
        scaling_factor=0.476986,
        spatial_compression_ratio=8,
        temporal_compression_ratio=4,
        mid_block_add_attention=True,
    ).eval()


def tiny_kandinsky5_transformer():
    import torch
    from diffusers import Kandinsky5Transformer3DModel

    torch.manual_seed(0)
    transformer = Kandinsky5Transformer3DModel(
        in_visual_dim=LATENT_CHANNELS,
        in_text_dim=QWEN_DIM,
        in_text_dim2=CLIP_DIM,
        time_dim=16,
        out_visual_dim=LATENT_CHANNELS,
        patch_size=(1, 2, 2),
        model_dim=16,
        ff_dim=32,
        num_text_blocks=1,
        num_visual_blocks=2,
        axes_dims=(2, 2, 4),  # head_dim 8 -> two heads
        visual_cond=True,
        attention_type="regular",
    ).eval()
    # The modulation layers start at zero (as for training), which gates every block off: the output would ignore
    # the prompt and the timestep, and CFG would change nothing. Random (seeded) modulations switch them on.
    with torch.no_grad():
        for name, parameter in transformer.named_parameters():
            if "modulation.out_layer" in name:
                parameter.normal_(std=0.2)
    return transformer


def tiny_clip_text_encoder():
    """A seeded tiny CLIPTextModel and the tiny offline CLIPTokenizer it fits (Kandinsky uses its pooled output)."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from .tokenizers import CLIP_BOS_ID, CLIP_EOS_ID, CLIP_MODEL_MAX_LENGTH, CLIP_VOCAB_SIZE, save_tiny_clip_tokenizer

    torch.manual_seed(0)
    config = CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE,
        bos_token_id=CLIP_BOS_ID,
        eos_token_id=CLIP_EOS_ID,  # pooling takes the first eos position, as with the real CLIP
        pad_token_id=CLIP_EOS_ID,
        hidden_size=CLIP_DIM,
        intermediate_size=32,
        projection_dim=CLIP_DIM,
        num_attention_heads=2,
        num_hidden_layers=2,
        max_position_embeddings=CLIP_MODEL_MAX_LENGTH,
    )
    text_encoder = CLIPTextModel(config).eval()
    with tempfile.TemporaryDirectory() as tmp:
        save_tiny_clip_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer.from_pretrained(tmp)
    return text_encoder, tokenizer


def _save(pipeline_class, folder) -> Path:
    from diffusers import FlowMatchEulerDiscreteScheduler

    from .qwen_tokenizers import build_tiny_qwen_tokenizer, tiny_qwen25_vl_model

    folder = Path(folder)
    text_encoder_2, tokenizer_2 = tiny_clip_text_encoder()
    pipe = pipeline_class(
        transformer=tiny_kandinsky5_transformer(),
        vae=tiny_hunyuan_video_vae(),
        text_encoder=tiny_qwen25_vl_model(hidden_size=QWEN_DIM),
        tokenizer=build_tiny_qwen_tokenizer(),
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_kandinsky5_t2v(folder) -> Path:
    """A tiny Kandinsky5T2VPipeline saved at folder with safetensors; returns folder."""
    from diffusers import Kandinsky5T2VPipeline

    return _save(Kandinsky5T2VPipeline, folder)


def save_tiny_kandinsky5_i2v(folder) -> Path:
    """A tiny Kandinsky5I2VPipeline saved at folder with safetensors; returns folder."""
    from diffusers import Kandinsky5I2VPipeline

    return _save(Kandinsky5I2VPipeline, folder)
