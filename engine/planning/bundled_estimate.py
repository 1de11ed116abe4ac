"""How much memory a run of the bundled Kinemo model takes (engine.planning.estimate does the diffusers models):
its weights, one window's activations, the rolling K/V cache of a long clip, the libraries its fast-path switches
load and a picture rendered at full size. Pure Python, like the rest of the planner.
"""

from __future__ import annotations

from pathlib import Path

from engine.planning.estimate import CUDA_HOST_OVERHEAD, FRAGMENTATION, MB, Estimate, Shape
from engine.planning.headers import read_component, read_json

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
