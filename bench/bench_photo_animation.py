"""Photo animation: does "the camera <move>" move the camera, read off the frames themselves?

    pip install -e ".[eval]"   # scikit-image, for its bundled photographs (nothing is downloaded)
    python bench/bench_photo_animation.py [--model kinemo-starter] [--seeds 0] [--json numbers.json]

For each bundled photograph and each of the seven moves, the model animates the photograph at 512x288 and
engine.training.camera_eval reads the camera move off the frames (a global similarity between consecutive
frames, composed over the clip), frame 0's PSNR and sharpness against the fitted photograph, and flicker.
Then it times a 16-frame clip at 1280x720 (median of 3; CPU seconds of the whole process and wall seconds).
Frames that come back at another size (the bundled model makes 64x64 today) are resized to the requested size
before they are measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np

from engine.api.events import Frames
from engine.api.request import GenerationRequest
from engine.backends.base import open_backend
from engine.training.camera_eval import MOVES, evaluate_camera, photographs, resize_frames


def make_generator(model: str):
    backend = open_backend(model)

    def generate(picture: Path, prompt: str, width: int, height: int, seed: int) -> np.ndarray:
        steps = backend.defaults()["steps"]  # a distilled model's own step count
        request = GenerationRequest(
            prompt, model=model, image=str(picture), width=width, height=height, frames=16, seed=seed, steps=steps
        )
        chunks = [event.frames for event in backend.generate(request) if isinstance(event, Frames)]
        return resize_frames(np.concatenate(chunks), width, height)

    return generate


def time_clip(generate, picture: Path, repeats: int = 3) -> dict[str, float]:
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        generate(picture, "the camera zooms in", 1280, 720, 0)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {"cpu_seconds": statistics.median(cpu), "wall_seconds": statistics.median(wall), "repeats": repeats}


def print_table(result: dict, pictures: list[Path], model: str, seeds: list[int]) -> None:
    print(f"model: {model}; {len(pictures)} photographs: {', '.join(p.name for p in pictures)}; seeds {seeds}")
    print(f"{'move':12} {'accuracy':>9}  read off the frames")
    print("-" * 72)
    for move, accuracy in result["per_move"].items():
        seen = Counter(c["predicted"] for c in result["per_clip"] if c["move"] == move)
        print(f"{move:12} {accuracy:9.2f}  {', '.join(f'{name} {n}' for name, n in seen.most_common())}")
    print("-" * 72)
    psnr, sharp, flick = result["psnr_frame0"], result["sharpness_ratio"], result["flicker"]
    print(f"{'overall':12} {result['accuracy']:9.2f}  over {result['clips']} clips")
    print(f"frame-0 PSNR against the photograph: min {psnr['min']:.2f} dB, mean {psnr['mean']:.2f} dB")
    print(f"frame-0 sharpness / photograph's:    min {sharp['min']:.3f}, mean {sharp['mean']:.3f}")
    print(f"flicker (max change / median):       max {flick['max']:.2f}, median {flick['median']:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="kinemo-starter", help="a model id or folder (default: kinemo-starter)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=288)
    p.add_argument("--repeats", type=int, default=3, help="timed 1280x720 clips (the median is printed)")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    opts = p.parse_args()
    seeds = [int(s) for s in opts.seeds.split(",") if s.strip()]
    pictures = photographs()
    generate = make_generator(opts.model)
    started = time.perf_counter()
    result = evaluate_camera(generate, pictures, MOVES, width=opts.width, height=opts.height, seeds=seeds)
    seconds = time.perf_counter() - started
    print_table(result, pictures, opts.model, seeds)
    print(f"(evaluation: {seconds:.0f} s wall)")
    timing = time_clip(generate, pictures[0], opts.repeats) if opts.repeats > 0 else {}
    if timing:
        print(
            f"16 frames at 1280x720: {timing['cpu_seconds']:.2f} CPU s, {timing['wall_seconds']:.2f} wall s "
            f"(median of {timing['repeats']})"
        )
    if opts.json:
        numbers = {k: v for k, v in result.items()} | {"timing_1280x720_16f": timing, "model": opts.model}
        numbers["photographs"] = [p.name for p in pictures]
        numbers["size"] = [opts.width, opts.height]
        opts.json.write_text(json.dumps(numbers, indent=2, default=float) + "\n")
        print(f"wrote {opts.json}")


if __name__ == "__main__":
    main()
