"""How much memory a run takes, estimated from what is on disk (nothing is loaded).

The estimator (bytes; everything it reads is on disk, nothing is loaded):

    weights      each component's safetensors headers (tensor shapes and dtypes), at the run dtype
                 (fp32 on the CPU, bf16/fp16 on CUDA); fp8 storage stores the denoiser at one byte
    denoise      den_fixed + den_k x one activation of the denoiser (the family's MemoryCalibration): batch x latent
                 frames x latent tokens x its width (UNet: first block's channels; transformers:
                 heads x head_dim)
    decode       dec_fixed + the VAE's decode of one chunk of frames: chunk x pixels x (K_LIVE x channels
                 at full resolution + k_px) floats; slicing decodes one frame at a time, tiling a tile
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
from pathlib import Path

from engine.planning.headers import Component, read_component, read_json
from engine.planning.policies import Policy
from engine.registry.families import FAMILIES

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
    task: str = "t2v"

    @classmethod
    def of(cls, family: str, request) -> Shape:
        return cls(
            family,
            request.frames,
            request.width,
            request.height,
            request.guidance,
            request.steps,
            "i2v" if request.image else "t2v",
        )


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
    guided = shape.guidance > 1.0
    family = FAMILIES.get(shape.family)
    batch = 2 if guided and not (family and family.cfg_sequential) else 1
    if family is not None and family.unet:
        channels = config.get("block_out_channels") or [320]
        return batch * shape.frames * int(channels[0]) * (shape.height // 8) * (shape.width // 8) * size
    width = _config_int(config, "num_attention_heads", 16) * _config_int(config, "attention_head_dim", 64)
    extra = _config_int(config, "max_text_seq_length", 226) if shape.family == "cogvideox" else 0
    return batch * (latent_tokens(shape, components) + extra) * width * size


def vae_channels(vae: Component | None) -> float:
    """Channels per decoded pixel at the VAE's full resolution (LTX's are spread over a 4x4 patch)."""
    if vae is None:
        return 128.0
    config = vae.config
    if vae.class_name == "AutoencoderKLWan":
        base = config.get("decoder_base_dim") or config.get("base_dim") or 96
        return float(base * (config.get("dim_mult") or [1])[0])
    if vae.class_name == "AutoencoderKLLTXVideo":
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
        tile_h = tile_w = 256
    elif name == "AutoencoderKLLTXVideo":
        chunk = min(f, 16) if tiled else f
        tile_h = tile_w = 512
    elif name == "AutoencoderKLCogVideoX":
        chunk = min(f, 9)  # two latent frames at a time (three in the first batch)
        tile_h, tile_w = int(config.get("sample_height", 480)), int(config.get("sample_width", 720))
    else:  # SVD's temporal decoder: every frame at once, no tiling
        chunk = f
    if tiled and tile_h and tile_w and (h > tile_h or w > tile_w):
        h, w = min(h, tile_h), min(w, tile_w)
    return chunk * h * w


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
    denoise = cal.den_k * unit
    k_live = K_LIVE.get(vae.class_name if vae else "", K_LIVE_DEFAULT)
    decode = (k_live * vae_channels(vae) + cal.k_px) * size * decode_pixels(shape, vae, tiled)
    output = OUTPUT_COPIES * shape.frames * shape.height * shape.width * 3 * 4  # float32 on the host
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


# -- the bundled model ---------------------------------------------------------------------------------
# Fitted by bench/bench_memory_plan.py --calibrate on the starter model (CPU, fp32): a window's activations
# are BUNDLED_K units of batch x window frames x tokens x dim floats, plus BUNDLED_FIXED; the rolling K/V
# cache of a long clip (one preallocated float16 slot pair per step and block) costs BUNDLED_CACHE_RSS
# bytes of RSS per byte it holds: 128-frame clips peaked 43-57 MB above 16-frame ones for its 37.5 MB
# (bench/bench_low_vram.py, medians of 3 runs, two runs), i.e. 1.15-1.5 x.
BUNDLED_K = 48.0
BUNDLED_FIXED = 0
BUNDLED_CACHE_RSS = 1.3
BUNDLED_LOAD = 11 * MB  # RSS loading adds beyond the weights (measured 11 MB)
BUNDLED_ANCHORS, BUNDLED_RECENT = 2, 6  # engine.backends.bundled_windows.ANCHORS, RECENT
# What the fast-path switches add to the process, measured with `kinemo generate --stats` on the starter model
# (CPU, torch 2.13, optimum-quanto 0.2, onnxruntime 1.2x, warm caches): importing optimum.quanto pulls in
# transformers and diffusers (+205 MB RSS), more than int8 saves on the bundled model's 12 MB of weights, so
# int8 raises this small model's peak (it lowers a diffusers model's, whose weights are gigabytes and whose
# process has those libraries loaded already); onnxruntime and one session per block add 97 MB.
QUANTO_IMPORT = 205 * MB
ONNX_RUNTIME = 97 * MB
KINEMO_BASELINE = 224 * MB  # RSS when the bundled model's run is planned (torch and its modules imported)


def accel_bytes(quantize: bool, onnx: bool, loaded: frozenset[str] | set[str] = frozenset()) -> int:
    """RSS the fast-path switches add to a process in which the modules named in loaded are imported already."""
    extra = QUANTO_IMPORT if quantize and "optimum.quanto" not in loaded else 0
    return extra + (ONNX_RUNTIME if onnx and "onnxruntime" not in loaded else 0)


def bundled_cache_bytes(config: dict, frames: int, steps: int, guided: bool) -> int:
    """Peak bytes of the bundled model's rolling temporal K/V cache (0 for a clip its window holds).

    Kept per step and block, in preallocated float16 slots: keys and values of the anchors and the most
    recent frames, 64 tokens each, `steps * depth * (anchors + recent) * tokens * dim * 2 * 2` bytes for
    batch 1, doubled with guidance (engine.caches.temporal_kv)."""
    window = int(config.get("max_frames", 16))
    if frames <= window:
        return 0
    tokens = (int(config.get("size", 64)) // int(config.get("patch", 8))) ** 2
    kept = BUNDLED_ANCHORS + BUNDLED_RECENT
    return (
        steps * int(config.get("depth", 6)) * kept * tokens * int(config.get("dim", 128)) * 2 * 2 * (2 if guided else 1)
    )


def picture_render_bytes(frames: int, width: int, height: int, chunk: int = 4) -> int:
    """What rendering a picture through the camera model's motion holds at its peak: the finished uint8 frames at
    full size, the picture and a chunk of frames in float32 (engine.backends.picture_motion)."""
    return frames * width * height * 3 + (1 + 2 * chunk) * width * height * 3 * 4 + chunk * width * height * 2 * 4


def estimate_bundled(
    folder: str | Path, shape: Shape, baseline: int, accelerator: bool = False, libraries: int = 0, render: int = 0
) -> Estimate:
    """The bundled Kinemo model: weights + one window's activations + the rolling K/V cache of a long clip,
    + the libraries its switches load (accel_bytes) + a picture rendered at full size (picture_render_bytes)."""
    folder = Path(folder)
    config = read_json(folder / "config.json")
    weights = sum(read_component("model", [p]).bytes_at(4) for p in folder.glob("*.safetensors"))
    window = int(config.get("max_frames", 16))
    size, patch, dim = int(config.get("size", 64)), int(config.get("patch", 8)), int(config.get("dim", 128))
    guided = shape.guidance != 1.0
    activations = BUNDLED_K * (2 if guided else 1) * min(shape.frames, window) * (size // patch) ** 2 * dim * 4
    cache = bundled_cache_bytes(config, shape.frames, shape.steps, guided)
    frames_out = shape.frames * size * size * 3
    parts = {
        "baseline": baseline,
        "load": BUNDLED_LOAD,
        "weights": weights,
        "denoise": int(BUNDLED_FIXED + activations),
        "cache": cache,
        "output": frames_out,
        "libraries": libraries,
        "render": render,
    }
    if accelerator:
        vram = (weights + activations + cache) * FRAGMENTATION
        return Estimate(int(vram), int(baseline + CUDA_HOST_OVERHEAD + libraries + weights + frames_out), parts)
    run = BUNDLED_FIXED + max(activations + cache * BUNDLED_CACHE_RSS + frames_out, render)
    return Estimate(0, int(baseline + BUNDLED_LOAD + libraries + weights + run), parts)
