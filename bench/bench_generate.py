"""Time per step, end-to-end time and peak memory of `kinemo generate` for 16-frame clips.

    python bench/bench_generate.py [--repeats 2]

Each case runs in its own process (peak RSS is per process) and the figures print side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

PROMPT = "a red circle moves right on a black background"


def run_case(args: list[str], workdir: Path) -> dict:
    stats = workdir / "stats.json"
    out = workdir / "clip.mp4"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "app.cli", "generate", *args, "-o", str(out), "--stats", str(stats)]
    subprocess.run(cmd, check=True, capture_output=True)
    return json.loads(stats.read_text())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=2)
    opts = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        picture = workdir / "picture.png"
        Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(picture)
        cases = {
            "t2v 16f 25 steps -> 256x256": [PROMPT],
            "t2v 16f 25 steps -> 64x64": [PROMPT, "--width", "64", "--height", "64"],
            "t2v 16f 25 steps -> 512x512": [PROMPT, "--width", "512", "--height", "512"],
            "t2v 16f 10 steps -> 256x256": [PROMPT, "--steps", "10"],
            "t2v 16f 25 steps, guidance 4 (CFG)": [PROMPT, "--guidance", "4"],
            "i2v 16f 25 steps -> 256x256": ["the camera pans left", "--image", str(picture)],
        }
        print(f"threads: {os.cpu_count()} cores, torch default; median of {opts.repeats} runs")
        header = (
            f"{'case':34} {'s/step':>8} {'generate s':>11} {'export s':>9} {'load s':>7} {'total s':>8} {'peak MB':>8}"
        )
        print(header)
        print("-" * len(header))
        for name, args in cases.items():
            runs = [run_case(args, workdir) for _ in range(opts.repeats)]
            med = {k: float(np.median([r[k] for r in runs])) for k, v in runs[0].items() if isinstance(v, (int, float))}
            print(
                f"{name:34} {med['seconds_per_step']:8.3f} {med['generate_seconds']:11.2f} {med['export_seconds']:9.2f} "
                f"{med['load_seconds']:7.2f} {med['total_seconds']:8.2f} {med['peak_memory_mb']:8.0f}"
            )


if __name__ == "__main__":
    main()
