"""The video families bench/bench_gpu_families.py builds: each denoiser's real config (copied from the file named
above it), the shrunk one --cpu-smoke uses, and the inputs its pipeline gives it at each forward pass.

Pure data and small functions; torch is imported only where a tensor is made.
"""

from __future__ import annotations

from dataclasses import dataclass

RMS = "rms_norm_across_heads"

# -- the real configs --------------------------------------------------------------------------------------
# scripts/convert_wan_to_diffusers.py (huggingface/diffusers), get_transformer_config: "Wan-T2V-1.3B"; "Wan-T2V-14B"
# and "Wan2.2-T2V-A14B" (the same values, one config for both experts); "Wan2.2-TI2V-5B". vae22_diffusers_config
# there is the TI2V-5B's VAE (16x spatial compression).
WAN_13B = dict(added_kv_proj_dim=None, attention_head_dim=128, cross_attn_norm=True, eps=1e-6, ffn_dim=8960)
WAN_13B.update(freq_dim=256, in_channels=16, num_attention_heads=12, num_layers=30, out_channels=16)
WAN_13B.update(patch_size=[1, 2, 2], qk_norm=RMS, text_dim=4096)
WAN_14B = dict(WAN_13B, ffn_dim=13824, num_attention_heads=40, num_layers=40)
WAN_5B = dict(WAN_13B, ffn_dim=14336, in_channels=48, out_channels=48, num_attention_heads=24)
WAN22_VAE = dict(base_dim=160, z_dim=48, is_residual=True, in_channels=12, out_channels=12, decoder_base_dim=256)
WAN22_VAE.update(scale_factor_temporal=4, scale_factor_spatial=16, patch_size=2)
# scripts/convert_skyreelsv2_to_diffusers.py: "SkyReels-V2-DF-1.3B-540P"
SKYREELS = dict(WAN_13B, inject_sample_info=True)
# scripts/convert_ltx2_to_diffusers.py, get_ltx2_transformer_config("2.3") (the catalog's ltx-2.3)
LTX23 = dict(in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32)
LTX23.update(attention_head_dim=128, cross_attention_dim=4096, vae_scale_factors=(8, 32, 32), pos_embed_max_pos=20)
LTX23.update(base_height=2048, base_width=2048, gated_attn=True, cross_attn_mod=True, audio_in_channels=128)
LTX23.update(audio_out_channels=128, audio_patch_size=1, audio_patch_size_t=1, audio_num_attention_heads=32)
LTX23.update(audio_attention_head_dim=64, audio_cross_attention_dim=2048, audio_scale_factor=4)
LTX23.update(audio_pos_embed_max_pos=20, audio_sampling_rate=16000, audio_hop_length=160, audio_gated_attn=True)
LTX23.update(audio_cross_attn_mod=True, num_layers=48, activation_fn="gelu-approximate", qk_norm=RMS)
LTX23.update(norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=3840, attention_bias=True)
LTX23.update(attention_out_bias=True, rope_theta=10000.0, rope_double_precision=True, causal_offset=1)
LTX23.update(timestep_scale_multiplier=1000, cross_attn_timestep_scale_multiplier=1000, rope_type="split")
LTX23.update(use_prompt_embeddings=False, perturbed_attn=True)
# scripts/convert_hunyuan_video1_5_to_diffusers.py, TRANSFORMER_CONFIGS["480p_t2v"] = target_size 640 and task_type
# "i2v" (sic); the script builds HunyuanVideo15Transformer3DModel(**that), so the rest are the class's defaults,
# written out here
HUNYUAN15 = dict(in_channels=65, out_channels=32, num_attention_heads=16, attention_head_dim=128, num_layers=54)
HUNYUAN15.update(num_refiner_layers=2, mlp_ratio=4.0, patch_size=1, patch_size_t=1, qk_norm="rms_norm")
HUNYUAN15.update(text_embed_dim=3584, text_embed_2_dim=1472, image_embed_dim=1152, rope_theta=256.0)
HUNYUAN15.update(rope_axes_dim=(16, 56, 56), target_size=640, task_type="i2v")
# scripts/convert_sana_video_to_diffusers.py, transformer_kwargs for --video_size 480 (Wan VAE, 8x and patch 2)
SANA = dict(in_channels=16, out_channels=16, num_attention_heads=20, attention_head_dim=112, num_layers=20)
SANA.update(num_cross_attention_heads=20, cross_attention_head_dim=112, cross_attention_dim=2240)
SANA.update(caption_channels=2304, mlp_ratio=3.0, attention_bias=False, sample_size=30, patch_size=(1, 2, 2))
SANA.update(norm_elementwise_affine=False, norm_eps=1e-6, qk_norm=RMS, rope_max_seq_len=1024)
# diffusers has no Kandinsky 5 conversion script: configs/config_5s_sft.yaml of ai-forever/Kandinsky-5 (the
# original code; dit_params of the T2V Lite sft 5s model, whose attention is full: type flash, no local/glob)
KANDINSKY5 = dict(in_visual_dim=16, out_visual_dim=16, time_dim=512, patch_size=(1, 2, 2), model_dim=1792)
KANDINSKY5.update(ff_dim=7168, num_text_blocks=2, num_visual_blocks=32, axes_dims=(16, 24, 24), visual_cond=True)
KANDINSKY5.update(in_text_dim=3584, in_text_dim2=768, attention_type="regular")

# --cpu-smoke: the shapes of Kinemo's tiny test pipelines (tests/tiny_diffusers), one layer each
TINY_WAN = dict(
    num_attention_heads=2, attention_head_dim=12, ffn_dim=32, num_layers=1, text_dim=16, rope_max_seq_len=32
)
TINY_LTX2 = dict(num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16, audio_num_attention_heads=2)
TINY_LTX2.update(audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=1, caption_channels=16)
TINY_HUNYUAN15 = dict(num_attention_heads=2, attention_head_dim=8, num_layers=1, num_refiner_layers=1, mlp_ratio=2.0)
TINY_HUNYUAN15.update(text_embed_dim=16, text_embed_2_dim=32, image_embed_dim=12, rope_axes_dim=(2, 2, 4))
TINY_SANA = dict(num_attention_heads=2, attention_head_dim=12, num_layers=1, num_cross_attention_heads=2)
TINY_SANA.update(cross_attention_head_dim=12, cross_attention_dim=24, caption_channels=16)
TINY_KANDINSKY5 = dict(model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=1, axes_dims=(2, 2, 4))
TINY_KANDINSKY5.update(time_dim=16, in_text_dim=32, in_text_dim2=16)
SMOKE_SIZE, SMOKE_FRAMES = 64, 9


# -- the inputs each pipeline gives its denoiser (text lengths: the pipelines' max_sequence_length) -----------
class Tensors:
    """Inputs on the run's device: random (seeded) or filled."""

    def __init__(self, device: str, dtype):
        import torch

        self.device, self.dtype = device, dtype
        self.generator = torch.Generator(device).manual_seed(0)

    def __call__(self, *shape: int, fill: float | None = None):
        import torch

        if fill is not None:
            return torch.full(shape, fill, dtype=self.dtype, device=self.device)
        return torch.randn(shape, generator=self.generator, dtype=self.dtype, device=self.device)


def _wan(cfg, b, lat, run, rand, expand=False):
    f, h, w = lat
    tokens = f * (h // cfg["patch_size"][1]) * (w // cfg["patch_size"][2])
    # Wan 2.2 TI2V-5B's pipeline (expand_timesteps) gives one timestep per token, so its time embedding is per token
    t = rand(b, tokens, fill=500.0) if expand else rand(b, fill=500.0)
    return dict(
        hidden_states=rand(b, cfg["in_channels"], *lat), timestep=t, encoder_hidden_states=rand(b, 512, cfg["text_dim"])
    )


def _skyreels(cfg, b, lat, run, rand):
    # diffusion forcing: one timestep per latent frame; fps 24 is the model's fps class 1
    return dict(
        _wan(cfg, b, lat, run, rand), timestep=rand(b, lat[0], fill=500.0), enable_diffusion_forcing=True, fps=[1] * b
    )


def _ltx2(cfg, b, lat, run, rand):
    audio = round(run.frames / run.fps * 25)  # audio latents per second: 16000 Hz / hop 160 / 4
    text, audio_text = (cfg["cross_attention_dim"], cfg["audio_cross_attention_dim"])
    if cfg["use_prompt_embeddings"]:
        text = audio_text = cfg["caption_channels"]
    return dict(
        hidden_states=rand(b, lat[0] * lat[1] * lat[2], cfg["in_channels"]),
        audio_hidden_states=rand(b, audio, cfg["audio_in_channels"]),
        encoder_hidden_states=rand(b, 1024, text),
        audio_encoder_hidden_states=rand(b, 1024, audio_text),
        timestep=rand(b, fill=900.0),
        sigma=rand(b, fill=0.9),
        encoder_attention_mask=rand(b, 1024, fill=1.0),
        audio_encoder_attention_mask=rand(b, 1024, fill=1.0),
        num_frames=lat[0],
        height=lat[1],
        width=lat[2],
        fps=float(run.fps),
        audio_num_frames=audio,
        use_cross_timestep=True,
    )


def _hunyuan15(cfg, b, lat, run, rand):
    # a 128-token prompt in the Qwen slot, no quoted glyph text (byT5 masked off), no image (t2v: zero embeds)
    mask = rand(b, 1000, fill=0.0)
    mask[:, :128] = 1
    return dict(
        hidden_states=rand(b, cfg["in_channels"], *lat),
        timestep=rand(b, fill=500.0),
        encoder_hidden_states=rand(b, 1000, cfg["text_embed_dim"]),
        encoder_attention_mask=mask,
        encoder_hidden_states_2=rand(b, 256, cfg["text_embed_2_dim"], fill=0.0),
        encoder_attention_mask_2=rand(b, 256, fill=0.0),
        image_embeds=rand(b, 729, cfg["image_embed_dim"], fill=0.0),
    )


def _sana(cfg, b, lat, run, rand):
    return dict(
        hidden_states=rand(b, cfg["in_channels"], *lat),
        encoder_hidden_states=rand(b, 300, cfg["caption_channels"]),
        encoder_attention_mask=rand(b, 300, fill=1.0),
        timestep=rand(b, fill=500.0),
    )


def _kandinsky5(cfg, b, lat, run, rand):
    import torch

    f, h, w = lat
    channels = 2 * cfg["in_visual_dim"] + 1 if cfg["visual_cond"] else cfg["in_visual_dim"]
    text = 128  # the pipeline pads to the longest prompt: a 128-token one
    between = 480 <= run.width <= 854 and 480 <= run.height <= 854  # the pipeline's _get_scale_factor
    return dict(
        hidden_states=rand(b, f, h, w, channels),
        encoder_hidden_states=rand(b, text, cfg["in_text_dim"]),
        pooled_projections=rand(b, cfg["in_text_dim2"]),
        timestep=rand(b, fill=500.0),
        visual_rope_pos=[torch.arange(n, device=rand.device) for n in (f, h // 2, w // 2)],
        text_rope_pos=torch.arange(text, device=rand.device),
        scale_factor=(1, 2, 2) if between else (1, 3.16, 3.16),
    )


@dataclass(frozen=True)
class Bench:
    entry: str  # catalog id: size, frames, guidance, fps
    cls: str  # the diffusers transformer class
    config: dict
    tiny: dict
    inputs: object  # (config, batch, latent (f, h, w), run, rand) -> the forward's keyword arguments
    vae: tuple[str, dict]  # the VAE's class and config (read for its compression only)
    guided: tuple[int, ...]  # batch of each forward pass of a guided step, as the pipeline runs them
    experts: int = 1


def _expand(cfg, b, lat, run, rand):
    return _wan(cfg, b, lat, run, rand, expand=True)


WAN_VAE = ("AutoencoderKLWan", {})  # its defaults are Wan 2.1's VAE, which SkyReels-V2 and SANA-Video 480p use
# guided steps: Wan, SkyReels-V2 DF, Kandinsky 5 and HunyuanVideo 1.5 (its CFG guider) run the conditional and
# unconditional passes one after the other, SANA-Video both in one batch of 2
BENCHES = {  # cheapest first: rows run in this order within each policy
    b.entry: b
    for b in (
        Bench("wan2.1-t2v-1.3b", "WanTransformer3DModel", WAN_13B, TINY_WAN, _wan, WAN_VAE, (1, 1)),
        Bench("sana-video-2b-480p", "SanaVideoTransformer3DModel", SANA, TINY_SANA, _sana, WAN_VAE, (2,)),
        Bench(
            "kandinsky-5-t2v-lite",
            "Kandinsky5Transformer3DModel",
            KANDINSKY5,
            TINY_KANDINSKY5,
            _kandinsky5,
            ("AutoencoderKLHunyuanVideo", {}),
            (1, 1),
        ),
        Bench(
            "wan2.2-ti2v-5b",
            "WanTransformer3DModel",
            WAN_5B,
            TINY_WAN,
            _expand,
            ("AutoencoderKLWan", WAN22_VAE),
            (1, 1),
        ),
        Bench(
            "skyreels-v2-df-1.3b-540p", "SkyReelsV2Transformer3DModel", SKYREELS, TINY_WAN, _skyreels, WAN_VAE, (1, 1)
        ),
        # LTX-2.3 guided: one batch-2 pass (CFG) + the STG pass + the modality-isolation pass (pipeline_ltx2.py)
        Bench(
            "ltx-2.3", "LTX2VideoTransformer3DModel", LTX23, TINY_LTX2, _ltx2, ("AutoencoderKLLTX2Video", {}), (2, 1, 1)
        ),
        Bench(
            "hunyuanvideo-1.5-480p-t2v",
            "HunyuanVideo15Transformer3DModel",
            HUNYUAN15,
            TINY_HUNYUAN15,
            _hunyuan15,
            ("AutoencoderKLHunyuanVideo15", {}),
            (1, 1),
        ),
        Bench("wan2.1-t2v-14b", "WanTransformer3DModel", WAN_14B, TINY_WAN, _wan, WAN_VAE, (1, 1)),
        Bench("wan2.2-t2v-a14b", "WanTransformer3DModel", WAN_14B, TINY_WAN, _wan, WAN_VAE, (1, 1), experts=2),
    )
}
