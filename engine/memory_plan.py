"""The memory planner: before a run, how much GPU memory (VRAM) and RAM it will take, and the lightest
way of running it that fits in what is free.

Policies, lightest (fastest) first; each saves more memory than the one before:

    none                everything on the device, the VAE decodes whole chunks
    vae_tiling          + the VAE decodes frame by frame (slicing) and tile by tile (tiling)
    model_offload       + each model (text encoder, denoiser, VAE) is on the GPU only while it runs
    group_offload       + the denoiser's blocks, one at a time, the rest leaf by leaf (diffusers group offloading)
    sequential_offload  + every layer is on the GPU only while it runs; the denoiser's weights are stored
                          in fp8 (diffusers layerwise casting) where its class supports it

`--memory high` runs `none`, `low` runs `model_offload`, `minimal` runs `sequential_offload` and `auto`
the lightest that fits the free memory with a margin (MARGIN). Offloading moves weights between the GPU
and the CPU, so on the CPU (and on Apple MPS, whose memory is the RAM) only `none` and `vae_tiling`
exist: there `low` and `minimal` both mean VAE slicing and tiling.

The estimator (bytes; everything it reads is on disk, nothing is loaded):

    weights      each component's safetensors headers (tensor shapes and dtypes), at the run dtype
                 (fp32 on the CPU, bf16/fp16 on CUDA); fp8 storage stores the denoiser at one byte
    denoise      den_fixed + den_k x one activation of the denoiser (CPU_CAL[family]): batch x latent
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

Where the numbers come from: the CPU constants (CPU_CAL) were fitted to peak-RSS measurements of the
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

import json
import os
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.errors import KinemoError
from engine.events import Notice

GB = 2**30
MB = 2**20


class OutOfMemory(KinemoError):
    """The run did not fit in memory, even with the heavier policy it was retried with."""


# -- policies ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    name: str
    label: str  # for messages: "with <label>"
    placement: str  # "device", "model", "group" or "sequential"
    vae_tiling: bool
    fp8: bool = False  # store the denoiser's weights in fp8 where its class supports it

    @property
    def offloads(self) -> bool:
        return self.placement != "device"


POLICIES: tuple[Policy, ...] = (
    Policy("none", "no offloading", "device", False),
    Policy("vae_tiling", "VAE slicing and tiling", "device", True),
    Policy("model_offload", "model offload + VAE tiling", "model", True),
    Policy("group_offload", "group offload + VAE tiling", "group", True),
    Policy("sequential_offload", "sequential offload + VAE tiling + fp8 weights", "sequential", True, fp8=True),
)
BY_NAME = {p.name: p for p in POLICIES}
MODES = ("auto", "high", "low", "minimal")
MODE_POLICY = {"high": "none", "low": "model_offload", "minimal": "sequential_offload"}
MODE_HELP = {
    "auto": "the lightest policy that fits the free memory",
    "high": "everything on the GPU (fastest, most memory)",
    "low": "model offload + VAE slicing/tiling",
    "minimal": "sequential offload + VAE slicing/tiling + fp8 weights where supported (least memory, slowest)",
}


def check_mode(mode: str) -> str:
    from engine.errors import InvalidRequest

    if mode not in MODES:
        raise InvalidRequest(f"unknown memory setting {mode!r}; choose one of {', '.join(MODES)}")
    return mode


def ladder(accelerator: bool, fp8: bool = True, tiling: bool = True) -> list[Policy]:
    """The policies that make sense here, lightest first: offloading needs a GPU, fp8 storage a GPU and a
    denoiser that supports it, tiling a VAE that has it; a policy that would change nothing is left out."""
    found: list[Policy] = []
    for policy in POLICIES:
        if policy.offloads and not accelerator:
            continue
        label = policy.label
        if policy.vae_tiling and not tiling:
            label = label.replace(" + VAE tiling", "")
        if policy.fp8 and not (fp8 and accelerator):
            label = label.replace(" + fp8 weights", "")
        policy = replace(
            policy, label=label, vae_tiling=policy.vae_tiling and tiling, fp8=policy.fp8 and fp8 and accelerator
        )
        if any((p.placement, p.vae_tiling, p.fp8) == (policy.placement, policy.vae_tiling, policy.fp8) for p in found):
            continue
        found.append(policy)
    return found


def mode_policy(mode: str, policies: list[Policy]) -> Policy | None:
    """The policy a fixed mode runs, among those that make sense here; None for auto."""
    if mode == "auto":
        return None
    wanted = POLICIES.index(BY_NAME[MODE_POLICY[mode]])
    usable = [p for p in policies if POLICIES.index(BY_NAME[p.name]) <= wanted]
    return usable[-1] if usable else policies[0]


# -- reading weights without loading them -----------------------------------------------------------------
DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I64": 8,
    "U64": 8,
    "I32": 4,
    "U32": 4,
    "I16": 2,
    "U16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
FLOATS = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0"}


def read_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (dtype, shape) of every tensor in a safetensors file, from its JSON header alone."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > 100 * MB:
            raise ValueError(f"{path} has an implausible safetensors header ({length} bytes)")
        header = json.loads(handle.read(length))
    return {k: (v["dtype"], tuple(v["shape"])) for k, v in header.items() if k != "__metadata__"}


@dataclass(frozen=True)
class Component:
    """One model of a pipeline (text encoder, denoiser, VAE...) as its weight files describe it."""

    name: str
    class_name: str
    stored: int  # bytes on disk (tensor data only)
    floats: int  # number of floating-point weights
    other: int  # bytes of non-float tensors (kept as they are)
    blocks: tuple[int, ...] = ()  # floats of each block of its top-level ModuleLists (group offloading's unit)
    largest: int = 0  # floats of its largest tensor (sequential offloading's unit, about)
    config: dict = field(default_factory=dict)

    def bytes_at(self, size: int) -> int:
        return self.floats * size + self.other


def weight_files(folder: Path, variant: str | None = None) -> list[Path]:
    """The safetensors files diffusers reads for a component folder (the variant's when asked and present)."""
    files = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
    if variant:
        chosen = [p for p in files if f".{variant}." in p.name]
        if chosen:
            return chosen
    return [p for p in files if not any(f".{v}." in p.name for v in ("fp16", "bf16", "fp32", "fp8"))] or files


def read_component(name: str, paths: list[Path], class_name: str = "", config: dict | None = None) -> Component:
    stored = floats = other = largest = 0
    blocks: dict[tuple[str, str], int] = {}
    for path in paths:
        for key, (dtype, shape) in read_header(path).items():
            count = 1
            for n in shape:
                count *= n
            stored += count * DTYPE_BYTES.get(dtype, 4)
            if dtype in FLOATS:
                floats += count
                largest = max(largest, count)
                parts = key.split(".")
                if len(parts) > 2 and parts[1].isdigit():
                    blocks[(parts[0], parts[1])] = blocks.get((parts[0], parts[1]), 0) + count
            else:
                other += count * DTYPE_BYTES.get(dtype, 4)
    return Component(name, class_name, stored, floats, other, tuple(blocks.values()), largest, dict(config or {}))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_pipeline(
    folder: str | Path, variant: str | None = None, adapter: str | Path | None = None
) -> dict[str, Component]:
    """Every weighted component of a diffusers folder (plus a motion adapter folder or file), from headers."""
    folder = Path(folder)
    index = _read_json(folder / "model_index.json")
    found: dict[str, Component] = {}
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[1] is None:
            continue
        sub = folder / name
        paths = weight_files(sub, variant) if sub.is_dir() else []
        if paths:
            config = _read_json(sub / "config.json")
            try:
                found[name] = read_component(name, paths, spec[1], config)
            except (OSError, ValueError, KeyError, TypeError, struct.error):
                continue  # unreadable: left out of the estimate; loading it says what is wrong
    if adapter is not None:
        adapter = Path(adapter)
        paths = weight_files(adapter) if adapter.is_dir() else [adapter]
        config = _read_json(adapter / "config.json") if adapter.is_dir() else {}
        try:
            found["motion_adapter"] = read_component("motion_adapter", paths, "MotionAdapter", config)
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            pass
    return found


# -- calibration ----------------------------------------------------------------------------------------
# Fitted on CPU/fp32 by bench/bench_memory_plan.py --calibrate (see the module docstring). Per family:
#   den_fixed   MB the first denoising step adds whatever the size (oneDNN buffers, text encoding, ...)
#   den_k       denoiser activation units alive at the step's peak
#   dec_fixed   MB the decode phase holds whatever the size (what the allocator kept from denoising)
#   k_px        extra floats per decoded pixel beyond K_LIVE x channels (the 3D VAEs' conv workspaces)
CPU_CAL = {  # the means of two --calibrate runs (run-to-run spread: up to 10 % of a case's peak)
    "animatediff": dict(den_fixed=21, den_k=48.0, dec_fixed=56, k_px=22.0),
    "svd": dict(den_fixed=15, den_k=66.0, dec_fixed=240, k_px=26.0),
    "wan": dict(den_fixed=33, den_k=12.0, dec_fixed=55, k_px=170.0),
    "ltx": dict(den_fixed=11, den_k=12.0, dec_fixed=25, k_px=6.0),
    "cogvideox": dict(den_fixed=14, den_k=12.0, dec_fixed=10, k_px=388.0),
}
# (den_k 12 for the transformer families is not fitted: their tiny denoisers' activations are too small
# to show; it counts a block's tensors of the model's width: hidden, norm, q, k, v, attention, 4x MLP, ...)
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
MARGIN = 0.20  # a policy fits when its need x (1 + MARGIN) + MARGIN_BYTES is at most what is free
MARGIN_BYTES = 256 * MB
TYPICAL_BASELINE = 430 * MB  # RSS after importing torch and a diffusers pipeline (measured, CPU); used when
# the plan is made in another process (the studio) and the engine's own cannot be read
FP8_DENOISERS = {  # classes that name the layers to keep in full precision (_skip_layerwise_casting_patterns)
    "UNetMotionModel",
    "UNet2DConditionModel",
    "WanTransformer3DModel",
    "LTXVideoTransformer3DModel",
    "CogVideoXTransformer3DModel",
}
DENOISERS = ("transformer", "unet")
TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "image_encoder")
TILING_VAES = {"AutoencoderKL", "AutoencoderKLWan", "AutoencoderKLLTXVideo", "AutoencoderKLCogVideoX"}
CFG_SEQUENTIAL = {"wan"}  # families that run the conditional and unconditional passes one after the other


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


def denoise_unit(shape: Shape, components: dict[str, Component], size: int) -> int:
    """Bytes of one activation of the denoiser: batch x latent frames x latent tokens x width."""
    den = denoiser(components)
    config = den.config if den else {}
    guided = shape.guidance > 1.0
    batch = 2 if guided and shape.family not in CFG_SEQUENTIAL else 1
    if shape.family in ("animatediff", "svd"):
        channels = config.get("block_out_channels") or [320]
        return batch * shape.frames * int(channels[0]) * (shape.height // 8) * (shape.width // 8) * size
    width = _config_int(config, "num_attention_heads", 16) * _config_int(config, "attention_head_dim", 64)
    if shape.family == "ltx":
        frames, spatial = (shape.frames - 1) // 8 + 1, 32 * _config_int(config, "patch_size", 1)
        extra = 0
    else:  # wan, cogvideox: 4x temporal, 8x spatial, then a patch of 2
        frames, spatial = (shape.frames - 1) // 4 + 1, 8 * _config_int(config, "patch_size", 2)
        extra = _config_int(config, "max_text_seq_length", 226) if shape.family == "cogvideox" else 0
    tokens = frames * (shape.height // spatial) * (shape.width // spatial) + extra
    return batch * tokens * width * size


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
    tile_h = tile_w = None
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
    if tiled and tile_h and (h > tile_h or w > tile_w):
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
    cal = CPU_CAL.get(shape.family, CPU_CAL["wan"])
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
    denoise = cal["den_k"] * unit
    k_live = K_LIVE.get(vae.class_name if vae else "", K_LIVE_DEFAULT)
    decode = (k_live * vae_channels(vae) + cal["k_px"]) * size * decode_pixels(shape, vae, tiled)
    output = OUTPUT_COPIES * shape.frames * shape.height * shape.width * 3 * 4  # float32 on the host
    parts = {"baseline": baseline, "load": LOAD_OVERHEAD, "weights": total_weights}

    if not accelerator:  # everything in RAM, fitted constants included
        run = max(cal["den_fixed"] * MB + denoise, cal["dec_fixed"] * MB + decode + output)
        parts.update(
            denoise=int(cal["den_fixed"] * MB + denoise), decode=int(cal["dec_fixed"] * MB + decode), output=output
        )
        ram = baseline + LOAD_OVERHEAD + max(total_weights + run, total_weights + load_transient)
        return Estimate(0, int(ram), parts)

    # on a GPU: which weights are there during each phase
    den_name = den.name if den else None
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
BUNDLED_ANCHORS, BUNDLED_RECENT = 2, 6  # engine.backends.bundled.ANCHORS, RECENT


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


def estimate_bundled(folder: str | Path, shape: Shape, baseline: int, accelerator: bool = False) -> Estimate:
    """The bundled Kinemo model: weights + one window's activations + the rolling K/V cache of a long clip."""
    folder = Path(folder)
    config = _read_json(folder / "config.json")
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
    }
    if accelerator:
        vram = (weights + activations + cache) * FRAGMENTATION
        return Estimate(int(vram), int(baseline + CUDA_HOST_OVERHEAD + weights + frames_out), parts)
    run = BUNDLED_FIXED + activations + cache * BUNDLED_CACHE_RSS + frames_out
    return Estimate(0, int(baseline + BUNDLED_LOAD + weights + run), parts)


# -- free memory ---------------------------------------------------------------------------------------
def process_rss() -> int:
    """Resident bytes of this process now."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        pass
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return TYPICAL_BASELINE


def free_ram() -> int | None:
    """Bytes of RAM available to a new allocation without swapping (MemAvailable)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def free_vram(device: str) -> int | None:
    """Free bytes on a CUDA device, counting what this process's torch holds in its cache as free."""
    if not device.startswith("cuda"):
        return None
    import torch

    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    free, _ = torch.cuda.mem_get_info(index)
    return int(free + torch.cuda.memory_reserved(index))


def gpu_without_torch() -> tuple[str, int] | None:
    """("cuda", free bytes of GPU 0) from nvidia-smi, for a process that must not import torch (the studio)."""
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            return "cuda", free_vram("cuda")
        return None
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
        return "cuda", int(out.splitlines()[0].strip()) * MB
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


# -- the plan -------------------------------------------------------------------------------------------
def gb(n: int | None) -> str:
    """Bytes for a message: "3.1 GB", or "586 MB" below a gigabyte."""
    return "?" if n is None else f"{n / GB:.1f} GB" if n >= 0.995 * GB else f"{n / MB:.0f} MB"


@dataclass(frozen=True)
class MemoryPlan:
    mode: str
    policy: Policy
    estimate: Estimate
    device: str
    free_vram: int | None
    free_ram: int | None
    fits: bool
    policies: tuple[Policy, ...] = ()  # the ladder here, lightest first (the retry takes the next one)
    notes: tuple[str, ...] = ()

    @property
    def accelerator(self) -> bool:
        return self.device.startswith("cuda")

    def next_policy(self, after: Policy | None = None) -> Policy | None:
        """The next heavier policy than after (default: the chosen one), for a retry after running out of memory."""
        names = [p.name for p in self.policies]
        after = after or self.policy
        index = names.index(after.name) if after.name in names else len(names)
        return self.policies[index + 1] if index + 1 < len(self.policies) else None

    def text(self) -> str:
        """One line: "memory: about 3.1 GB VRAM + 5.2 GB RAM with model offload (free: ...)"."""
        e = self.estimate
        if self.accelerator:
            need = f"about {gb(e.vram)} VRAM + {gb(e.ram)} RAM"
            free = f"free: {gb(self.free_vram)} VRAM, {gb(self.free_ram)} RAM"
        else:
            need = f"about {gb(e.ram)} RAM on the {self.device.upper() if self.device == 'mps' else 'CPU'}"
            free = f"free: {gb(self.free_ram)} RAM"
        how = self.policy.label if self.policy.name != "none" or self.accelerator else "no VAE slicing/tiling"
        line = f"memory: {need}{f' with {how}' if self.policy.label else ''} ({free}; --memory {self.mode})"
        if not self.fits:
            line += "; it may not fit"
        return "; ".join([line, *self.notes])


def _fits(estimate: Estimate, accelerator: bool, vram: int | None, ram: int | None) -> bool:
    def ok(need: int, free: int | None) -> bool:
        return free is None or need * (1 + MARGIN) + MARGIN_BYTES <= free

    if accelerator:
        return ok(estimate.vram, vram) and ok(estimate.extra_ram, ram)
    return ok(estimate.extra_ram, ram)


def choose(mode: str, policies: list[Policy], estimate_for, accelerator: bool, vram: int | None, ram: int | None):
    """(policy, estimate, fits): the mode's policy, or for auto the lightest that fits (else the heaviest)."""
    fixed = mode_policy(check_mode(mode), policies)
    if fixed is not None:
        e = estimate_for(fixed)
        return fixed, e, _fits(e, accelerator, vram, ram)
    for policy in policies:
        e = estimate_for(policy)
        if _fits(e, accelerator, vram, ram):
            return policy, e, True
    return policies[-1], estimate_for(policies[-1]), False


def plan_diffusers(
    components: dict[str, Component],
    shape: Shape,
    mode: str = "auto",
    device: str = "cpu",
    baseline: int | None = None,
    vram: int | None = None,
    ram: int | None = None,
    dtype_bytes: int | None = None,
) -> MemoryPlan:
    """Choose a policy for a diffusers pipeline. vram/ram: free bytes (None: read them now)."""
    accelerator = device.startswith("cuda")
    baseline = process_rss() if baseline is None else baseline
    ram = free_ram() if ram is None else ram
    if accelerator and vram is None:
        vram = free_vram(device)
    fp8, tiling = supports_fp8(components), supports_tiling(components)
    policies = ladder(accelerator, fp8, tiling)
    policy, estimate, fits = choose(
        mode,
        policies,
        lambda p: estimate_diffusers(components, shape, p, accelerator, baseline, dtype_bytes),
        accelerator,
        vram,
        ram,
    )
    notes = []
    if not accelerator:
        notes.append(
            "offloading needs a GPU, so on the CPU only VAE slicing/tiling applies"
            if tiling
            else "offloading needs a GPU and this VAE has no tiling, so nothing changes the memory on the CPU"
        )
    elif policy.name == "sequential_offload" and not fp8:
        notes.append("this model's denoiser cannot store its weights in fp8")
    return MemoryPlan(mode, policy, estimate, device, vram, ram, fits, tuple(policies), tuple(notes))


def plan_bundled(
    folder: str | Path,
    shape: Shape,
    mode: str = "auto",
    device: str = "cpu",
    baseline: int | None = None,
    ram: int | None = None,
    vram: int | None = None,
) -> MemoryPlan:
    """The bundled model has one way to run: the plan is its estimate against what is free."""
    check_mode(mode)
    accelerator = device.startswith("cuda")
    baseline = process_rss() if baseline is None else baseline
    ram = free_ram() if ram is None else ram
    if accelerator and vram is None:
        vram = free_vram(device)
    estimate = estimate_bundled(folder, shape, baseline, accelerator)
    policy = replace(BY_NAME["none"], label="")  # one way to run: nothing to name
    notes = (
        ("the bundled model is small: it runs the same whatever --memory says",) if mode not in ("auto", "high") else ()
    )
    return MemoryPlan(
        mode, policy, estimate, device, vram, ram, _fits(estimate, accelerator, vram, ram), (policy,), notes
    )


def plan_bundled_backend(backend, request, mode: str = "auto") -> MemoryPlan:
    """The plan of a BundledBackend run, with this process's baseline measured once the run's modules are in."""
    import torch  # noqa: F401 - what the run imports, counted in the baseline

    import engine.caches.temporal_kv  # noqa: F401
    import engine.models.kinemo_dit  # noqa: F401
    import engine.sampling.ddim  # noqa: F401

    held = 0
    if getattr(backend, "model", None) is not None:  # loaded by an earlier run: its weights are in the plan
        held = sum(t.numel() * t.element_size() for t in backend.model.state_dict().values())
    free = free_ram()
    shape = Shape("kinemo", request.frames, request.width, request.height, request.guidance, request.steps)
    return plan_bundled(
        backend.folder,
        shape,
        mode,
        backend.device,
        max(process_rss() - held, 0),
        ram=None if free is None else free + held,
    )


@dataclass
class MemoryNotice(Notice):
    """The memory plan of the run that starts, as an engine event: a Notice whose message is the plan's
    line (every consumer of Notice shows it), carrying the plan itself for those who want more."""

    plan: MemoryPlan | None = None


# -- applying a policy (torch from here on) -----------------------------------------------------------------
def set_vae_tiling(pipe, on: bool) -> None:
    """VAE slicing (one frame at a time) and tiling (one tile at a time), where the VAE has them."""
    vae = getattr(pipe, "vae", None)
    for flag, enable, disable in (
        ("use_slicing", "enable_slicing", "disable_slicing"),
        ("use_tiling", "enable_tiling", "disable_tiling"),
    ):
        if vae is not None and hasattr(vae, flag):
            getattr(vae, enable if on else disable)()


def _top_level_blocks(module) -> bool:
    import torch

    return any(isinstance(child, (torch.nn.ModuleList, torch.nn.Sequential)) for child in module.children())


def apply_policy(pipe, policy: Policy, device: str, dtype) -> None:
    """Place a pipeline loaded on the CPU as policy says. Offloading policies need an accelerator device;
    on the CPU they are refused (ladder() never offers them there) unless device is given as "cpu" on
    purpose by a test, which exercises the same diffusers calls with the CPU standing in for the GPU."""
    import torch

    if policy.fp8:
        den = getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)
        if den is not None and getattr(type(den), "_skip_layerwise_casting_patterns", None) is not None:
            den.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
    if policy.placement == "device":
        pipe.to(device)
    elif policy.placement == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif policy.placement == "group":
        from diffusers.hooks import apply_group_offloading

        target = torch.device(device)
        stream = target.type == "cuda"
        for name, component in pipe.components.items():
            if not isinstance(component, torch.nn.Module):
                continue
            blocks = name in DENOISERS and _top_level_blocks(component)
            kwargs = dict(
                onload_device=target,
                offload_device=torch.device("cpu"),
                use_stream=stream,
                offload_type="block_level" if blocks else "leaf_level",
            )
            if blocks:
                kwargs["num_blocks_per_group"] = 1
            if hasattr(component, "enable_group_offload"):
                component.enable_group_offload(**kwargs)
            else:
                apply_group_offloading(component, **kwargs)
    elif policy.placement == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        raise ValueError(f"unknown placement {policy.placement!r}")
    set_vae_tiling(pipe, policy.vae_tiling)


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's OutOfMemoryError, Python's MemoryError, or a RuntimeError that says it ran out of memory."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        words in text for words in ("out of memory", "can't allocate memory", "cannot allocate memory")
    )


def free_device_memory(device: str | None) -> None:
    """Collect garbage and hand the GPU's cached blocks back to the driver."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and device and device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


# -- planning without torch (the studio) -----------------------------------------------------------------
def preview_plan(
    model: str,
    frames: int,
    width: int,
    height: int,
    steps: int = 25,
    guidance: float = 1.0,
    mode: str = "auto",
    image: bool = False,
) -> str:
    """The plan's line for a model before a run, from this process (no torch imported): reads weight
    headers and free memory, so call it off the UI thread. The engine prints the exact plan at the start."""
    from engine.backends import STARTER_ID
    from engine.model_info import model_options

    options = model_options(model)
    gpu = gpu_without_torch()
    device, vram = gpu if gpu else ("cpu", None)
    baseline = TYPICAL_BASELINE
    if options.family == "kinemo":
        from engine.model_files import STARTER_DIR

        folder = STARTER_DIR if model == STARTER_ID else Path(model).expanduser()
        shape = Shape("kinemo", frames, width, height, guidance, steps)
        return plan_bundled(folder, shape, mode, "cpu", baseline).text()  # the studio runs it on the CPU
    components = _components_on_disk(model)
    if components is None:
        if options.needs_download:
            size = f" (the download is {options.disk_gb:g} GB)" if options.disk_gb else ""
            return f"memory: not estimated until {options.name} is on disk{size}"
        return "memory: not estimated (the model's weights cannot be read)"
    shape = Shape(options.family, frames, width, height, guidance, steps, "i2v" if image else "t2v")
    return plan_diffusers(components, shape, mode, device, baseline, vram).text()


def _components_on_disk(model: str) -> dict[str, Component] | None:
    folder = Path(model).expanduser()
    variant, adapter = None, None
    if not folder.is_dir():
        from engine.catalog import find_entry
        from engine.hub import local_paths
        from engine.model_info import hub_model

        hub = hub_model(model)
        found = local_paths(hub) if hub is not None else None
        if found is None:
            return None
        folder, adapter = found
        entry = find_entry(model)
        variant = entry.variant if entry else None
    try:
        components = read_pipeline(folder, variant, adapter)
    except (OSError, ValueError):
        return None
    return components or None
