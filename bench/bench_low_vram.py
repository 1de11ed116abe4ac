"""Low-memory engine, each optimisation against its baseline, side by side in one run.

    python bench/bench_low_vram.py [--model kinemo-starter] [--frames 128] [--repeats 1]

1. Conditioning K/V reuse (on by default, --no-kv-cache off): time per step and the largest
   difference of the frames, for the bundled model and for tiny AnimateDiff and SVD pipelines
   (random weights, built from configs as the tests build them), plus how many conditioning rows
   the cross-attention layers project.
2. Long clips with the rolling temporal K/V cache: `--frames 16` against `--frames N` with the
   bundled model, each in its own process (peak RSS is per process): generation time, peak memory,
   their ratios, the seam test (largest frame-to-frame change over the median) and what the
   analytic checker reads in each 16-frame stretch.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere, installed or not
PROMPT = "a red circle moves right on a black background"


# -- 1. conditioning K/V reuse ---------------------------------------------------------------------
def bundled_kv(model: str, repeats: int) -> list[tuple]:
    from engine.api.events import Finished, Frames
    from engine.api.request import GenerationRequest
    from engine.api.run_options import RunOptions
    from engine.backends.base import open_backend

    rows = []
    for guidance in (1.0, 4.0):
        results = {}
        for cached in (True, False):
            backend = open_backend(model, RunOptions(kv_cache=cached))
            request = GenerationRequest(PROMPT, steps=25, guidance=guidance, seed=0, width=64, height=64)
            times = []
            for _ in range(repeats + 1):  # the first run warms up
                events = list(backend.generate(request))
                times.append(next(e for e in events if isinstance(e, Finished)).stats["seconds_per_step"])
            results[cached] = (float(np.median(times[1:])), next(e.frames for e in events if isinstance(e, Frames)))
        diff = int(np.abs(results[True][1].astype(int) - results[False][1].astype(int)).max())
        rows.append((f"bundled, guidance {guidance:g}", results[False][0], results[True][0], diff, "-"))
    return rows


def diffusers_kv(workdir: Path) -> list[tuple]:
    import torch
    from diffusers import DiffusionPipeline

    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_diffusers.animatediff import save_tiny_animatediff
    from tiny_diffusers.svd import save_tiny_svd

    from engine.caches.diffusers_kv import attach_conditioning_kv

    picture = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    rows = []
    for name, build in (("tiny AnimateDiff", save_tiny_animatediff), ("tiny SVD", save_tiny_svd)):
        pipe = DiffusionPipeline.from_pretrained(build(workdir / name.split()[1]))
        pipe.set_progress_bar_config(disable=True)
        kwargs = dict(height=64, width=64, num_frames=8, num_inference_steps=10, output_type="np")
        kwargs.update(image=picture, decode_chunk_size=8) if "SVD" in name else kwargs.update(
            prompt=PROMPT, guidance_scale=7.5
        )
        layers = [m for m in pipe.unet.modules() if getattr(m, "is_cross_attention", False)]
        counted = []
        for layer in layers:
            layer.to_k.register_forward_hook(lambda m, a, o, c=counted: c.append(a[0].shape[0]))
        runs = {}
        for cached in (False, True):
            handle = attach_conditioning_kv(pipe.unet) if cached else None
            counted.clear()
            started = time.perf_counter()
            frames = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(0)).frames[0]
            runs[cached] = ((time.perf_counter() - started) / 10, frames, sum(counted))
            if handle:
                handle.remove()
        diff = float(np.abs(runs[True][1] - runs[False][1]).max())
        rows.append((name, runs[False][0], runs[True][0], diff, f"{runs[False][2]} -> {runs[True][2]}"))
    return rows


# -- 2. long clips --------------------------------------------------------------------------------
def run_clip(model: str, frames: int, workdir: Path) -> tuple[dict, np.ndarray]:
    run = Path(tempfile.mkdtemp(dir=workdir))
    out, stats = run / f"clip{frames}", run / f"stats{frames}.json"
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "generate",
        PROMPT,
        "-o",
        str(out),
        "--format",
        "png",
        "--model",
        model,
        "--frames",
        str(frames),
        "--width",
        "64",
        "--height",
        "64",
        "--stats",
        str(stats),
    ]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    clip = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(out.glob("*.png"))])
    return json.loads(stats.read_text()), clip


def median_run(model: str, frames: int, workdir: Path, repeats: int) -> tuple[dict, np.ndarray]:
    """Peak memory and time vary from run to run (allocator, threads): the median of a few runs."""
    runs = [run_clip(model, frames, workdir) for _ in range(repeats)]
    stats = {key: float(np.median([r[0][key] for r in runs])) for key in ("generate_seconds", "peak_memory_mb")}
    return stats, runs[0][1]


def seam_ratio(clip: np.ndarray) -> float:
    """Largest frame-to-frame change over the median change (mean absolute difference per step)."""
    steps = np.abs(np.diff(clip.astype(np.float64), axis=0)).mean(axis=(1, 2, 3))
    return float(steps.max() / max(np.median(steps), 1e-9))


def stretch_readings(clip: np.ndarray) -> list[str]:
    from engine.training.checker import check_clip, read_frame

    readings = []
    for start in range(0, len(clip), 16):
        part = check_clip(clip[start : start + 16])
        readings.append(f"{part.colour}/{part.shape}")
    first, last = read_frame(clip[0] / 255.0), read_frame(clip[-1] / 255.0)
    if first.found and last.found:
        dx = last.centroid[0] - first.centroid[0]
        dy = last.centroid[1] - first.centroid[1]
        readings.append(f"centroid moved dx={dx:+.1f} dy={dy:+.1f} px over the clip")
    return readings


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="kinemo-starter")
    p.add_argument("--frames", type=int, default=128)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--clip-repeats", type=int, default=3, help="runs per clip length (medians are reported)")
    opts = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print("1. conditioning K/V reuse (baseline: projected at every step, and per frame in UNets)")
        print(f"{'case':28} {'s/step plain':>13} {'s/step cached':>14} {'max diff':>10} {'rows projected':>18}")
        for name, plain, cached, diff, counted in bundled_kv(opts.model, opts.repeats) + diffusers_kv(workdir):
            print(f"{name:28} {plain:13.4f} {cached:14.4f} {diff:10.3g} {counted:>18}")
        print("   (bundled: max diff in 8-bit levels; diffusers: in [0, 1] float output)")

        print(
            f"\n2. long clips, rolling temporal K/V cache ({opts.model}, 25 steps, 64x64 native, "
            f"median of {opts.clip_repeats} runs each)"
        )
        short_stats, short = median_run(opts.model, 16, workdir, opts.clip_repeats)
        long_stats, long = median_run(opts.model, opts.frames, workdir, opts.clip_repeats)
        print(f"{'frames':>7} {'generate s':>11} {'peak MB':>9} {'seam ratio':>11}  readings per 16 frames")
        for n, stats, clip in ((16, short_stats, short), (opts.frames, long_stats, long)):
            print(
                f"{n:7d} {stats['generate_seconds']:11.2f} {stats['peak_memory_mb']:9.1f} {seam_ratio(clip):11.2f}  "
                + "; ".join(stretch_readings(clip))
            )
        print(
            f"time ratio {long_stats['generate_seconds'] / short_stats['generate_seconds']:.2f}x "
            f"(linear would be {opts.frames / 16:.1f}x), peak memory ratio "
            f"{long_stats['peak_memory_mb'] / short_stats['peak_memory_mb']:.3f}x"
        )


if __name__ == "__main__":
    main()
