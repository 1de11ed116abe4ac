"""Two runs at once: each should take about twice as long as one alone, not five to eight times.

Each run is `kinemo generate` in a fresh process (the bundled model, 16 frames); the time is the run's own
generate_seconds from --stats. Policies, side by side in one run of this script:

    kinemo   Kinemo's defaults: one thread per physical core, idle threads spin briefly, then sleep
             (engine.backends.threads)
    passive  idle threads sleep at once (OMP_WAIT_POLICY=PASSIVE)
    default  what a process gets without Kinemo's policy: a thread per logical CPU, libgomp's long spin
    greedy   threads that never stop spinning (OMP_WAIT_POLICY=ACTIVE)

Cases: one run alone; two runs started together (each one's time / alone); one run beside a process that
keeps a core busy. The condition: two at once each take at most 2.5x one alone.

    python bench/bench_threads.py [--steps 25] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a red circle moves right on a black background"
POLICIES = {
    "kinemo": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"},
    "default": {"KINEMO_THREADS": str(os.cpu_count() or 2), "GOMP_SPINCOUNT": "300000"},
    "greedy": {"KINEMO_THREADS": str(os.cpu_count() or 2), "OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "infinite"},
}


def start(policy: str, steps: int, work: Path, name: str) -> tuple[subprocess.Popen, Path]:
    stats = work / f"{name}.json"
    unset = ("KINEMO_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(POLICIES[policy])
    args = ["generate", PROMPT, "-o", str(work / f"{name}.mp4"), "--steps", str(steps), "--stats", str(stats)]
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return process, stats


def seconds(runs: list[tuple[subprocess.Popen, Path]]) -> list[float]:
    found = []
    for process, stats in runs:
        _, err = process.communicate(timeout=900)
        if process.returncode != 0:
            raise RuntimeError(err.decode(errors="replace").strip().splitlines()[-1:])
        found.append(json.loads(stats.read_text())["generate_seconds"])
    return found


def measure(policy: str, steps: int, work: Path) -> dict:
    alone = seconds([start(policy, steps, work, "alone")])[0]
    pair = seconds([start(policy, steps, work, f"pair{i}") for i in range(2)])
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = seconds([start(policy, steps, work, "busy")])[0]
    finally:
        hog.kill()
        hog.wait()
    return {"alone": alone, "pair": pair, "busy": busy}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--repeats", type=int, default=2)
    opts = p.parse_args()
    rows: dict[str, list[dict]] = {name: [] for name in POLICIES}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(opts.repeats):  # policies interleaved, so a busier moment of the machine hits both
            for name in POLICIES:
                rows[name].append(measure(name, opts.steps, Path(tmp)))
    print(f"{'policy':8} {'alone s':>8} {'two at once s':>14} {'ratio':>6} {'beside a busy core s':>21} {'ratio':>6}")
    for name, found in rows.items():
        alone = statistics.median(r["alone"] for r in found)
        pair = statistics.median(max(r["pair"]) for r in found)
        busy = statistics.median(r["busy"] for r in found)
        print(f"{name:8} {alone:8.2f} {pair:14.2f} {pair / alone:6.2f} {busy:21.2f} {busy / alone:6.2f}")
    print("the condition: two at once each take at most 2.5x one alone (the slower of the two is shown)")


if __name__ == "__main__":
    main()
