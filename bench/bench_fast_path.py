"""The bundled model's fast paths side by side: torch vs onnxruntime temporal attention, fp32 vs int8.

    python bench/bench_fast_path.py [--repeats 3] [--threads N] [--device cpu] [--keep-cache]

In one run, on the shipped model (or --model FOLDER):
1. temporal attention block time, torch vs onnxruntime (fp32 and int8 weights), x = (n, 16, d) with
   n = 64 tokens x batch (batch 1: guidance 1; batch 2: classifier-free guidance);
2. end-to-end seconds per step and per clip (25 steps, 16 frames, 64x64) for fp32, int8,
   ONNX temporal attention and int8 + ONNX, plus the one-time cost of preparing each (quantising,
   exporting) against loading from the cache;
3. weight memory fp32 vs int8 (the denoiser, and the whole model with its fp32 text encoder);
4. quality: PSNR and the largest 8-bit difference of each clip against the fp32 torch clip;
5. teacher (25 steps) vs distilled student: CPU seconds per clip, and held-out quality per attribute
   with the deltas (read from each model's evaluation.json, or measured in the run with --evaluate).

Timings are CPU time of the process (time.process_time) and the least wall time over interleaved
runs: on a shared machine wall time mostly measures the neighbours. On a GPU read the wall times.

The int8 weights and ONNX graphs go to a fresh temporary cache folder (so the cold figures are
real) unless --keep-cache uses Kinemo's own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.util.frames import psnr  # noqa: E402

PROMPTS = [
    ("a red circle moves right on a black background", 0),
    ("a blue square moves up on a gray background", 3),
    ("a green triangle grows on a white background", 7),
]
VARIANTS = {
    "fp32": {},
    "int8": {"quantize": "int8"},
    "onnx": {"onnx_temporal": True},
    "int8+onnx": {"quantize": "int8", "onnx_temporal": True},
}


def interleaved(fns: dict, repeats: int, warmup: int = 2, sync=lambda: None) -> dict:
    """Each fn() over repeats rounds, the fns called in turn each round (who goes first rotates), so a
    busy machine slows them alike: {name: (least wall seconds, median CPU seconds of the process)}.

    On a shared machine wall time mostly measures the neighbours; CPU time (time.process_time, all of
    the process's threads) measures the work, and equals wall time when the process runs alone on one
    thread."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for round_ in range(repeats):
        names = list(fns)[round_ % len(fns) :] + list(fns)[: round_ % len(fns)]
        for name in names:
            started, started_cpu = time.perf_counter(), time.process_time()
            fns[name]()
            sync()
            cpu[name].append(time.process_time() - started_cpu)
            wall[name].append(time.perf_counter() - started)
    return {name: (min(wall[name]), statistics.median(cpu[name])) for name in fns}


def block_times(folder: Path, device: str, repeats: int) -> list[tuple]:
    """Per block: torch vs onnxruntime, fp32 and int8 weights, batch 1 and 2; ms (min, median) averaged over blocks."""
    from engine.accel.onnx_temporal import OnnxTemporal
    from engine.accel.quantize import quantize_model
    from engine.kinemo.files import load_model

    rows = []
    for label, model in (
        ("fp32", load_model(folder).to(device)),
        ("int8", quantize_model(load_model(folder)).to(device)),
    ):
        fast = OnnxTemporal.prepare(model, device)
        dim, frames = model.config.dim, model.config.max_frames
        tokens = model.config.grid**2
        for batch in (1, 2):
            x = torch.randn(tokens * batch, frames, dim, device=device)
            positions = torch.arange(frames, device=device)
            sums = {"torch": np.zeros(2), "onnxrt": np.zeros(2)}
            with fast.attached(model), torch.inference_mode():
                for block in model.blocks:
                    onnx_block, torch_block = block.temporal, block.temporal.torch_module
                    calls = {
                        "torch": lambda b=torch_block, x=x, p=positions: b(x, p),
                        "onnxrt": lambda b=onnx_block, x=x, p=positions: b(x, p),
                    }
                    got = interleaved(calls, repeats, sync=torch.cuda.synchronize if x.is_cuda else lambda: None)
                    for name, pair in got.items():
                        sums[name] += pair
            n = len(model.blocks)
            rows.append(
                (label, f"({tokens * batch}, {frames}, {dim})", *(sums["torch"] / n * 1e3), *(sums["onnxrt"] / n * 1e3))
            )
    return rows


def end_to_end(folder: Path, device: str, repeats: int, steps: int) -> tuple[dict, dict]:
    """Each variant loaded cold (empty cache) then warm; clips made in turn, variant by variant per prompt."""
    from engine.api.events import Finished
    from engine.api.request import GenerationRequest
    from engine.api.run_options import RunOptions
    from engine.backends.bundled import BundledBackend

    backends, loads = {}, {}
    for name, options in VARIANTS.items():
        cold = BundledBackend(folder, model_id=str(folder), options=RunOptions(device=device, **options))
        cold_load = cold.load()  # quantises / exports into an empty cache
        backends[name] = BundledBackend(folder, model_id=str(folder), options=RunOptions(device=device, **options))
        loads[name] = (cold_load, backends[name].load())  # reads them back
    wall = {name: [] for name in VARIANTS}
    cpu = {name: [] for name in VARIANTS}
    clips = {}
    for round_ in range(repeats):
        for prompt, seed in PROMPTS:
            request = GenerationRequest(prompt, steps=steps, frames=16, width=64, height=64, seed=seed)
            names = list(VARIANTS)[round_ % 4 :] + list(VARIANTS)[: round_ % 4]
            for name in names:
                started_cpu = time.process_time()
                events = list(backends[name].generate(request))
                cpu[name].append((time.process_time() - started_cpu) / steps)
                assert isinstance(events[-1], Finished)
                wall[name].append(events[-1].stats["seconds_per_step"])
                clips[(name, prompt)] = events[-2].frames
    figures = {
        name: {
            "wall": min(wall[name]),
            "cpu": statistics.median(cpu[name]),
            "cold load s": loads[name][0],
            "warm load s": loads[name][1],
        }
        for name in VARIANTS
    }
    return figures, clips


def teacher_vs_student(teacher: Path, student: Path, repeats: int) -> dict:
    """CPU seconds per clip: the teacher at 25 steps against the distilled student at its own steps."""
    from engine.api.request import GenerationRequest
    from engine.backends.bundled import BundledBackend

    runs = {"teacher": (BundledBackend(teacher), 25), "student": (BundledBackend(student, model_id="fast"), None)}
    seconds = {name: [] for name in runs}
    for _ in range(repeats):
        for prompt, seed in PROMPTS:
            for name, (backend, steps) in runs.items():
                steps = steps or backend.defaults()["steps"]
                started = time.process_time()
                list(
                    backend.generate(GenerationRequest(prompt, steps=steps, frames=16, width=64, height=64, seed=seed))
                )
                seconds[name].append(time.process_time() - started)
    return {
        name: (statistics.median(values), runs[name][1] or runs[name][0].defaults()["steps"])
        for name, values in seconds.items()
    }


QUALITY = [  # (label, section, key) of engine.training.evaluate's report
    ("t2v colour", "text_to_video", "colour_accuracy"),
    ("t2v shape", "text_to_video", "shape_accuracy"),
    ("t2v motion", "text_to_video", "motion_accuracy"),
    ("t2v background", "text_to_video", "background_accuracy"),
    ("t2v consistency", "text_to_video", "temporal_consistency"),
    ("i2v motion", "image_to_video", "motion_accuracy"),
    ("i2v colour", "image_to_video", "colour_accuracy"),
    ("i2v shape", "image_to_video", "shape_accuracy"),
    ("i2v PSNR dB", "image_to_video", "first_frame_psnr_mean"),
    ("camera move", "camera", "move_accuracy"),
]


def held_out_quality(teacher: Path, student: Path, measure: bool) -> tuple[dict, dict, str]:
    """Each model's held-out scores: measured now (engine.training.evaluate, a few minutes) or read from its evaluation.json."""
    if not measure:
        teacher_scores, student_scores = (json.loads((f / "evaluation.json").read_text()) for f in (teacher, student))
        return (
            teacher_scores,
            student_scores,
            "each folder's evaluation.json, written by python -m engine.training.evaluate",
        )
    from engine.backends.bundled import BundledBackend
    from engine.training.evaluate import CAMERA_PICTURES, IMAGE_PROMPTS, evaluate

    runs = {}
    for name, folder, steps in (("teacher", teacher, 25), ("student", student, None)):
        backend = BundledBackend(folder)
        runs[name] = evaluate(
            backend,
            steps or backend.defaults()["steps"],
            1.0,
            seeds=1,
            image_prompts=IMAGE_PROMPTS,
            camera_pictures=CAMERA_PICTURES,
            progress=False,
        )
    return runs["teacher"], runs["student"], "measured in this run by engine.training.evaluate"


def print_quality(teacher: dict, student: dict, source: str) -> None:
    print(f"\nteacher ({teacher['steps']} steps) vs student ({student['steps']} steps), held-out prompts; {source}")
    print(f"  {'attribute':16} {'teacher':>8} {'student':>8} {'delta':>7}")
    for label, section, key in QUALITY:
        t, s = teacher[section][key], student[section][key]
        print(f"  {label:16} {t:8.1f} {s:8.1f} {s - t:+7.1f}")
    counts = f"{teacher['text_to_video']['clips']} t2v, {teacher['image_to_video']['clips']} i2v, {teacher['camera']['clips']} camera clips"
    print(f"  ({counts}; accuracies and consistency in %)")


def main() -> None:
    from engine.accel.quantize import quantize_model, weight_bytes
    from engine.kinemo.files import load_model
    from engine.registry.assets import FAST_DIR, STARTER_DIR

    p = argparse.ArgumentParser()
    p.add_argument("--model", type=Path, default=STARTER_DIR)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--repeats", type=int, default=3, help="rounds of clips (3 prompts x 4 variants each); block timings use 20x"
    )
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--threads", type=int, help="torch and onnxruntime intra-op threads (default: torch's)")
    p.add_argument("--keep-cache", action="store_true", help="use Kinemo's cache folder instead of a fresh one")
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="measure teacher and student quality in this run (a few minutes) instead of reading evaluation.json",
    )
    opts = p.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)

    with tempfile.TemporaryDirectory() as tmp:
        if not opts.keep_cache:
            os.environ["KINEMO_CACHE_DIR"] = tmp
        print(f"model {opts.model}, device {opts.device}, {torch.get_num_threads()} threads, torch {torch.__version__}")

        # 1. weight memory
        fp32 = load_model(opts.model)
        fp32_den, fp32_all = weight_bytes(fp32, denoiser_only=True), weight_bytes(fp32)
        int8 = quantize_model(load_model(opts.model))
        int8_den, int8_all = weight_bytes(int8, denoiser_only=True), weight_bytes(int8)
        print("\nweight memory           fp32 MB   int8 MB   ratio")
        print(f"  denoiser            {fp32_den / 2**20:9.2f} {int8_den / 2**20:9.2f} {int8_den / fp32_den:7.3f}")
        print(
            f"  whole model         {fp32_all / 2**20:9.2f} {int8_all / 2**20:9.2f} {int8_all / fp32_all:7.3f}   (text encoder stays fp32)"
        )

        # 2. end to end (cold first, so the export and quantisation times are real)
        figures, clips = end_to_end(opts.model, opts.device, opts.repeats, opts.steps)

        # 3. blocks
        rows = block_times(opts.model, opts.device, opts.repeats * 20)
        print("\ntemporal attention, ms per block, mean over the blocks: CPU = median CPU time, wall = least wall time")
        print(
            f"  {'weights':8} {'x shape':16} {'torch CPU':>10} {'onnxrt CPU':>11} {'onnx/torch':>10} {'torch wall':>11} {'onnxrt wall':>12}"
        )
        for label, shape, t_wall, t_cpu, o_wall, o_cpu in rows:
            print(
                f"  {label:8} {shape:16} {t_cpu:10.3f} {o_cpu:11.3f} {o_cpu / t_cpu:10.2f} {t_wall:11.3f} {o_wall:12.3f}"
            )

        print(
            f"\nend to end: {opts.steps} steps, 16 frames, 64x64, guidance 1; {len(PROMPTS)} prompts x {opts.repeats} rounds, variants in turn"
        )
        header = (
            f"  {'variant':10} {'CPU s/step':>10} {'clip CPU s':>10} {'vs fp32':>8} {'wall s/step':>11} "
            f"{'cold load s':>12} {'warm load s':>12} {'PSNR dB':>8} {'max diff':>9}"
        )
        print(header)
        base = figures["fp32"]["cpu"]
        for name, f in figures.items():
            scores = [psnr(clips[("fp32", prompt)], clips[(name, prompt)]) for prompt, _ in PROMPTS]
            worst = max(
                int(np.abs(clips[("fp32", pr)].astype(int) - clips[(name, pr)].astype(int)).max()) for pr, _ in PROMPTS
            )
            shown = "inf" if min(scores) == float("inf") else f"{min(scores):.1f}"
            print(
                f"  {name:10} {f['cpu']:10.3f} {f['cpu'] * opts.steps:10.2f} {f['cpu'] / base:8.2f} {f['wall']:11.3f} "
                f"{f['cold load s']:12.2f} {f['warm load s']:12.2f} {shown:>8} {worst:9d}"
            )
        print("  CPU s/step: median CPU time of the process per step (whole generate call); wall s/step: the least")
        print(
            "  load: cold = quantise / export into an empty cache (int8+onnx reuses the int8 entry), warm = from the cache"
        )
        print("  PSNR: the worst of the prompts against the fp32 torch clip; max diff: largest 8-bit difference")

        # 4. teacher vs distilled student
        if (FAST_DIR / "config.json").is_file():
            timing = teacher_vs_student(opts.model, FAST_DIR, opts.repeats)
            (t, t_steps), (s, s_steps) = timing["teacher"], timing["student"]
            print(
                f"\nteacher ({t_steps} steps) vs distilled student ({s_steps} steps), CPU s per 16-frame clip, median"
            )
            print(f"  teacher {t:.3f}   student {s:.3f}   speed-up {t / s:.2f}x")
            if opts.evaluate or all((folder / "evaluation.json").is_file() for folder in (opts.model, FAST_DIR)):
                print_quality(*held_out_quality(opts.model, FAST_DIR, opts.evaluate))
            else:
                print(
                    "  quality: no evaluation.json beside both models; run python -m engine.training.evaluate, or pass --evaluate"
                )


if __name__ == "__main__":
    main()
