"""The upscaler against the export's resampling: outline softness and time for text-to-video at an artist's size.

    python bench/bench_upscaler.py [--prompts 6] [--model kinemo-starter]

For each prompt (held-out combinations, circles, squares and triangles in turn) one 16-frame clip is made at
512x512 with the upscaler and the same clip without it (the same seed, so the pixel model's frames are
identical); both are exported to MP4 and read back. Printed side by side: the outline band (median over the
clip's frames, engine.training.outline), whether the checker reads the prompt's shape, and the seconds each
clip took, so the upscaler's cost is a ratio measured in one run.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.api.request import GenerationRequest  # noqa: E402
from engine.backends.base import open_backend  # noqa: E402
from engine.training.checker import check_clip  # noqa: E402
from engine.training.exported_eval import exported, generated  # noqa: E402
from engine.training.outline import clip_band  # noqa: E402
from engine.training.synthetic import held_out_combos, sample_object_clip  # noqa: E402


def balanced_prompts(count: int) -> list[tuple[str, str]]:
    """(prompt, shape) for count held-out combinations, the three shapes in turn."""
    by_shape: dict[str, list] = {}
    for combo in sorted(held_out_combos()):
        by_shape.setdefault(combo[1], []).append(combo)
    shapes = sorted(by_shape)
    picked = [by_shape[shapes[i % 3]][i // 3] for i in range(count)]
    return [(sample_object_clip(random.Random(0), c).caption, c[1]) for c in picked]


def timed_clip(backend, request: GenerationRequest, folder: Path, name: str) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    frames = generated(backend, request)
    seconds = time.perf_counter() - started
    return exported(frames, folder / f"{name}.mp4", request.width, request.height), seconds


def object_proportions(frames: np.ndarray) -> float | None:
    """Width / height of the object's bounding box (pixels far from the border colour), median over the frames."""
    from engine.training.checker import OBJECT_DISTANCE, border_colour

    ratios = []
    for frame in frames.astype(np.float64) / 255:
        mask = np.sqrt(((frame - border_colour(frame)) ** 2).sum(-1)) > OBJECT_DISTANCE
        if mask.sum() > 50:
            ys, xs = np.nonzero(mask)
            ratios.append((np.ptp(xs) + 1) / (np.ptp(ys) + 1))
    return float(np.median(ratios)) if ratios else None


def wide_proportions(backend, steps: int, folder: Path) -> None:
    """Circles and squares at 1280x720 and 720x1280: their width / height should stay 1."""
    for width, height in ((1280, 720), (720, 1280)):
        for index, prompt in enumerate(
            ["a red circle stays still on a black background", "a blue square stays still on a white background"]
        ):
            request = GenerationRequest(prompt, steps=steps, seed=index, width=width, height=height)
            frames = exported(generated(backend, request), folder / f"wide{index}.mp4", width, height)
            ratio = object_proportions(frames)
            print(
                f"{width}x{height} {prompt}: object width / height {ratio:.3f}  (frames {frames.shape[2]}x{frames.shape[1]})"
            )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=6)
    p.add_argument("--model", default="kinemo-starter")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--wide", action="store_true", help="also measure object proportions at 16:9 and 9:16")
    args = p.parse_args(argv)
    with_upscaler = open_backend(args.model)
    if with_upscaler.upscaler_folder is None:
        print("no upscaler is installed (assets/kinemo-upscaler)")
        return 1
    without = open_backend(args.model)
    without.upscaler_folder = None
    steps = with_upscaler.defaults()["steps"]
    rows = []
    print(f"{args.model}, {steps} steps, 16 frames at {args.size}x{args.size}, exported to MP4 and read back")
    print(
        f"{'prompt':58} {'band: resampled':>16} {'upscaled':>9} {'shape read':>12} {'s: resampled':>13} {'upscaled':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for index, (prompt, shape) in enumerate(balanced_prompts(args.prompts)):
            request = GenerationRequest(prompt, steps=steps, seed=index, width=args.size, height=args.size)
            plain, plain_s = timed_clip(without, request, Path(tmp), f"plain{index}")
            sharp, sharp_s = timed_clip(with_upscaler, request, Path(tmp), f"sharp{index}")
            reads = [check_clip(f).shape == shape for f in (plain, sharp)]
            rows.append((clip_band(plain), clip_band(sharp), plain_s, sharp_s, *reads))
            flags = "/".join("yes" if r else "no" for r in reads)
            print(
                f"{prompt[:58]:58} {rows[-1][0] or float('nan'):16.1f} {rows[-1][1] or float('nan'):9.1f} "
                f"{flags:>12} {plain_s:13.2f} {sharp_s:9.2f}"
            )
    bands = np.array([(r[0], r[1]) for r in rows if r[0] is not None and r[1] is not None])
    seconds = np.array([(r[2], r[3]) for r in rows])
    print(
        f"median band {np.median(bands[:, 0]):.1f} px resampled, {np.median(bands[:, 1]):.1f} px upscaled; "
        f"shape read {sum(r[4] for r in rows)}/{len(rows)} resampled, {sum(r[5] for r in rows)}/{len(rows)} upscaled; "
        f"time upscaled / resampled {np.median(seconds[:, 1] / seconds[:, 0]):.2f}x (median)"
    )
    if args.wide:
        with tempfile.TemporaryDirectory() as tmp:
            wide_proportions(with_upscaler, steps, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
