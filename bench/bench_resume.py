"""The work a kill -9 loses with `kinemo generate --resume` (engine.backends.checkpoints), on the shipped model.

    python bench/bench_resume.py [--frames 64] [--steps 25] [--kill-at 0.5,0.8]

Per kill point (a fraction of the clip's denoising steps): `kinemo generate … --resume` runs in a subprocess and
is killed with SIGKILL once that many steps are done, then the same command runs again and finishes the clip.
Printed per kill: the steps the killed run had done beyond its last checkpoint and the frames of the window they
belonged to (the work lost, made again by the resumed run), the frames that came back from the checkpoint, the
wall seconds of the killed and the resumed run against one uninterrupted run, and whether the resumed clip equals
the uninterrupted one frame for frame. Also: the checkpoint's size and the seconds each save took (the price of
--resume while nothing goes wrong). The defaults take about 4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a red circle moves right on a black background"

# the command line itself, with observers that change nothing it does: each step done and each checkpoint saved
# (its seconds and size) are appended to log files the bench reads
HARNESS = """
import sys, time
from pathlib import Path
from app import cli_output
from app.cli import main
from engine.api.events import Progress
from engine.backends import checkpoints

saved, steps = Path(sys.argv[1]), Path(sys.argv[2])
save, show = checkpoints.WindowCheckpoint.save, cli_output.EventPrinter.show

def saving(self, state):
    started = time.perf_counter()
    notices = save(self, state)
    with open(saved, "a") as log:
        log.write(f"{state.next_window} {time.perf_counter() - started} {self.path.stat().st_size}\\n")
    return notices

def showing(self, event):
    show(self, event)
    if isinstance(event, Progress):
        with open(steps, "a") as log:
            log.write(f"{event.step}\\n")

checkpoints.WindowCheckpoint.save, cli_output.EventPrinter.show = saving, showing
sys.exit(main(sys.argv[3:]))
"""


def window_ends(frames: int, window: int = 16, fresh: int = 8) -> list[int]:
    """The frame count after each window (engine.caches.temporal_kv.plan_windows with 2 + 6 context frames)."""
    return [min(window, frames), *[min(end, frames) for end in range(window + fresh, frames + fresh, fresh)]]


def lines(path: Path) -> list[list[float]]:
    return [[float(x) for x in line.split()] for line in path.read_text().splitlines()] if path.exists() else []


def frames_of(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))])


def command(args, output: Path, logs: tuple[Path, Path], *more: str) -> list[str]:
    generate = ["generate", PROMPT, "-o", str(output), "--format", "png", "--frames", str(args.frames)]
    generate += ["--steps", str(args.steps), "--seed", "1", "--width", "64", "--height", "64", *more]
    return [sys.executable, "-c", HARNESS, str(logs[0]), str(logs[1]), *generate]


def timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def kill_and_resume(args, fraction: float, plain: np.ndarray, plain_seconds: float, work: Path) -> dict:
    ends = window_ends(args.frames)
    total = len(ends) * args.steps
    output, saved, steps = work / "frames", work / "saved.log", work / "steps.log"
    started = time.perf_counter()
    run = subprocess.Popen(command(args, output, (saved, steps), "--resume"), cwd=work, stderr=subprocess.DEVNULL)
    while len(lines(steps)) < round(fraction * total) and run.poll() is None:
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait()
    killed_seconds = time.perf_counter() - started
    done, saves = int(lines(steps)[-1][0]), lines(saved)
    stats = work / "stats.json"
    resumed_seconds = timed(command(args, output, (saved, steps), "--resume", "--stats", str(stats)), work)
    kept = json.loads(stats.read_text()).get("resumed_frames", 0)
    kept_windows = ends.index(kept) + 1 if kept else 0
    lost_steps = done - kept_windows * args.steps
    return {
        "kill_at_step": f"{done}/{total}",
        "steps_lost": lost_steps,
        "frames_recomputed": (ends[kept_windows] - (ends[kept_windows - 1] if kept_windows else 0))
        if lost_steps
        else 0,
        "frames_from_checkpoint": kept,
        "frames": args.frames,
        "killed_run_s": round(killed_seconds, 1),
        "resumed_run_s": round(resumed_seconds, 1),
        "uninterrupted_s": round(plain_seconds, 1),
        "equal_to_uninterrupted": bool(np.array_equal(frames_of(output), plain)),
        "checkpoint_mb": round(saves[-1][2] / 2**20, 1) if saves else None,
        "save_s": [round(s[1], 3) for s in saves],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--kill-at", default="0.5,0.8", help="fractions of the clip's steps, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plain_dir = work / "plain"
        plain_dir.mkdir()
        plain_seconds = timed(command(args, plain_dir / "frames", (work / "a", work / "b")), plain_dir)
        plain = frames_of(plain_dir / "frames")
        for number, fraction in enumerate(float(f) for f in args.kill_at.split(",")):
            folder = work / f"kill{number}"
            folder.mkdir()
            print(json.dumps(kill_and_resume(args, fraction, plain, plain_seconds, folder)), flush=True)


if __name__ == "__main__":
    main()
