"""How much memory a run takes, estimated from what is on disk (nothing is loaded).

The estimator (bytes; everything it reads is on disk, nothing is loaded):

    weights      each component's safetensors headers (tensor shapes and dtypes), at the run dtype
                 (fp32 on the CPU, bf16/fp16 on CUDA); fp8 storage stores the denoiser at one byte
    denoise      den_fixed + den_k x one activation of the denoiser (the family's MemoryCalibration): batch x latent
                 frames x latent tokens x its width (UNet: first block's channels; transformers:
                 heads x head_dim, or model_dim); + the attention masks a denoiser builds over all its tokens
                 (HunyuanVideo 1.5: batch x tokens^2 x (2 + dtype bytes), attention_mask_bytes)
    decode       dec_fixed + the VAE's decode of one chunk of frames: chunk x pixels x (K_LIVE x channels
                 at full resolution + k_px) floats; slicing decodes one frame at a time, tiling a tile;
                 + the causal attention mask of a HunyuanVideo VAE's mid block over the chunk's latent
                 tokens (tokens^2 x (1 + dtype bytes), vae_mask_bytes)
    output       the decoded clip as float32 arrays (OUTPUT_COPIES copies of frames x h x w x 3)
    RAM          the process as it is when the plan is made (torch and diffusers imported: measured,
                 not guessed) + LOAD_OVERHEAD + the weights (they are all read into RAM before anything
                 moves to a GPU) + on the CPU the run's activations (max of denoise and decode + output)
    VRAM         weights on the GPU under the policy (all of them; the largest model; one block;
                 one layer) + the largest activation x FRAGMENTATION

Where the numbers come from: the CPU constants (each Family's memory) were fitted to peak-RSS measurements of the
tiny random-weight pipelines in tests/tiny_diffusers (fp32, torch 2.13 CPU, diffusers 0.42, glibc;
the pipeline runs on a worker thread, whose malloc arena keeps more than the main thread's would) by
`python bench/bench_memory_plan.py --calibrate`, two sizes per family; the bench checks estimate
against measurement on those cases and on sizes and frame counts the fit did not see. The GPU side (bf16 activations, offload placements,
CUDA_HOST_OVERHEAD, FRAGMENTATION) was not measured by Kinemo: it follows from how diffusers places
weights under each policy, with the CPU-fitted per-pixel and per-token counts scaled to 2-byte
activations. The bundled model's constants come from the same bench (16 and 128 frames).

Pure Python at import time (no torch): the studio process imports it to show a plan before a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.planning.headers import Component
from engine.planning.policies import Policy
from engine.registry.families import EXTEND_CONTEXT_FRAMES, FAMILIES, request_task

GB = 2**30
MB = 2**20

# -- calibration (per family: engine.registry.families.MemoryCalibration) ------------------------------
# Full-resolution tensors of the VAE's channel width alive at its decode peak: 5 (input, norm, activation,
# conv, residual), 8.5 for SVD's temporal decoder (its time-mixing layers), the rest of the fitted floats
# per pixel going to k_px. The tiny VAEs have 3-32 channels, so k_px (im2col workspaces of CPU 3D
# convolutions, RGB tensors) is large next to them; a real VAE's 128 channels dwarf it.
K_LIVE = {"AutoencoderKL": 5.0, "AutoencoderKLTemporalDecoder": 8.5}
K_LIVE_DEFAULT = 5.0
OUTPUT_COPIES = 3  # the VAE's output, the pipeline's float32 numpy array, one temporary while converting
LOAD_OVERHEAD = 34 * MB  # RSS from_pretrained adds beyond the weights (modules imported, buffers): 30-36 MB measured
CUDA_HOST_OVERHEAD = int(0.5 * GB)  # host RAM of CUDA's context and kernels: a typical figure, not measured here
FRAGMENTATION = 1.10  # torch's caching allocator keeps more than the live tensors: a usual margin, not measured
TYPICAL_BASELINE = 430 * MB  # RSS after importing torch and a diffusers pipeline (measured, CPU); used when
# the plan is made in another process (the studio) and the engine's own cannot be read
FP8_DENOISERS = {  # classes that name the layers to keep in full precision (_skip_layerwise_casting_patterns)
    "UNetMotionModel",
    "UNet2DConditionModel",
    "WanTransformer3DModel",
    "LTXVideoTransformer3DModel",
    "CogVideoXTransformer3DModel",
    "LTX2VideoTransformer3DModel",
    "HunyuanVideo15Transformer3DModel",
    "SanaVideoTransformer3DModel",
    "SkyReelsV2Transformer3DModel",
}
DENOISERS = ("transformer", "unet")
TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "image_encoder")
# Tokens a denoiser attends to besides the latent ones, padded to these lengths whatever the prompt: HunyuanVideo
# 1.5's 1000 Qwen2.5-VL text, 256 ByT5 glyph and 729 SigLIP image tokens (its pipeline's tokenizer_max_length,
# tokenizer_2_max_length, vision_num_semantic_tokens; zeroed, not dropped, in text-to-video); CogVideoX's text
# tokens are its transformer's max_text_seq_length
EXTRA_TOKENS = {"hunyuan15": 1000 + 256 + 729}
# Denoisers that build a (batch, 1, S, S) boolean mask over all S tokens in each attention call (HunyuanVideo 1.5:
# a repeat and an `and` of it, 2 bytes, which SDPA turns into one of the activations' dtype): bytes per S^2 are
# 2 + dtype bytes; fitted on the tiny model, 5.7 against the 6 of fp32
MASKED_ATTENTION = {"hunyuan15"}
# VAEs whose mid-block attention builds a causal mask over all latent tokens of what they decode at once, in the
# activations' dtype (HunyuanVideo's from a boolean comparison of the same size): measured +130 MB at 256x17 for
# the 131 MB this gives (Kandinsky 5's tiny VAE)
MASKED_VAES = {"AutoencoderKLHunyuanVideo", "AutoencoderKLHunyuanVideo15"}
TILING_VAES = {
    "AutoencoderKL",
    "AutoencoderKLWan",
    "AutoencoderKLLTXVideo",
    "AutoencoderKLCogVideoX",
    "AutoencoderKLLTX2Video",
    "AutoencoderKLHunyuanVideo",
    "AutoencoderKLHunyuanVideo15",
}


@dataclass(frozen=True)
class Shape:
    """What an estimate depends on besides the weights."""

    family: str
    frames: int
    width: int
    height: int
    guidance: float = 1.0
    steps: int = 25
    task: str = "t2v"  # engine.registry.families.TASKS
    input_frames: int = 0  # frames of a video the run reads and holds (video-to-video, the clip an extension continues)

    @classmethod
    def of(cls, family: str, request) -> Shape:
        """The shape of a request's run; an extension's pipeline also re-makes up to EXTEND_CONTEXT_FRAMES of the
        clip's last frames, and is counted with them."""
        task = request_task(request)
        context = EXTEND_CONTEXT_FRAMES if task == "extend" else 0
        inputs = request.frames if task == "v2v" else context
        frames = request.frames + context
        return cls(family, frames, request.width, request.height, request.guidance, request.steps, task, inputs)


def _config_int(config: dict, key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, (list, tuple)):
        value = value[-1] if key == "patch_size" else value[0]
    return int(value) if isinstance(value, (int, float)) and value else default


def denoiser(components: dict[str, Component]) -> Component | None:
    return next((components[n] for n in DENOISERS if n in components), None)


def vae_of(components: dict[str, Component]) -> Component | None:
    return components.get("vae")


def compression(family: str, vae: Component | None) -> tuple[int, int]:
    """(temporal, spatial) compression of the VAE: from its config where it says, else the family's."""
    config = vae.config if vae else {}
    default = FAMILIES[family].compression if family in FAMILIES else (4, 8)
    temporal = config.get("scale_factor_temporal") or config.get("temporal_compression_ratio") or default[0]
    spatial = config.get("scale_factor_spatial") or config.get("spatial_compression_ratio") or default[1]
    return int(temporal), int(spatial)


def latent_tokens(shape: Shape, components: dict[str, Component]) -> int:
    """Tokens the transformer sees: latent frames x (height / pixels per token) x (width / pixels per token)."""
    den = denoiser(components)
    config = den.config if den else {}
    temporal, spatial = compression(shape.family, vae_of(components))
    patch = config.get("patch_size", 1 if spatial >= 32 else 2)
    patch = int(patch[-1] if isinstance(patch, (list, tuple)) else patch or 1)
    frames = (shape.frames - 1) // temporal + 1
    return frames * (shape.height // (spatial * patch)) * (shape.width // (spatial * patch))


def denoise_unit(shape: Shape, components: dict[str, Component], size: int) -> int:
    """Bytes of one activation of the denoiser: batch x latent frames x latent tokens x width."""
    den = denoiser(components)
    config = den.config if den else {}
    family = FAMILIES.get(shape.family)
    batch = _batch(shape)
    if family is not None and family.unet:
        channels = config.get("block_out_channels") or [320]
        return batch * shape.frames * int(channels[0]) * (shape.height // 8) * (shape.width // 8) * size
    width = _config_int(config, "num_attention_heads", 16) * _config_int(config, "attention_head_dim", 64)
    width = _config_int(config, "model_dim", width)  # Kandinsky 5 gives its width, not heads x head_dim
    return batch * denoiser_tokens(shape, components) * width * size


def _batch(shape: Shape) -> int:
    family = FAMILIES.get(shape.family)
    return 2 if shape.guidance > 1.0 and not (family and family.cfg_sequential) else 1


def denoiser_tokens(shape: Shape, components: dict[str, Component]) -> int:
    """Tokens of one denoiser pass: the latent ones + the text (and image) tokens it attends to with them."""
    den = denoiser(components)
    config = den.config if den else {}
    extra = EXTRA_TOKENS.get(shape.family, 0)
    if shape.family == "cogvideox":
        extra = _config_int(config, "max_text_seq_length", 226)
    return latent_tokens(shape, components) + extra


def attention_mask_bytes(shape: Shape, components: dict[str, Component], size: int) -> int:
    """Bytes of the attention masks a denoiser builds over all its tokens in one attention call (0 for most)."""
    if shape.family not in MASKED_ATTENTION:
        return 0
    return _batch(shape) * denoiser_tokens(shape, components) ** 2 * (2 + size)


def vae_channels(vae: Component | None) -> float:
    """Channels per decoded pixel at the VAE's full resolution (LTX's are spread over a 4x4 patch)."""
    if vae is None:
        return 128.0
    config = vae.config
    if vae.class_name == "AutoencoderKLWan":
        base = config.get("decoder_base_dim") or config.get("base_dim") or 96
        return float(base * (config.get("dim_mult") or [1])[0])
    if vae.class_name in ("AutoencoderKLLTXVideo", "AutoencoderKLLTX2Video"):
        channels = config.get("decoder_block_out_channels") or config.get("block_out_channels") or [128]
        return channels[0] / max(1, int(config.get("patch_size", 4))) ** 2
    return float((config.get("block_out_channels") or [128])[0])


def decode_pixels(shape: Shape, vae: Component | None, tiled: bool) -> int:
    """Pixels (frames x height x width) the VAE decodes at once: its chunk, and a tile when tiling."""
    name = vae.class_name if vae else ""
    config = vae.config if vae else {}
    f, h, w = shape.frames, shape.height, shape.width
    tile_h = tile_w = 0  # 0: the VAE does not tile
    if name == "AutoencoderKL":
        chunk = 1 if tiled else min(f, 16)  # AnimateDiff decodes 16 frames at a time; slicing one
        size = config.get("sample_size", 512)
        size = size[0] if isinstance(size, (list, tuple)) else size
        tile_h = tile_w = int(size * 1.25)  # 25 % overlap
    elif name == "AutoencoderKLWan":
        chunk = min(f, 4)  # causal: one latent frame (4 frames) at a time
        patch = int(config.get("patch_size") or 1)  # Wan 2.2's decodes at 1/patch the size, then unpatchifies
        h, w = h // patch, w // patch
        tile_h = tile_w = 256 // patch
    elif name in ("AutoencoderKLLTXVideo", "AutoencoderKLLTX2Video"):
        chunk = min(f, 16) if tiled else f
        tile_h = tile_w = 512
    elif name == "AutoencoderKLHunyuanVideo":  # framewise by default: 5 latent frames (17 frames) at a time
        chunk = min(f, 17)
        tile_h = tile_w = 256
    elif name == "AutoencoderKLHunyuanVideo15":  # every frame at once
        chunk = f
        tile_h = tile_w = 256
    elif name == "AutoencoderKLCogVideoX":
        chunk = min(f, 9)  # two latent frames at a time (three in the first batch)
        tile_h, tile_w = int(config.get("sample_height", 480)), int(config.get("sample_width", 720))
    else:  # SVD's temporal decoder: every frame at once, no tiling
        chunk = f
    if tiled and tile_h and tile_w and (h > tile_h or w > tile_w):
        h, w = min(h, tile_h), min(w, tile_w)
    return chunk * h * w


def vae_mask_bytes(shape: Shape, vae: Component | None, tiled: bool, size: int) -> int:
    """Bytes of the causal attention mask a HunyuanVideo VAE's mid block builds over the latent tokens it decodes at
    once (0 for the other VAEs): (latent frames x latent pixels)^2 x (1 + dtype bytes)."""
    if vae is None or vae.class_name not in MASKED_VAES:
        return 0
    temporal, spatial = compression(shape.family, vae)
    chunk = min(shape.frames, 17) if vae.class_name == "AutoencoderKLHunyuanVideo" else shape.frames
    tokens = ((chunk - 1) // temporal + 1) * (decode_pixels(shape, vae, tiled) // chunk // spatial**2)
    return tokens**2 * (1 + size)


@dataclass(frozen=True)
class Estimate:
    vram: int  # bytes on the GPU at the peak (0 on the CPU)
    ram: int  # peak resident bytes of the process, baseline included
    parts: dict = field(default_factory=dict)  # bytes: baseline, weights, activations, ... (for reports)

    @property
    def extra_ram(self) -> int:
        """The RAM the run adds to the process as it is now."""
        return self.ram - self.parts.get("baseline", 0)


def supports_fp8(components: dict[str, Component]) -> bool:
    den = denoiser(components)
    return den is not None and den.class_name in FP8_DENOISERS


def supports_tiling(components: dict[str, Component]) -> bool:
    vae = vae_of(components)
    return vae is not None and vae.class_name in TILING_VAES


def estimate_diffusers(
    components: dict[str, Component],
    shape: Shape,
    policy: Policy,
    accelerator: bool,
    baseline: int,
    dtype_bytes: int | None = None,
) -> Estimate:
    """Peak VRAM and RAM of one run under a policy (see the module docstring for the model)."""
    cal = FAMILIES.get(shape.family, FAMILIES["wan"]).memory
    size = dtype_bytes or (2 if accelerator else 4)
    vae = vae_of(components)
    den = denoiser(components)
    weights = {name: c.bytes_at(size) for name, c in components.items()}
    load_transient = 0
    if den is not None and den.class_name == "UNet2DConditionModel" and "motion_adapter" in components:
        # AnimateDiff from a base model + adapter: the pipeline builds a UNetMotionModel holding both (fp32 while
        # it is built, diffusers' UNetMotionModel.from_unet2d) and keeps the adapter as a component too
        adapter = components["motion_adapter"]
        weights[den.name] += adapter.bytes_at(size)
        load_transient = (den.floats + adapter.floats) * 4
    total_weights = sum(weights.values())
    fp8 = policy.fp8 and supports_fp8(components)
    tiled = policy.vae_tiling and supports_tiling(components)

    unit = denoise_unit(shape, components, size)
    denoise = cal.den_k * unit + attention_mask_bytes(shape, components, size)
    k_live = K_LIVE.get(vae.class_name if vae else "", K_LIVE_DEFAULT)
    decode = (k_live * vae_channels(vae) + cal.k_px) * size * decode_pixels(shape, vae, tiled)
    decode += vae_mask_bytes(shape, vae, tiled, size)
    # float32 on the host: the clip made, and the video read (the pipeline's preprocessed copy of it)
    output = (OUTPUT_COPIES * shape.frames + shape.input_frames) * shape.height * shape.width * 3 * 4
    parts = {"baseline": baseline, "load": LOAD_OVERHEAD, "weights": total_weights}

    if not accelerator:  # everything in RAM, fitted constants included
        run = max(cal.den_fixed * MB + denoise, cal.dec_fixed * MB + decode + output)
        parts.update(denoise=int(cal.den_fixed * MB + denoise), decode=int(cal.dec_fixed * MB + decode), output=output)
        ram = baseline + LOAD_OVERHEAD + max(total_weights + run, total_weights + load_transient)
        return Estimate(0, int(ram), parts)

    # on a GPU: which weights are there during each phase
    den_name = den.name if den else ""
    den_bytes = weights.get(den_name, 0)
    if fp8 and den is not None:  # stored at one byte a weight (the few layers kept in full precision ignored)
        den_bytes = den_bytes // size
    text = sum(weights.get(n, 0) for n in TEXT_ENCODERS)
    vae_bytes = weights.get("vae", 0)
    if policy.placement == "device":  # everything, the motion adapter component included (pipe.to moves it)
        resident = {"denoise": total_weights - weights.get(den_name, 0) + den_bytes}
        resident["decode"] = resident["text"] = resident["denoise"]
    elif policy.placement == "model":  # one model at a time, in model_cpu_offload_seq order
        resident = {"text": text, "denoise": den_bytes, "decode": vae_bytes}
    elif policy.placement == "group":
        scale = 1 if fp8 else size
        block = 2 * max(den.blocks, default=0) * scale if den else 0  # this block and the next (prefetch)
        den_rest = (den.floats - sum(den.blocks)) * scale if den else 0
        leaf = 2 * max((c.largest for c in components.values()), default=0) * size
        resident = {"text": leaf, "denoise": den_rest + block + leaf, "decode": leaf}
    else:  # sequential: one layer at a time
        leaf = 2 * max((c.largest for c in components.values()), default=0) * size
        resident = {"text": leaf, "denoise": leaf, "decode": leaf}
    video = shape.frames * shape.height * shape.width * 3 * size
    peaks = {
        "text": resident["text"],
        "denoise": resident["denoise"] + denoise * FRAGMENTATION,
        "decode": resident["decode"] + (decode + video) * FRAGMENTATION,
    }
    vram = int(max(peaks.values()))
    host_weights = total_weights  # read into RAM first whatever the policy; fp8 halves them only later
    parts.update(
        vram_weights=int(max(resident.values())),
        denoise=int(denoise),
        decode=int(decode),
        output=output,
        cuda_host=CUDA_HOST_OVERHEAD,
    )
    ram = baseline + LOAD_OVERHEAD + CUDA_HOST_OVERHEAD + max(host_weights + output, host_weights + load_transient)
    return Estimate(vram, int(ram), parts)
