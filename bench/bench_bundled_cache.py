"""The bundled model's step cache (engine.caches.bundled_step_cache): time per clip against every evaluation figure.

    python bench/bench_bundled_cache.py [--thresholds 0.2,0.3] [--t2v 4] [--i2v 1] [--camera 1] [--steps 25]

In one run, on the shipped model (kinemo-starter): the held-out evaluation of engine.training.evaluate on a small,
evenly spread part of its held-out set (text-to-video combinations, image-to-video clips, camera pictures on the
pixel model, as the evaluation runs them), once with the cache off and once per threshold, clip for clip the same
requests and seeds, each request made under every setting in turn. Printed per setting: CPU seconds per clip (the process's CPU time, which a busy machine
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
from engine.api.request import GenerationRequest  # noqa: E402
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


class Interleaved:
    """Stands in for the backend during the evaluation: each request is made under every setting in turn (who goes
    first rotates), each timed on its own, so a busy machine slows them alike; the evaluation reads the clip of the
    setting being evaluated, and later passes replay the clips already made, in the same request order."""

    def __init__(self, backend, settings: list[float | None]):
        self.backend, self.settings = backend, settings
        self.runs: dict = {s: {"clips": [], "stats": [], "cpu": 0.0, "wall": 0.0} for s in settings}
        self.reading: float | None = None  # the setting whose clips the evaluation reads
        self.index = 0  # the request under way, for a replay

    def make(self, request, threshold: float | None) -> None:
        self.backend.options = RunOptions(cache="off" if threshold is None else "first-block")
        if threshold is not None:
            bundled_step_cache.THRESHOLDS["first-block"] = threshold  # the bench sweeps what --cache fixes
        run = self.runs[threshold]
        cpu, wall = time.process_time(), time.perf_counter()
        events = list(self.backend.generate(request))  # to Finished: the evaluation stops at Frames
        run["cpu"] += time.process_time() - cpu
        run["wall"] += time.perf_counter() - wall
        run["clips"].append(next(e.frames for e in events if isinstance(e, Frames)))
        run["stats"].append(next(e.stats for e in events if isinstance(e, Finished)))

    def generate(self, request, should_stop=None):
        if self.index == len(self.runs[self.reading]["clips"]):  # a new request: make it under every setting
            turn = self.index % len(self.settings)
            for threshold in self.settings[turn:] + self.settings[:turn]:
                self.make(request, threshold)
        self.index += 1  # before the yield: the evaluation stops at the first Frames and never resumes this
        yield Frames(0, self.runs[self.reading]["clips"][self.index - 1])


def run_settings(backend, args, settings: list[float | None]) -> dict:
    """The evaluation under every setting (None: the cache off): figures, seconds per clip, clips, step counts."""
    made = Interleaved(backend, settings)
    for threshold in settings:  # warm up each setting once, so the first timed clip pays no first-run costs
        made.make(GenerationRequest("a red circle moves right", steps=2, width=64, height=64), threshold)
    made.runs = {s: {"clips": [], "stats": [], "cpu": 0.0, "wall": 0.0} for s in settings}
    results = {}
    for threshold in settings:
        made.reading, made.index = threshold, 0
        result = evaluation.evaluate(made, args.steps, args.guidance, 1, args.i2v, args.camera, progress=False)
        run = made.runs[threshold]
        clips, stats = len(run["clips"]), run["stats"]
        result |= {"cpu_per_clip": run["cpu"] / clips, "wall_per_clip": run["wall"] / clips, "clips": run["clips"]}
        result["skipped"] = sum(s.get("step_cache_steps_skipped", 0) for s in stats)
        result["steps"] = sum(
            s.get("step_cache_steps_skipped", 0) + s.get("step_cache_steps_computed", 0) for s in stats
        )
        results[threshold] = result
    return results


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
    results = run_settings(backend, args, [None, *thresholds])
    off = results[None]
    for threshold, result in results.items():
        name = "cache off" if threshold is None else f"first-block cache, threshold {threshold}"
        for line in report(name, result, off):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
