"""Tiny random-weight SANA-Video pipelines (text-to-video and image-to-video), saved in diffusers layout.

Configs follow diffusers' fast tests (tests/pipelines/sana_video/test_sana_video.py, test_sana_video_i2v.py); the
Gemma 2 text encoder and its tokenizer are built here (tests/tiny_diffusers/gemma_tokenizers.py) instead of
downloaded from hf-internal-testing/dummy-gemma. As in SANA-Video 2B 480p: the Wan 2.1 VAE layout (8x spatially,
4x temporally, 16 latent channels), transformer patch (1, 2, 2), sample_size 30, the scheduler of
scripts/convert_sana_video_to_diffusers.py (t2v: DPM-Solver++ on flow sigmas, flow_shift 8; i2v: flow-match
Euler, shift 8, which that script requires for i2v and diffusers' docs swap in).

Rules: height and width multiples of 32 (else ValueError); frames (the keyword is ``frames``, not num_frames) 4k+1
(9 -> 3 latent frames); other counts silently give (frames - 1) // 4 * 4 + 1 (8 -> 5, 10 and 12 -> 9).
``use_resolution_binning`` defaults to True, which with sample_size 30 moves height x width to the nearest 480p
bin (for 1:1, 624x624, which then fails the multiple-of-32 check with a ValueError; a tiny transformer with
rope_max_seq_len 32 cannot run the larger bins either), so the calls here turn it off.

The default ``complex_human_instruction`` (a long instruction prepended to the prompt, 255 tokens here) stays on;
the pipelines keep the first token and the last max_sequence_length - 1 of the text encoder's output.

``SanaVideoPipeline`` and ``SanaImageToVideoPipeline`` take the same components, so either folder loads as either
class; the recorded class (what ``DiffusionPipeline.from_pretrained`` gives) and scheduler differ.
"""

from __future__ import annotations

from pathlib import Path

from .gemma_tokenizers import GEMMA_HIDDEN_SIZE

SANA_VIDEO_CALL = {
    "height": 32,
    "width": 32,
    "frames": 9,
    "num_inference_steps": 2,
    "guidance_scale": 6.0,
    "max_sequence_length": 16,
    "use_resolution_binning": False,
}
SANA_VIDEO_I2V_CALL = dict(SANA_VIDEO_CALL)  # plus image=<PIL image>; the image is resized to height x width

FLOW_SHIFT = 8.0


def tiny_sana_video_vae():
    import torch
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(
        base_dim=8,  # diffusers tests use 3, whose random decoder gives nearly one picture for any latent
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )


def tiny_sana_video_transformer():
    import torch
    from diffusers import SanaVideoTransformer3DModel

    torch.manual_seed(0)
    return SanaVideoTransformer3DModel(
        in_channels=16,
        out_channels=16,
        num_attention_heads=2,
        attention_head_dim=12,
        num_layers=2,
        num_cross_attention_heads=2,
        cross_attention_head_dim=12,
        cross_attention_dim=24,
        caption_channels=GEMMA_HIDDEN_SIZE,
        mlp_ratio=2.5,
        dropout=0.0,
        attention_bias=False,
        sample_size=30,  # SANA-Video 480p's: what use_resolution_binning reads
        patch_size=(1, 2, 2),
        norm_elementwise_affine=False,
        norm_eps=1e-6,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )


def _components() -> dict:
    from .gemma_tokenizers import build_tiny_gemma_tokenizer, tiny_gemma2_encoder

    return {
        "tokenizer": build_tiny_gemma_tokenizer(),
        "text_encoder": tiny_gemma2_encoder(),
        "vae": tiny_sana_video_vae(),
        "transformer": tiny_sana_video_transformer(),
    }


def save_tiny_sana_video_t2v(folder) -> Path:
    """A tiny SanaVideoPipeline (DPM-Solver++ flow scheduler) saved at folder with safetensors; returns folder."""
    from diffusers import DPMSolverMultistepScheduler, SanaVideoPipeline

    folder = Path(folder)
    scheduler = DPMSolverMultistepScheduler(
        flow_shift=FLOW_SHIFT, use_flow_sigmas=True, prediction_type="flow_prediction"
    )
    SanaVideoPipeline(scheduler=scheduler, **_components()).save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_sana_video_i2v(folder) -> Path:
    """A tiny SanaImageToVideoPipeline (flow-match Euler scheduler) saved at folder with safetensors; returns folder."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SanaImageToVideoPipeline

    folder = Path(folder)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=FLOW_SHIFT)
    SanaImageToVideoPipeline(scheduler=scheduler, **_components()).save_pretrained(folder, safe_serialization=True)
    return folder
