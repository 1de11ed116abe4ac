"""A batch of N jobs on a local Ray runtime with 2 workers against the same N jobs run one after another in one
process, side by side, in one run.

    sequential   `kinemo batch JOBS -o DIR` (app.jobs.runner.run_local): one process, one backend kept loaded,
                 torch's threads on every core
    ray          `kinemo batch JOBS -o DIR --ray --workers 2`: a local Ray runtime started for the batch (its
                 start-up is counted), two actors that each load the model once, one CPU (one torch thread) each;
                 the files come back to the driver as bytes and are written and journaled there
    ray warm     the same on a runtime already started, so the figure is the workers' own: model load, rendering,
                 files back

Each side writes into a fresh folder (so nothing is skipped) and its clips are checked equal to the sequential
side's, frame for frame. The jobs are the bundled starter model's, each with its own prompt and seed.

    python bench/bench_batch.py [--jobs 6] [--steps 10] [--frames 16] [--size 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PROMPTS = ["a red circle moves right", "a blue square moves left", "a green circle moves up"]


def write_jobs(path: Path, count: int, steps: int, frames: int, size: int) -> Path:
    jobs = [
        {
            "prompt": f"{PROMPTS[i % len(PROMPTS)]} on a black background",
            "seed": i,
            "steps": steps,
            "frames": frames,
            "width": size,
            "height": size,
        }
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    return path


def timed_batch(jobs: Path, out: Path, *flags: str) -> float:
    import contextlib
    import io

    from app.cli import main

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the clips' paths; the progress bar stays on stderr
        code = main(["batch", str(jobs), "-o", str(out), *flags])
    if code != 0:
        raise SystemExit(f"the batch {' '.join(flags) or '(sequential)'} ended with status {code}")
    return time.perf_counter() - started


def frames_of(path: Path):
    import imageio_ffmpeg

    return b"".join(list(imageio_ffmpeg.read_frames(str(path)))[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    import ray

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        jobs = write_jobs(folder / "jobs.jsonl", args.jobs, args.steps, args.frames, args.size)
        sequential = timed_batch(jobs, folder / "sequential")
        on_ray = timed_batch(jobs, folder / "ray", "--ray", "--workers", "2")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            warm = timed_batch(jobs, folder / "ray-warm", "--ray", "--workers", "2")
        finally:
            ray.shutdown()
        for side in ("ray", "ray-warm"):
            for i in range(1, args.jobs + 1):
                if frames_of(folder / side / f"{i}.mp4") != frames_of(folder / "sequential" / f"{i}.mp4"):
                    raise SystemExit(f"{side}'s clip {i} differs from the sequential one")

    n = args.jobs
    print(f"\n{n} jobs, kinemo-starter, {args.size}x{args.size}, {args.frames} frames, {args.steps} steps")
    print(f"{'side':<34}{'seconds':>9}{'s/job':>8}{'vs sequential':>15}")
    for name, seconds in (
        ("sequential, one process", sequential),
        ("ray, 2 workers (runtime start-up)", on_ray),
        ("ray, 2 workers (runtime warm)", warm),
    ):
        print(f"{name:<34}{seconds:>9.1f}{seconds / n:>8.2f}{sequential / seconds:>14.2f}x")
    print("every clip equal to the sequential side's, frame for frame")


if __name__ == "__main__":
    main()
