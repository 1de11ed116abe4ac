"""--onnx against torch, end to end, on the CPU: the bundled model's whole step in onnxruntime.

    python bench/bench_onnx.py [--rounds 3] [--clips 2] [--threads N] [--json numbers.json]

Each variant runs in processes of its own (torch, then onnx, then torch ... with the order turned each round), as
a user's run does: one process, one runtime, no other runtime's threads around. In each process the backend is
loaded, warmed up with one clip, then makes --clips clips of every case:

- t2v-64:   text to video at the model's own 64x64, 25 steps, 16 frames (the denoiser alone);
- t2v:      the default request (256x256: the torch upscaler draws the frames larger), 25 steps;
- i2v:      a photograph (scikit-image's, when installed; else a drawn picture) animated by the pixel model;
- fast:     kinemo-starter-fast, 4 steps, the default request.

Figures per case: the least wall seconds per clip over every clip and round (on a shared machine wall time
mostly measures the neighbours; the least is the run they disturbed least), the median, the process's CPU
seconds per clip, the ratio torch / onnx, and the clips' largest difference in 8-bit levels and PSNR against
torch's. The one-time export (an empty cache folder) and a warm load (the graph read back and checked) are timed
apart. --spin adds onnxruntime with spinning idle threads (engine.accel.onnx_denoiser.SPINNING). Prints the
table; --json writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "a red circle moves right on a black background"
I2V_PROMPT = "a red circle moves left"
CASES = ("t2v-64", "t2v", "i2v", "fast")


def picture(folder: Path) -> Path:
    """A photograph for image-to-video: scikit-image's astronaut when installed, else a drawn gradient."""
    import numpy as np
    from PIL import Image

    try:
        from engine.training.camera_eval import photographs

        return photographs()[0]
    except RuntimeError:
        y, x = np.mgrid[0:192, 0:256]
        rgb = np.stack([x % 256, y * 255 // 191, (x + y) % 256], axis=-1).astype(np.uint8)
        path = folder / "gradient.png"
        Image.fromarray(rgb).save(path)
        return path


def requests(work: Path) -> dict:
    from engine.api.request import GenerationRequest

    return {
        "t2v-64": ("kinemo-starter", GenerationRequest(PROMPT, width=64, height=64, seed=1)),
        "t2v": ("kinemo-starter", GenerationRequest(PROMPT, seed=2)),
        "i2v": ("kinemo-starter", GenerationRequest(I2V_PROMPT, image=str(picture(work)), width=64, height=64)),
        "fast": ("kinemo-starter-fast", GenerationRequest(PROMPT, steps=4, seed=3)),
    }


# -- one process: one variant ------------------------------------------------------------------------
def child(variant: str, clips: int, work: Path) -> dict:
    """Load each model with the variant's options, warm up, then time `clips` clips of every case."""
    from engine.backends.threads import idle_threads_sleep

    idle_threads_sleep()  # Kinemo's thread policy before torch is imported, as every run of the engine has it
    import numpy as np

    import engine.accel.onnx_denoiser as onnx_denoiser
    from engine.api.events import Finished, Frames
    from engine.api.run_options import RunOptions
    from engine.backends.base import open_backend

    onnx_denoiser.SPINNING = variant == "onnx-spin"
    options = RunOptions(device="cpu", onnx_denoiser=variant.startswith("onnx"))
    backends, figures = {}, {}
    for case, (model, request) in requests(work).items():
        if model not in backends:
            backends[model] = open_backend(model, options)
            figures[f"load {model}"] = backends[model].load()
        backend = backends[model]
        list(backend.generate(request))  # warm-up: first calls allocate and pick kernels
        wall, cpu, frames = [], [], None
        for _ in range(clips):
            started, started_cpu = time.perf_counter(), time.process_time()
            events = list(backend.generate(request))
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
            assert isinstance(events[-1], Finished)
            frames = np.concatenate([e.frames for e in events if isinstance(e, Frames)])
        np.save(work / f"{variant}-{case}.npy", frames)
        figures[case] = {"wall": wall, "cpu": cpu}
    return figures


def run_child(variant: str, clips: int, work: Path, cache: Path) -> dict:
    env = {**os.environ, "KINEMO_CACHE_DIR": str(cache)}
    out = work / f"{variant}.json"
    command = [sys.executable, __file__, "--child", variant, "--clips", str(clips), "--work", str(work)]
    subprocess.run([*command, "--out", str(out)], env=env, check=True)
    return json.loads(out.read_text())


# -- the parent: rounds, export, quality, table -----------------------------------------------------------
def export_seconds(cache: Path) -> dict:
    """The one-time cost: each bundled model's graph exported into an empty cache folder (and checked)."""
    from engine.accel.onnx_denoiser import OnnxDenoiser
    from engine.kinemo.files import load_model
    from engine.registry.assets import FAST_DIR, STARTER_DIR

    os.environ["KINEMO_CACHE_DIR"] = str(cache)
    seconds = {}
    for name, folder in (("kinemo-starter", STARTER_DIR), ("kinemo-starter-fast", FAST_DIR)):
        model = load_model(folder)
        started = time.perf_counter()
        assert OnnxDenoiser.prepare(model).exported
        seconds[name] = time.perf_counter() - started
    return seconds


def quality(work: Path, case: str, variant: str) -> tuple[int, float]:
    """(largest difference in 8-bit levels, PSNR dB) of the variant's clip against torch's."""
    import numpy as np

    from engine.util.frames import psnr

    a, b = (np.load(work / f"{v}-{case}.npy") for v in ("torch", variant))
    return int(np.abs(a.astype(int) - b.astype(int)).max()), float(psnr(a, b))


def gather(variants: list[str], rounds: int, clips: int, work: Path, cache: Path) -> dict:
    """Every variant's processes, the order turned each round; per case each variant's figures against torch's."""
    runs: dict = {v: [] for v in variants}
    for round_ in range(rounds):
        for variant in variants[round_ % len(variants) :] + variants[: round_ % len(variants)]:
            runs[variant].append(run_child(variant, clips, work, cache))
            print(f"round {round_ + 1}/{rounds}: {variant} done", file=sys.stderr)
    numbers: dict = {}
    for case in CASES:
        row: dict = {}
        for variant, results in runs.items():
            wall = [s for r in results for s in r[case]["wall"]]
            cpu = [s for r in results for s in r[case]["cpu"]]
            row[variant] = {"least": min(wall), "median": statistics.median(wall), "cpu": statistics.median(cpu)}
        for variant in variants[1:]:
            torch_row, this = row["torch"], row[variant]
            this.update({f"ratio_{k}": torch_row[k] / this[k] for k in ("least", "median", "cpu")})
            this["max_level_diff"], this["psnr_db"] = quality(work, case, variant)
        numbers[case] = row
    for model in ("kinemo-starter", "kinemo-starter-fast"):
        numbers[f"warm load {model}"] = {v: min(r[f"load {model}"] for r in runs[v]) for v in runs}
    return numbers


def print_table(numbers: dict, export: dict) -> None:
    for model, seconds in export.items():
        print(f"one-time export of {model}'s graph (empty cache): {seconds:.1f} s")
    for key, value in numbers.items():
        if key.startswith("warm load"):
            loads = ", ".join(f"{v} {s:.2f} s" for v, s in value.items())
            print(f"{key}: {loads} (a graph read back and checked)")
    print(
        f"{'case':8s} {'variant':10s} {'s/clip':>7s} {'ratio':>6s}   {'median':>7s} {'ratio':>6s}   {'CPU s':>6s} {'ratio':>6s}"
        f"   {'levels':>6s} {'PSNR':>6s}"
    )
    for case in CASES:
        for variant, f in numbers[case].items():
            line = f"{case:8s} {variant:10s} {f['least']:7.3f}"
            if variant == "torch":
                print(f"{line} {'':6s}   {f['median']:7.3f} {'':6s}   {f['cpu']:6.2f}")
                continue
            print(
                f"{line} {f['ratio_least']:5.2f}x   {f['median']:7.3f} {f['ratio_median']:5.2f}x   {f['cpu']:6.2f} "
                f"{f['ratio_cpu']:5.2f}x   {f['max_level_diff']:6d} {f['psnr_db']:6.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clips", type=int, default=2, help="timed clips per case in each process")
    parser.add_argument("--threads", type=int, help="KINEMO_THREADS for the runs (default: Kinemo's policy)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--spin", action="store_true", help="also time onnxruntime with spinning idle threads")
    parser.add_argument("--child", choices=("torch", "onnx", "onnx-spin"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        os.environ["KINEMO_THREADS"] = str(args.threads)
    if args.child:
        args.out.write_text(json.dumps(child(args.child, args.clips, args.work)))
        return
    with tempfile.TemporaryDirectory() as folder:
        work, cache = Path(folder) / "work", Path(folder) / "cache"
        work.mkdir()
        export = export_seconds(cache)
        variants = ["torch", "onnx", "onnx-spin"] if args.spin else ["torch", "onnx"]
        numbers = gather(variants, args.rounds, args.clips, work, cache)
    print_table(numbers, export)
    if args.json:
        args.json.write_text(json.dumps({"export_seconds": export, **numbers}, indent=2) + "\n")


if __name__ == "__main__":
    main()
