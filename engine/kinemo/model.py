"""The bundled Kinemo starter model: a small text-conditioned video diffusion transformer.

Frames live in a patchified pixel space. Each block is factorised: spatial self-attention within
each frame, temporal self-attention across frames (RoPE over the frame index), cross-attention to
the text encoder's token states, then an MLP; the timestep and pooled text modulate every block
(adaLN-zero, as in DiT). Image-to-video concatenates the given first frame and a mask channel to
every frame's input, as Stable Video Diffusion concatenates its image latent.

The model predicts the clean clip x_0 directly ("sample" prediction): with 8x8 patches each token
carries 192 pixel values through a 128-wide bottleneck, which cannot pass per-pixel noise (what
epsilon and v prediction ask for) but easily carries a clean, low-dimensional picture
(Li & He 2025, "Back to Basics: Let Denoising Generative Models Denoise").

Shapes: sample (b, 3, f, h, w) in [-1, 1] -> model output (b, 3, f, h, w).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from engine.kinemo.schedule import alphas_cumprod, make_betas
from engine.kinemo.temporal_attention import TemporalAttention
from engine.kinemo.text_encoder import TextEncoder


@dataclass(frozen=True)
class KinemoConfig:
    size: int = 64
    max_frames: int = 16
    patch: int = 8
    dim: int = 128
    depth: int = 6
    heads: int = 4
    text_dim: int = 128
    text_depth: int = 2
    prediction_type: str = "sample"  # x-prediction: clean frames are easy for a patch bottleneck, noise is not
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    # 8x8 patches average 64 pixels, which makes the cosine schedule's high-noise end far too easy
    # to read; scaling every SNR by 1/16 puts real ambiguity back there (simple diffusion's shift).
    snr_scale: float = 1 / 16
    # A small convolutional refiner at full resolution (its hidden width; 0 for none). A linear
    # patch decoder draws each 8x8 block on its own, which leaves blocky, fragmented shapes; the
    # refiner sees the noisy pixels, the decoded clip and a few decoded features per pixel, as a
    # U-Net's full-resolution skip does, and draws edges across patch borders.
    refiner: int = 16
    refiner_features: int = 4
    # What the refiner is shown of the noisy frame: "noisy" is x_t itself; "denoised" is sqrt(alpha_bar_t) * x_t,
    # each pixel's own least-squares guess of x_0. At high noise x_t is nearly pure noise, and a refiner that
    # sees it raw copies that noise into its prediction as lumps and spikes (its timestep modulation acts after
    # the first convolution has mixed the noisy channels with the decoded ones, so it cannot shut them off).
    refiner_input: str = "denoised"
    # What the patch embedding is shown of the noisy frame, "noisy" or "denoised" as for the refiner. Denoised,
    # the first steps (sqrt(alpha_bar) about 1e-4 at t = 999) see almost no noise and draw what the prompt says;
    # shown raw x_t there, a model reads lumps into pure noise, and DDIM keeps the x_0 it starts with.
    token_input: str = "denoised"
    # Each token draws a 2p x 2p window, overlapping its neighbours' by p/2 on every side (summed, as a
    # transposed convolution does), instead of its own p x p block, so shapes do not break at patch borders.
    overlap_decoder: bool = True

    @property
    def grid(self) -> int:
        return self.size // self.patch

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> KinemoConfig:
        # a config that leaves these options out describes a model built without them
        data = {"refiner": 0, "refiner_input": "noisy", "overlap_decoder": False, "token_input": "noisy", **data}
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


@dataclass
class Conditioning:
    """Everything the denoiser is conditioned on, encoded once per request."""

    text_states: torch.Tensor  # (b, l, text_dim)
    text_mask: torch.Tensor  # (b, l) bool, True for real tokens
    text_pooled: torch.Tensor  # (b, text_dim)
    image: torch.Tensor  # (b, 3, h, w) in [-1, 1], zeros where no image is given
    image_mask: torch.Tensor  # (b,) 1.0 where the first frame is given


def timestep_features(t: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """Sinusoidal features of diffusion timesteps: (b,) -> (b, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


def sincos_table(count: int, dim: int) -> torch.Tensor:
    """Fixed sinusoidal positions (count, dim) with unit-scale entries."""
    position = torch.arange(count, dtype=torch.float32)[:, None]
    freqs = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(count, dim)
    table[:, 0::2] = torch.sin(position * freqs)
    table[:, 1::2] = torch.cos(position * freqs)
    return table


def sincos_grid(grid: int, dim: int) -> torch.Tensor:
    """2D sinusoidal positions for a grid x grid patch layout: (grid * grid, dim), rows then columns."""
    rows = sincos_table(grid, dim // 2)  # (grid, dim/2)
    return torch.cat([rows[:, None].expand(grid, grid, -1), rows[None, :].expand(grid, grid, -1)], dim=-1).reshape(
        grid * grid, dim
    )


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class SelfAttention(nn.Module):
    """Plain multi-head self-attention: (n, s, d) -> (n, s, d)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.to_qkv(x), "n s (three h e) -> three n h s e", three=3, h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(rearrange(out, "n h s e -> n s (h e)"))


class CrossAttention(nn.Module):
    """Video tokens attend to text tokens: x (b, n, d), context (b, l, c) -> (b, n, d)."""

    def __init__(self, dim: int, context_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(context_dim, dim)
        self.to_v = nn.Linear(context_dim, dim)
        self.to_out = nn.Linear(dim, dim)

    def context_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the conditioning, each (b, h, l, e)."""
        k = rearrange(self.to_k(context), "b l (h e) -> b h l e", h=self.heads)
        v = rearrange(self.to_v(context), "b l (h e) -> b h l e", h=self.heads)
        return k, v

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        q = rearrange(self.to_q(x), "b n (h e) -> b h n e", h=self.heads)
        k, v = self.context_kv(context)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=context_mask[:, None, None, :])
        return self.to_out(rearrange(out, "b h n e -> b n (h e)"))


class FactorisedBlock(nn.Module):
    def __init__(self, config: KinemoConfig):
        super().__init__()
        d = config.dim
        self.norm_spatial = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.spatial = SelfAttention(d, config.heads)
        self.norm_temporal = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.temporal = TemporalAttention(d, config.heads)
        self.norm_cross = nn.LayerNorm(d, eps=1e-6)
        self.cross = CrossAttention(d, config.text_dim, config.heads)
        self.norm_mlp = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d))
        self.modulation = nn.Linear(d, 9 * d)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
        nn.init.zeros_(self.cross.to_out.weight)
        nn.init.zeros_(self.cross.to_out.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, cond: Conditioning, positions: torch.Tensor) -> torch.Tensor:
        # x: (b, f, s, d); c: (b, d)
        b, f = x.shape[:2]
        mods = self.modulation(F.silu(c))[:, None, None].chunk(9, dim=-1)  # each (b, 1, 1, d)
        (sh_s, sc_s, g_s, sh_t, sc_t, g_t, sh_m, sc_m, g_m) = mods

        # 1. spatial attention within each frame
        h = rearrange(modulate(self.norm_spatial(x), sh_s, sc_s), "b f s d -> (b f) s d")
        x = x + g_s * rearrange(self.spatial(h), "(b f) s d -> b f s d", b=b)
        # 2. temporal attention across frames at each position
        h = rearrange(modulate(self.norm_temporal(x), sh_t, sc_t), "b f s d -> (b s) f d")
        x = x + g_t * rearrange(self.temporal(h, positions), "(b s) f d -> b f s d", b=b)
        # 3. cross-attention to the text
        h = rearrange(self.norm_cross(x), "b f s d -> b (f s) d")
        x = x + rearrange(self.cross(h, cond.text_states, cond.text_mask), "b (f s) d -> b f s d", f=f)
        # 4. MLP
        return x + g_m * self.mlp(modulate(self.norm_mlp(x), sh_m, sc_m))


class PixelRefiner(nn.Module):
    """Full-resolution convolutions that sharpen the patch decoder's output.

    Inputs per frame, all (n, c, h, w) with n = b * f: the decoded clip (3), the decoder's extra
    per-pixel features (k), the noisy frame (3), and the first-frame image and its mask (4). The
    timestep and text modulate the hidden layer; the last convolution starts at zero, so a new
    refiner passes the decoded clip through unchanged.
    """

    def __init__(self, cond_dim: int, features: int, hidden: int):
        super().__init__()
        self.conv_in = nn.Conv2d(3 + features + 3 + 4, hidden, 3, padding=1)
        self.modulation = nn.Linear(cond_dim, 2 * hidden)
        self.conv_mid = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.conv_out = nn.Conv2d(hidden, 3, 3, padding=1)
        for layer in (self.modulation, self.conv_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(
        self, decoded: torch.Tensor, features: torch.Tensor, noisy: torch.Tensor, image: torch.Tensor, c: torch.Tensor
    ) -> torch.Tensor:
        # decoded, noisy: (n, 3, h, w); features: (n, k, h, w); image: (n, 4, h, w); c: (n, d)
        shift, scale = self.modulation(F.silu(c))[:, :, None, None].chunk(2, dim=1)  # each (n, hidden, 1, 1)
        x = torch.cat([decoded, features, noisy, image], dim=1)
        # channels-last convolutions run about twice as fast on CPU (oneDNN), forward and backward
        h = F.gelu(self.conv_in(x.contiguous(memory_format=torch.channels_last)), approximate="tanh")
        h = F.gelu(self.conv_mid(modulate(h, shift, scale)), approximate="tanh")
        return decoded + self.conv_out(h)


class KinemoDiT(nn.Module):
    def __init__(self, config: KinemoConfig = KinemoConfig()):
        super().__init__()
        self.config = config
        d, p = config.dim, config.patch
        patch_values = 3 * p * p
        self.text_encoder = TextEncoder(config.text_dim, config.text_depth)
        self.patch_in = nn.Linear(2 * patch_values + 1, d)  # noisy frame | first frame | image mask
        # Positions start as unit-scale sinusoids (as in DiT): at high noise the patch embedding of
        # pure noise is unit-scale too, and small random positions would be drowned by it, leaving
        # the model no way to tell where (and when) to draw what the prompt asks for.
        self.spatial_position = nn.Parameter(sincos_grid(config.grid, d))
        self.frame_position = nn.Parameter(sincos_table(config.max_frames, d))
        self.time_embed = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        self.text_embed = nn.Linear(config.text_dim, d)
        self.blocks = nn.ModuleList(FactorisedBlock(config) for _ in range(config.depth))
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.modulation_out = nn.Linear(d, 2 * d)
        self.out_channels = 3 + (config.refiner_features if config.refiner else 0)  # clip + refiner features
        self.window = 2 * p if config.overlap_decoder else p  # the square each token draws
        self.patch_out = nn.Linear(d, self.window * self.window * self.out_channels)
        for layer in (self.modulation_out, self.patch_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.refiner = PixelRefiner(d, config.refiner_features, config.refiner) if config.refiner else None
        for name in ("refiner_input", "token_input"):
            if getattr(config, name) not in ("noisy", "denoised"):
                raise ValueError(f"unknown {name} {getattr(config, name)!r}")
        self.shows_denoised = (
            config.refiner and config.refiner_input == "denoised"
        ) or config.token_input == "denoised"
        if self.shows_denoised:
            betas = make_betas(config.beta_schedule, config.num_train_timesteps, snr_scale=config.snr_scale)
            self.register_buffer("signal_scale", alphas_cumprod(betas).sqrt(), persistent=False)  # (T,)

    def frame_positions(self, frame_indices: torch.Tensor) -> torch.Tensor:
        """Frame position embeddings (f, d); fractional positions interpolate between table rows."""
        if not frame_indices.is_floating_point():
            return self.frame_position[frame_indices]
        low = frame_indices.floor().long().clamp(max=self.config.max_frames - 1)
        high = (low + 1).clamp(max=self.config.max_frames - 1)
        weight = (frame_indices - low)[:, None]
        return self.frame_position[low] * (1 - weight) + self.frame_position[high] * weight

    def denoised(self, sample: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        """sqrt(alpha_bar_t) * x_t, each pixel's least-squares guess of x_0 from x_t alone: (b, c, f, h, w)."""
        step = (
            timestep.round().long().clamp(0, len(self.signal_scale) - 1).expand(sample.shape[0])
        )  # (b,); one timestep may serve the batch
        return sample * self.signal_scale[step][:, None, None, None, None]

    def encode(
        self, text_ids: torch.Tensor, image: torch.Tensor | None = None, image_mask: torch.Tensor | None = None
    ) -> Conditioning:
        """Encode the conditioning once per request: ids (b, l), image (b, 3, h, w) in [-1, 1]."""
        states, mask, pooled = self.text_encoder(text_ids)
        b, size = text_ids.shape[0], self.config.size
        if image is None:
            image = torch.zeros(b, 3, size, size, device=text_ids.device)
            image_mask = torch.zeros(b, device=text_ids.device)
        elif image_mask is None:
            image_mask = torch.ones(b, device=text_ids.device)
        return Conditioning(states, mask, pooled, image * image_mask[:, None, None, None], image_mask)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        cond: Conditioning,
        frame_indices: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """frame_indices (f,): where each given frame sits in the model's window, default 0..f-1.

        Training passes sparse, increasing indices (e.g. 0, 3, 9, 15) to see whole moves in a few
        frames; generation uses every frame of the window. Long clips pass fractional positions
        (frame g of n sits at (window - 1) * g / (n - 1)), so a whole clip spans one window's move.
        """
        b, f = sample.shape[0], sample.shape[2]
        if frame_indices is None:
            if f > self.config.max_frames:
                raise ValueError(f"{f} frames exceed the model's window of {self.config.max_frames}")
            frame_indices = torch.arange(f, device=sample.device)
        elif (
            frame_indices.shape != (f,)
            or float(frame_indices.max()) > self.config.max_frames - 1
            or float(frame_indices.min()) < 0
        ):
            raise ValueError(
                f"frame indices {frame_indices.tolist()} do not fit {f} frames in a window of {self.config.max_frames}"
            )
        if timestep.ndim == 0:
            timestep = timestep.expand(b)
        return self.predict(sample, timestep, cond, frame_indices)

    def predict(
        self, sample: torch.Tensor, timestep: torch.Tensor, cond: Conditioning, frame_indices: torch.Tensor
    ) -> torch.Tensor:
        """forward without its checks: sample (b, 3, f, h, w), timestep (b,), frame_indices (f,) -> (b, 3, f, h, w).
        Free of data-dependent branches, so torch.export (engine.accel.onnx_denoiser) traces it whole."""
        b, _, f, h, w = sample.shape
        p = self.config.patch

        # 1. patchify: noisy frames, the first-frame image and its mask -> tokens (b, f, s, d)
        denoised = self.denoised(sample, timestep) if self.shows_denoised else None  # once, for tokens and refiner
        shown = denoised if self.config.token_input == "denoised" else sample
        x = rearrange(shown, "b c f (gh p1) (gw p2) -> b f (gh gw) (p1 p2 c)", p1=p, p2=p)
        img = rearrange(cond.image, "b c (gh p1) (gw p2) -> b 1 (gh gw) (p1 p2 c)", p1=p, p2=p)
        mask = cond.image_mask[:, None, None, None].expand(b, f, x.shape[2], 1)
        tokens = torch.cat([x, img.expand(-1, f, -1, -1), mask], dim=-1)
        x = self.patch_in(tokens) + self.spatial_position + self.frame_positions(frame_indices)[:, None]

        # 2. global conditioning: timestep + pooled text
        c = self.time_embed(timestep_features(timestep)) + self.text_embed(cond.text_pooled)

        # 3. factorised blocks
        for block in self.blocks:
            x = block(x, c, cond, frame_indices)

        # 4. unpatchify: (b, f, s, d) -> (b f, c, h, w)
        shift, scale = self.modulation_out(F.silu(c))[:, None, None].chunk(2, dim=-1)
        x = self.patch_out(modulate(self.norm_out(x), shift, scale))
        if self.config.overlap_decoder:  # windows of 2p x 2p at stride p, summed where they overlap
            x = rearrange(x, "b f s ckk -> (b f) ckk s")
            x = F.fold(x, output_size=(h, w), kernel_size=self.window, stride=p, padding=p // 2)
        else:
            x = rearrange(x, "b f (gh gw) (p1 p2 c) -> (b f) c (gh p1) (gw p2)", gh=h // p, p1=p, p2=p)
        if self.refiner is None:
            return rearrange(x, "(b f) c h w -> b c f h w", b=b)

        # 5. refine at full resolution, frame by frame
        noisy = rearrange(denoised if self.config.refiner_input == "denoised" else sample, "b c f h w -> (b f) c h w")
        image = torch.cat([cond.image, cond.image_mask[:, None, None, None].expand(b, 1, h, w)], dim=1)  # (b, 4, h, w)
        # einops' repeat (expand, reshape) rather than repeat_interleave, which the ONNX exporter gets wrong for a
        # dynamic frame count
        image = repeat(image, "b c h w -> (b f) c h w", f=f)
        refined = self.refiner(x[:, :3], x[:, 3:], noisy, image, repeat(c, "b d -> (b f) d", f=f))
        return rearrange(refined, "(b f) c h w -> b c f h w", b=b)
