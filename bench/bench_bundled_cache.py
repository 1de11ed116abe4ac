"""The bundled model's step cache (engine.caches.bundled_step_cache): time per clip against every evaluation figure.

    python bench/bench_bundled_cache.py [--thresholds 0.2,0.3] [--t2v 4] [--i2v 1] [--camera 1] [--steps 25]

In one run, on the shipped model (kinemo-starter): the held-out evaluation of engine.training.evaluate on a small,
evenly spread part of its held-out set (text-to-video combinations, image-to-video clips, camera pictures on the
pixel model, as the evaluation runs them), once with the cache off and once per threshold, clip for clip the same
requests and seeds. Printed per setting: CPU seconds per clip (the process's CPU time, which a busy machine
disturbs less than wall time) and wall seconds, the speed-up against off, the steps skipped, every evaluation
figure with its difference from off in points, and the PSNR of each clip against the same clip made with the
cache off (a finer reading than accuracies over a few clips, where one clip moves a figure by 100 / clips points).
The defaults take about 5 minutes on 2 cores; the README's figures are from --thresholds 0.1,0.2,0.3 --t2v 6 --i2v 2
--camera 2 (about 11 minutes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from engine.api.events import Finished, Frames  # noqa: E402
from engine.api.run_options import RunOptions  # noqa: E402
from engine.caches import bundled_step_cache  # noqa: E402
from engine.training import evaluate as evaluation  # noqa: E402
from engine.util.frames import psnr  # noqa: E402

FIGURES = {
    "text_to_video": (
        "colour_accuracy",
        "shape_accuracy",
        "motion_accuracy",
        "background_accuracy",
        "all_accuracy",
        "temporal_consistency",
    ),
    "image_to_video": ("motion_accuracy", "colour_accuracy", "shape_accuracy", "first_frame_psnr_mean"),
    "camera": ("move_accuracy", "first_frame_psnr_mean"),
}


class Recorder:
    """Wraps a backend's generate: keeps every clip's frames and the step cache's counts, in request order."""

    def __init__(self, backend):
        self.backend, self.clips, self.stats = backend, [], []

    def generate(self, request, should_stop=None):
        events = list(self.backend.generate(request, should_stop))  # to Finished: the evaluation stops at Frames
        for event in events:
            if isinstance(event, Frames):
                self.clips.append(event.frames)
            if isinstance(event, Finished):
                self.stats.append(event.stats)
        yield from events


def run_setting(backend, args, threshold: float | None) -> dict:
    """The evaluation with the cache off (threshold None) or at threshold: figures, seconds, clips, counts."""
    backend.options = RunOptions(cache="off" if threshold is None else "first-block")
    if threshold is not None:
        bundled_step_cache.THRESHOLDS["first-block"] = threshold  # the bench sweeps what --cache fixes
    recorder = Recorder(backend)
    cpu, wall = time.process_time(), time.perf_counter()
    result = evaluation.evaluate(recorder, args.steps, args.guidance, 1, args.i2v, args.camera, progress=False)
    clips = len(recorder.clips)
    result["cpu_per_clip"] = (time.process_time() - cpu) / clips
    result["wall_per_clip"] = (time.perf_counter() - wall) / clips
    result["clips"] = recorder.clips
    result["skipped"] = sum(s.get("step_cache_steps_skipped", 0) for s in recorder.stats)
    result["steps"] = sum(
        s.get("step_cache_steps_skipped", 0) + s.get("step_cache_steps_computed", 0) for s in recorder.stats
    )
    return result


def figures(result: dict) -> dict[str, float]:
    return {
        f"{part}.{name}": result[part][name]
        for part, names in FIGURES.items()
        for name in names
        if result[part].get(name) is not None
    }


def report(name: str, result: dict, off: dict) -> list[str]:
    lines = [
        f"{name}: {result['cpu_per_clip']:.2f} CPU s per clip ({off['cpu_per_clip'] / result['cpu_per_clip']:.2f}x), "
        f"{result['wall_per_clip']:.2f} wall s ({off['wall_per_clip'] / result['wall_per_clip']:.2f}x)"
        + (f", steps skipped {result['skipped']} of {result['steps']}" if result["steps"] else "")
    ]
    if result is not off:
        closeness = [psnr(a, b) for a, b in zip(result["clips"], off["clips"])]
        lines.append(
            f"  PSNR against the clip made with the cache off: mean {np.mean(closeness):.1f} dB, min {min(closeness):.1f} dB"
        )
    base, own = figures(off), figures(result)
    worst = max((abs(own[k] - base[k]) for k in base if "psnr" not in k), default=0.0)
    lines += [f"  {k}: {own[k]:.1f}" + ("" if result is off else f" ({own[k] - base[k]:+.1f})") for k in own]
    if result is not off:
        lines.append(f"  largest change of an accuracy or consistency figure: {worst:.1f} points")
    return lines


def main(argv=None) -> int:
    from engine.backends.base import open_backend
    from engine.training.synthetic import held_out_combos

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="kinemo-starter")
    p.add_argument("--thresholds", default="0.2,0.3")
    p.add_argument("--t2v", type=int, default=4, help="held-out text-to-video combinations (of 64)")
    p.add_argument("--i2v", type=int, default=1, help="image-to-video clips")
    p.add_argument("--camera", type=int, default=1, help="camera pictures, on the pixel model as the evaluation runs")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=1.0)
    args = p.parse_args(argv)

    combos = sorted(held_out_combos())
    picked = [combos[round(i * (len(combos) - 1) / max(1, args.t2v - 1))] for i in range(args.t2v)]
    evaluation.held_out_combos = lambda: picked  # the evaluation's own code, on a part of its held-out set
    backend = open_backend(args.model)
    backend.camera_folder = None  # as engine.training.evaluate: the pixel model makes the camera clips too
    backend.load()
    thresholds = [float(t) for t in args.thresholds.split(",") if t]
    print(
        f"{args.model}: {args.t2v} text-to-video + {args.i2v} image-to-video + {args.camera} camera clips, "
        f"{args.steps} steps, guidance {args.guidance}, 64x64 x 16 frames"
    )
    off = run_setting(backend, args, None)
    for line in report("cache off", off, off):
        print(line, flush=True)
    for threshold in thresholds:
        result = run_setting(backend, args, threshold)
        for line in report(f"first-block cache, threshold {threshold}", result, off):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
