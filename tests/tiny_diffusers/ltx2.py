"""A tiny random-weight LTX-2 pipeline (video and audio from one transformer), saved in diffusers layout.

Configs follow diffusers' fast tests (tests/pipelines/ltx2/test_ltx2.py, test_ltx2_image2video.py), with the text
encoder and tokenizer built here (tests/tiny_diffusers/gemma_tokenizers.py) instead of downloaded from
hf-internal-testing/tiny-gemma3, and with the real LTX-2.0 layout and rules kept where they shape the output:

- video VAE: patch 4, downsamplings spatial / temporal / spatiotemporal / spatiotemporal, so 32x spatially and 8x
  temporally; decoder padding "reflect" as in LTX-2.0 (LTX-2.3 and 2.5 pad with zeros), so a latent grid must be at
  least 2x2: height and width multiples of 32 (else ValueError) and at least 64 (32 fails with a RuntimeError inside
  the VAE decoder). num_frames 8k+1 (9 -> 2 latent frames); other counts silently give (num_frames - 1) // 8 * 8 + 1
  frames (10 and 13 -> 9, 8 -> 1), while the audio still lasts num_frames / frame_rate.
- audio: the audio VAE works on 16 kHz mel spectrograms (hop 160: 100 mel frames a second, 4x compressed in time:
  25 latent frames a second); the vocoder upsamples mel frames 240x to 24 kHz stereo, as LTX-2.0's does. A clip of
  num_frames at frame_rate gets L = round(num_frames / frame_rate * 25) audio latent frames, decoded (causally) to
  4L - 3 mel frames, (4L - 3) * 240 samples: 9 frames at 24 fps -> L = 9 -> 7920 samples, 0.33 s for 0.375 s of
  video.
- scheduler: LTX-2.0's (dynamic shifting, base/max shift 0.95/2.05, shift_terminal 0.1); with it
  num_inference_steps=1 gives NaN sigmas, so an all-NaN clip and audio (numpy warns "invalid value").

The calls keep the pipelines' default guidance (video CFG 3, audio CFG 7, STG 1 at block 28, modality guidance 3,
rescale 0.7): three transformer passes a step (a CFG batch of 2, STG, modality); the 2-layer tiny transformer
has no block 28, so its STG pass changes nothing.

Latents inside the pipeline (callback_on_step_end, callback_on_step_end_tensor_inputs=["latents"]) are packed:
(batch, latent_frames * latent_height * latent_width, channels); audio latents are not offered to the callback.

``LTX2Pipeline`` and ``LTX2ImageToVideoPipeline`` take the same components, so the folder saved by
``save_tiny_ltx2`` loads as either (``DiffusionPipeline.from_pretrained`` gives the ``LTX2Pipeline`` recorded in
model_index.json). The folder also holds ``latent_upsampler/`` as Lightricks/LTX-2 does (not a pipeline component):
``LTX2LatentUpsamplerModel.from_pretrained(folder, subfolder="latent_upsampler")``, used as
``LTX2LatentUpsamplePipeline(vae=pipe.vae, latent_upsampler=...)``: it doubles the latent grid (so the video).
"""

from __future__ import annotations

from pathlib import Path

from .gemma_tokenizers import GEMMA3_NUM_LAYERS, GEMMA_HIDDEN_SIZE

LTX2_CALL = {
    "height": 64,
    "width": 64,
    "num_frames": 9,
    "frame_rate": 24.0,
    "num_inference_steps": 2,
    "guidance_scale": 3.0,
    "max_sequence_length": 16,
}
# plus image=<PIL image>, resized to height x width. image_crf=0: by default (33) the pipeline re-compresses a PIL
# image with H.264 through PyAV ("av"), which is not installed.
LTX2_I2V_CALL = dict(LTX2_CALL, image_crf=0)

AUDIO_SAMPLE_RATE = 24000  # the vocoder's output_sampling_rate
AUDIO_CHANNELS = 2
AUDIO_LATENTS_PER_SECOND = 25  # audio_vae sample_rate / mel_hop_length / 4
VOCODER_UPSAMPLING = 240  # samples per mel frame (6 * 5 * 2 * 2 * 2)
LATENT_CHANNELS = 4


def ltx2_audio_samples(num_frames: int, frame_rate: float) -> int:
    """How many audio samples (per channel) the tiny pipeline returns for num_frames at frame_rate."""
    latent_frames = round(num_frames / frame_rate * AUDIO_LATENTS_PER_SECOND)
    return (4 * latent_frames - 3) * VOCODER_UPSAMPLING


def tiny_ltx2_vae():
    import torch
    from diffusers import AutoencoderKLLTX2Video

    torch.manual_seed(0)
    vae = AutoencoderKLLTX2Video(
        latent_channels=LATENT_CHANNELS,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        upsample_residual=(False, False, False),
        upsample_factor=(1, 1, 1),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
        encoder_spatial_padding_mode="zeros",
        decoder_spatial_padding_mode="reflect",
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return vae


def tiny_ltx2_audio_vae_and_vocoder():
    import torch
    from diffusers import AutoencoderKLLTX2Audio
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4,  # == latent_channels * mel_bins / 4: the latents' normalization statistics
        output_channels=AUDIO_CHANNELS,
        ch_mult=(1, 2, 4),  # two 2x up/downsamplings: latent frame <-> 4 mel frames, 8 mel bins <-> 2
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=AUDIO_CHANNELS,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=8,
    )
    torch.manual_seed(0)
    vocoder = LTX2Vocoder(
        in_channels=AUDIO_CHANNELS * 8,
        hidden_channels=64,  # halved by each of the 5 upsamplings
        out_channels=AUDIO_CHANNELS,
        upsample_kernel_sizes=[16, 15, 8, 4, 4],
        upsample_factors=[6, 5, 2, 2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=AUDIO_SAMPLE_RATE,
    )
    return audio_vae, vocoder


def tiny_ltx2_transformer():
    import torch
    from diffusers import LTX2VideoTransformer3DModel

    torch.manual_seed(0)
    return LTX2VideoTransformer3DModel(
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,  # audio latent channels (2) * latent mel bins (2)
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=GEMMA_HIDDEN_SIZE,
        rope_double_precision=False,
        rope_type="split",
    )


def tiny_ltx2_connectors():
    import torch
    from diffusers.pipelines.ltx2 import LTX2TextConnectors

    torch.manual_seed(0)
    return LTX2TextConnectors(
        caption_channels=GEMMA_HIDDEN_SIZE,
        text_proj_in_factor=GEMMA3_NUM_LAYERS + 1,
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_theta=10000.0,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
    )


def tiny_ltx2_latent_upsampler():
    """A tiny ``LTX2LatentUpsamplerModel`` (LTX-2.0's rational 2x spatial resampler; mid_channels a multiple of 32)."""
    import torch
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    torch.manual_seed(0)
    return LTX2LatentUpsamplerModel(in_channels=LATENT_CHANNELS, mid_channels=32, num_blocks_per_stage=1)


def ltx2_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True,
        base_shift=0.95,
        max_shift=2.05,
        base_image_seq_len=1024,
        max_image_seq_len=4096,
        shift_terminal=0.1,
    )


def save_tiny_ltx2(folder) -> Path:
    """A tiny LTX2Pipeline saved at folder with safetensors (also loads as LTX2ImageToVideoPipeline); returns folder.

    The folder also holds latent_upsampler/ (an LTX2LatentUpsamplerModel), as the real repository does.
    """
    from diffusers import LTX2Pipeline

    from .gemma_tokenizers import build_tiny_gemma_tokenizer, tiny_gemma3_encoder

    folder = Path(folder)
    audio_vae, vocoder = tiny_ltx2_audio_vae_and_vocoder()
    pipe = LTX2Pipeline(
        scheduler=ltx2_scheduler(),
        vae=tiny_ltx2_vae(),
        audio_vae=audio_vae,
        text_encoder=tiny_gemma3_encoder(),
        tokenizer=build_tiny_gemma_tokenizer(),
        connectors=tiny_ltx2_connectors(),
        transformer=tiny_ltx2_transformer(),
        vocoder=vocoder,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    tiny_ltx2_latent_upsampler().save_pretrained(folder / "latent_upsampler", safe_serialization=True)
    return folder
